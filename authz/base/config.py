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
    #: Where answered decisions wait on disk until written (`authz.policy.decision_spool`);
    #: None: beside an SQLite file, else under the user's state directory. "off": no spool.
    decision_spool_dir: str | None = None
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
        """Settings from `AUTHZ_*` environment variables; a bad value raises ValueError naming
        the variable, in one line."""
        env = os.environ if env is None else env
        read = _Reader(env)
        ttl = read.integer("AUTHZ_TOKEN_TTL", MAX_TOKEN_TTL, low=1)
        default = cls()
        dev_mode = _truthy(env.get("AUTHZ_DEV_MODE"))
        issuer = read.url("AUTHZ_ISSUER", default.issuer)
        # Development mode signs pages in through the built-in issuer, with fixed secrets that
        # only development uses (several workers must agree on them).
        pages_issuer = read.url("AUTHZ_PAGES_ISSUER", default.dev_issuer if dev_mode else None)
        dev_pages = dev_mode and pages_issuer == default.dev_issuer
        return cls(
            database_url=database_url(env.get("AUTHZ_DATABASE_URL") or default_database_url()),
            issuer=issuer,
            dev_mode=dev_mode,
            token_ttl=min(ttl, MAX_TOKEN_TTL),
            invite_ttl=read.integer("AUTHZ_INVITE_TTL", default.invite_ttl, low=60),
            majority_age=read.integer("AUTHZ_MAJORITY_AGE", default.majority_age, low=1),
            smtp_url=read.url("AUTHZ_SMTP_URL", None, SMTP_SCHEMES),
            mail_from=env.get("AUTHZ_MAIL_FROM", default.mail_from),
            portal_url=read.url("AUTHZ_PORTAL_URL", issuer.rstrip("/") + "/portal"),
            trusted_issuers=read.issuers("AUTHZ_TRUSTED_ISSUERS"),
            pool_timeout=read.number("AUTHZ_POOL_TIMEOUT", default.pool_timeout),
            statement_timeout_ms=read.integer(
                "AUTHZ_STATEMENT_TIMEOUT_MS", default.statement_timeout_ms, low=0
            ),
            audit_retention_days=max(
                read.integer("AUTHZ_AUDIT_RETENTION_DAYS", default.audit_retention_days, low=1),
                default.audit_retention_days if not dev_mode else 1,
            ),
            decision_spool_dir=env.get("AUTHZ_DECISION_SPOOL_DIR") or None,
            rate_limit=env.get("AUTHZ_RATE_LIMIT") or None,
            rate_limit_storage=env.get("AUTHZ_RATE_LIMIT_STORAGE") or default.rate_limit_storage,
            pages_issuer=pages_issuer,
            pages_client_id=DEV_PAGES_CLIENT
            if dev_pages
            else env.get("AUTHZ_PAGES_CLIENT_ID", ""),
            pages_client_secret=env.get("AUTHZ_PAGES_CLIENT_SECRET")
            or (DEV_PAGES_SECRET if dev_pages else None),
            pages_session_ttl=min(
                read.integer("AUTHZ_PAGES_SESSION_TTL", default.pages_session_ttl, low=60), 3600
            ),
            session_secret=env.get("AUTHZ_SESSION_SECRET")
            or (DEV_SESSION_SECRET if dev_mode else None),
        )


HTTP_SCHEMES = ("http", "https")
SMTP_SCHEMES = ("smtp", "smtps", "smtp+starttls")
#: What `authz.store.db.make_engine` connects to.
DATABASE_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg")


def database_url(url: str) -> str:
    """The store's URL, or ValueError naming an unsupported database in one line."""
    scheme = url.partition("://")[0] if "://" in url else ""
    if scheme not in DATABASE_SCHEMES:
        shown = f"{scheme}://" if scheme else repr(url)
        raise ValueError(
            f"AUTHZ_DATABASE_URL: unsupported database {shown}; "
            "use sqlite:///path/to/authz.db or postgresql://user:password@host:5432/db"
        )
    if scheme == "sqlite" and not url.startswith("sqlite:///"):
        raise ValueError("AUTHZ_DATABASE_URL: a SQLite store is sqlite:///path/to/authz.db")
    return url


class _Reader:
    """Typed values from the environment, each bad one refused with the variable's name."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def _raw(self, name: str) -> str | None:
        value = self.env.get(name)
        return None if value is None or not value.strip() else value.strip()

    def integer(self, name: str, default: int, low: int) -> int:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"{name}={raw}: not a whole number") from None
        if value < low:
            raise ValueError(f"{name}={raw}: must be at least {low}")
        return value

    def number(self, name: str, default: float) -> float:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"{name}={raw}: not a number") from None
        if not value > 0:
            raise ValueError(f"{name}={raw}: must be more than 0")
        return value

    def url(
        self, name: str, default: str | None, schemes: tuple[str, ...] = HTTP_SCHEMES
    ) -> Any:
        raw = self._raw(name)
        if raw is None:
            return default
        check_url(f"{name}={raw}", raw, schemes)
        return raw

    def issuers(self, name: str) -> tuple[TrustedIssuer, ...]:
        raw = self._raw(name)
        if raw is None:
            return ()
        try:
            items = json.loads(raw)
            return tuple(TrustedIssuer(**item) for item in items)
        except (ValueError, TypeError):
            raise ValueError(
                f'{name}: expected a JSON list of {{"issuer", "audience", "jwks_uri"}} objects'
            ) from None


def check_url(label: str, value: str, schemes: tuple[str, ...] = HTTP_SCHEMES) -> None:
    """ValueError, in one line, unless `value` is an absolute URL with one of `schemes`."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- raises on a port out of range
    except ValueError:
        raise ValueError(f"{label}: not a valid URL") from None
    if parts.scheme not in schemes or not parts.hostname:
        want = " or ".join(f"{s}://" for s in schemes)
        raise ValueError(f"{label}: expected an absolute {want} URL")


def default_database_url() -> str:
    """The embedded SQLite store under ./instance."""
    path = Path("instance") / "authz.db"
    return f"sqlite:///{path.resolve()}"
