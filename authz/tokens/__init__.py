"""Our JWTs: the signing keys (`keys`), the RFC 9068 access-token format (`rfc9068`), and
whether a verified token still stands on the current facts (`validity`).

May import `authz.policy`, `authz.store` and `authz.base`.
"""
