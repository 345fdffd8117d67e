"""Settings, read once from the environment (or a mapping in tests)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

#: RFC 9068 tokens here never live longer than this, whatever the configuration says.
MAX_TOKEN_TTL = 900
#: The hosted pages' client at the development issuer: the audience of its ID tokens.
DEV_PAGES_CLIENT = "authz-dev"
DEV_PAGES_SECRET = "development-pages-secret"
DEV_SESSION_SECRET = "development-session-secret: never used outside development mode"


@dataclass(frozen=True)
class TrustedIssuer:
    """An identity provider whose ID tokens sign a login in."""

    issuer: str
    audience: str
    jwks_uri: str | None = None
    jwks: dict[str, Any] | None = None


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """Everything the service can be configured with."""

    database_url: str = "sqlite:///instance/authz.db"
    issuer: str = "http://127.0.0.1:8000"
    dev_mode: bool = False
    token_ttl: int = MAX_TOKEN_TTL
    invite_ttl: int = 7 * 24 * 3600
    majority_age: int = 18
    smtp_url: str | None = None
    mail_from: str = "no-reply@authz.local"
    portal_url: str = "http://127.0.0.1:8000/portal"
    trusted_issuers: tuple[TrustedIssuer, ...] = ()
    max_body_bytes: int = 1024 * 1024
    pool_timeout: float = 2.0
    statement_timeout_ms: int = 2000
    audit_retention_days: int = 6 * 366
    rate_limit: str | None = None
    rate_limit_storage: str = "memory://"
    #: The hosted pages' sign-in: an OpenID Connect issuer (its discovery document), the
    #: service's own client there, and the page session. In development mode they default to
    #: the built-in development issuer; elsewhere, pages cannot sign in until they are set.
    pages_issuer: str | None = None
    pages_client_id: str = ""
    pages_client_secret: str | None = None
    pages_session_ttl: int = 15 * 60
    session_secret: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def dev_issuer(self) -> str:
        """The built-in development issuer's `iss` (development mode only)."""
        # Fixed, not derived from AUTHZ_ISSUER, so `authz dev-token` works whatever port the
        # development server listens on; it is trusted only in development mode.
        return "urn:authz:dev-issuer"

    def with_(self, **changes: Any) -> Settings:
        """A copy with some settings changed."""
        return replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from `AUTHZ_*` environment variables."""
        env = os.environ if env is None else env
        issuers = tuple(
            TrustedIssuer(**item) for item in json.loads(env.get("AUTHZ_TRUSTED_ISSUERS", "[]"))
        )
        ttl = int(env.get("AUTHZ_TOKEN_TTL", MAX_TOKEN_TTL))
        default = cls()
        dev = _truthy(env.get("AUTHZ_DEV_MODE"))
        issuer = env.get("AUTHZ_ISSUER", default.issuer)
        # Development mode signs pages in through the built-in issuer, with fixed secrets that
        # only development uses (several workers must agree on them).
        pages_issuer = env.get("AUTHZ_PAGES_ISSUER") or (default.dev_issuer if dev else None)
        dev_pages = dev and pages_issuer == default.dev_issuer
        return cls(
            database_url=env.get("AUTHZ_DATABASE_URL", default_database_url()),
            issuer=issuer,
            dev_mode=_truthy(env.get("AUTHZ_DEV_MODE")),
            token_ttl=min(ttl, MAX_TOKEN_TTL),
            invite_ttl=int(env.get("AUTHZ_INVITE_TTL", default.invite_ttl)),
            majority_age=int(env.get("AUTHZ_MAJORITY_AGE", default.majority_age)),
            smtp_url=env.get("AUTHZ_SMTP_URL") or None,
            mail_from=env.get("AUTHZ_MAIL_FROM", default.mail_from),
            portal_url=env.get("AUTHZ_PORTAL_URL") or issuer.rstrip("/") + "/portal",
            trusted_issuers=issuers,
            pool_timeout=float(env.get("AUTHZ_POOL_TIMEOUT", default.pool_timeout)),
            statement_timeout_ms=int(
                env.get("AUTHZ_STATEMENT_TIMEOUT_MS", default.statement_timeout_ms)
            ),
            audit_retention_days=max(
                int(env.get("AUTHZ_AUDIT_RETENTION_DAYS", default.audit_retention_days)),
                default.audit_retention_days if not _truthy(env.get("AUTHZ_DEV_MODE")) else 1,
            ),
            rate_limit=env.get("AUTHZ_RATE_LIMIT") or None,
            rate_limit_storage=env.get("AUTHZ_RATE_LIMIT_STORAGE") or default.rate_limit_storage,
            pages_issuer=pages_issuer,
            pages_client_id=DEV_PAGES_CLIENT
            if dev_pages
            else env.get("AUTHZ_PAGES_CLIENT_ID", ""),
            pages_client_secret=env.get("AUTHZ_PAGES_CLIENT_SECRET")
            or (DEV_PAGES_SECRET if dev_pages else None),
            pages_session_ttl=min(
                int(env.get("AUTHZ_PAGES_SESSION_TTL", default.pages_session_ttl)), 3600
            ),
            session_secret=env.get("AUTHZ_SESSION_SECRET")
            or (DEV_SESSION_SECRET if dev else None),
        )


def default_database_url() -> str:
    """The embedded SQLite store under ./instance."""
    path = Path("instance") / "authz.db"
    return f"sqlite:///{path.resolve()}"
