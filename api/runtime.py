"""The current app's `Runtime` (built by `create_app`, kept in `app.extensions`)."""

from __future__ import annotations

from flask import current_app

from authz.service.runtime import Runtime


def runtime() -> Runtime:
    """The runtime of the app handling this request."""
    found: Runtime = current_app.extensions["authz"]
    return found
