"""The account graph a practice keeps: clients, contacts, links and portal-access grants,
payment methods, notification copies, organizations, and the email outbox.

Use cases that change the store; the rules of delegation they record are in `authz.policy`.
May import `authz.tokens`, `authz.policy`, `authz.store` and `authz.base`.
"""
