"""authz: authorization and delegated-access policy service for healthcare client portals.

The core, in layers (each imports only those below it; `tests/test_layers.py` holds this):

- `cli`: the `authz` command line (and its demo organization).
- `oauth`: the OAuth 2.0 protocol, one module per RFC, token issuance and status, identity.
- `service`: the running process (runtime, replica catch-up) and the access-check use case.
- `compliance`: the audit trail's verification and queries, retention, the access review, and
  the policy-file review tools.
- `accounts`: clients, contacts, links and portal-access grants, payments, notification copies,
  organizations, the email outbox.
- `tokens`: signing keys, the RFC 9068 token format, and whether a token still stands.
- `policy`: the action vocabulary, grant rules, the facts, the engine, delegation, the decision
  log.
- `store`: SQLAlchemy models, the write transaction, the audit hash chain, Alembic migrations.
- `base`: clock, errors, ids, paging, settings, email addresses, the verified caller.

The HTTP layer (`api/`, a sibling package) sits between `cli` and `oauth`.
"""

__version__ = "0.1.0"
