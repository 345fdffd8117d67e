"""The running service: one process's runtime (settings, store, keys), replica catch-up, and
the access-check use case that answers `check`, the Switch Account list and who-can.

May import `authz.compliance` and every layer below it; never `authz.oauth` or the HTTP layer.
"""
