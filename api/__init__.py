"""The HTTP layer: thin Flask views over the `authz` core. Entry point: `create_app`."""

from api.app import create_app

__all__ = ["create_app"]
