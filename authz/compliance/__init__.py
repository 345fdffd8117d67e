"""What reviewers read: the audit trail and decision log (verify, query, retention), the access
review and its HTML report, and the policy-file tools (`policy_review`: check, test, explain,
diff, probe).

May import `authz.accounts` and every layer below it.
"""
