"""The OAuth 2.0 protocol, one module per RFC (6749 client authentication, 7009 revocation,
7523 JWT client assertions, 7662 introspection, 8693 token exchange), with token issuance and
status, registered clients, external identity (OIDC ID tokens) and `portal`, the verifier
downstream portals use.

May import `authz.service` and every layer below it; the HTTP layer (`api/`) sits on top.
"""
