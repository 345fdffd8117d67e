"""Typed errors of the core. The HTTP layer maps them to RFC 9457 problems in one place."""

from __future__ import annotations

from collections.abc import Iterable


class AuthzError(Exception):
    """Base of every error the core raises on purpose."""

    status = 500
    title = "Internal error"
    slug = "internal"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title


class ValidationFailed(AuthzError):
    """Input that breaks a rule; carries per-field messages."""

    status = 400
    title = "Invalid request"
    slug = "validation"

    def __init__(self, errors: Iterable[tuple[str, str]], detail: str = "") -> None:
        self.errors = [{"field": f, "message": m} for f, m in errors]
        super().__init__(detail or "; ".join(f"{e['field']}: {e['message']}" for e in self.errors))


class Unauthenticated(AuthzError):
    status = 401
    title = "Authentication required"
    slug = "unauthenticated"


class Forbidden(AuthzError):
    status = 403
    title = "Forbidden"
    slug = "forbidden"


class EntitlementRequired(Forbidden):
    title = "Entitlement required"
    slug = "entitlement-required"


class NotFound(AuthzError):
    status = 404
    title = "Not found"
    slug = "not-found"


class Conflict(AuthzError):
    status = 409
    title = "Conflict"
    slug = "conflict"


class RevisionNotReached(Conflict):
    """A consistency token names a revision the store has not reached: never answered with an
    older state."""

    title = "Revision not reached"
    slug = "revision-not-reached"

    def __init__(self, detail: str, newest: int) -> None:
        super().__init__(detail)
        self.newest = newest


class Gone(AuthzError):
    status = 410
    title = "Gone"
    slug = "gone"


class StoreUnavailable(AuthzError):
    """The store cannot be reached in time: fail closed."""

    status = 503
    title = "Store unavailable"
    slug = "store-unavailable"
