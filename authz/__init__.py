"""authz: authorization and delegated-access policy service for healthcare client portals."""

__version__ = "0.1.0"
