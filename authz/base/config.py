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
        return cls(
            database_url=env.get("AUTHZ_DATABASE_URL", default_database_url()),
            issuer=env.get("AUTHZ_ISSUER", default.issuer),
            dev_mode=_truthy(env.get("AUTHZ_DEV_MODE")),
            token_ttl=min(ttl, MAX_TOKEN_TTL),
            invite_ttl=int(env.get("AUTHZ_INVITE_TTL", default.invite_ttl)),
            majority_age=int(env.get("AUTHZ_MAJORITY_AGE", default.majority_age)),
            smtp_url=env.get("AUTHZ_SMTP_URL") or None,
            mail_from=env.get("AUTHZ_MAIL_FROM", default.mail_from),
            portal_url=env.get("AUTHZ_PORTAL_URL", default.portal_url),
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
        )


def default_database_url() -> str:
    """The embedded SQLite store under ./instance."""
    path = Path("instance") / "authz.db"
    return f"sqlite:///{path.resolve()}"
