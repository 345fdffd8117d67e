"""Page sessions: OpenID Connect sign-in (authorization code + PKCE, Authlib's Flask client),
a short signed cookie bound to the login, and a CSRF token for every form."""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from authlib.integrations.flask_client import OAuth
from flask import Flask, current_app, session

from authz.base.config import Settings
from authz.oauth import dev_issuer

COOKIE = "authz_portal"
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class PageLogin:
    """The signed-in login of a page session."""

    iss: str
    sub: str
    email: str
    id_token: str

    @property
    def label(self) -> str:
        return f"login:{self.iss}|{self.sub}"


def discovery_url(settings: Settings) -> str | None:
    """Where the pages' issuer publishes its OpenID Provider metadata."""
    if not settings.pages_issuer:
        return None
    if settings.dev_mode and settings.pages_issuer == settings.dev_issuer:
        return settings.issuer.rstrip("/") + "/dev-issuer/.well-known/openid-configuration"
    return settings.pages_issuer.rstrip("/") + "/.well-known/openid-configuration"


def init_app(app: Flask, settings: Settings) -> None:
    """Configure the session cookie and register the pages' OpenID Connect client."""
    app.secret_key = settings.session_secret
    app.config.update(
        SESSION_COOKIE_NAME=COOKIE,
        SESSION_COOKIE_PATH="/portal",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.issuer.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=dt.timedelta(seconds=settings.pages_session_ttl),
    )
    oauth = OAuth(app)
    url = discovery_url(settings)
    if url and settings.session_secret and settings.pages_client_secret:
        where: dict[str, Any] = {"server_metadata_url": url}
        if settings.dev_mode and settings.pages_issuer == settings.dev_issuer:
            # This process is the issuer: its metadata is known without asking itself.
            meta = dev_issuer.metadata(settings)
            where = {
                **meta,
                "authorize_url": meta["authorization_endpoint"],
                "access_token_url": meta["token_endpoint"],
            }
        oauth.register(
            "pages",
            client_id=settings.pages_client_id,
            client_secret=settings.pages_client_secret,
            client_kwargs={"scope": "openid email", "code_challenge_method": "S256"},
            **where,
        )
    app.extensions["authz.pages.oauth"] = oauth


def client() -> Any | None:
    """The pages' OpenID Connect client, or None when sign-in is not configured."""
    oauth: OAuth = current_app.extensions["authz.pages.oauth"]
    return oauth.create_client("pages")


def current() -> PageLogin | None:
    """The session's login, if any (the cookie's age is checked when it is read)."""
    found = session.get("login") if current_app.secret_key else None
    if not isinstance(found, dict):
        return None
    try:
        return PageLogin(found["iss"], found["sub"], found["email"], found["id_token"])
    except KeyError:
        return None


def start(login: PageLogin) -> None:
    """A new session for `login`: nothing of an earlier one carries over."""
    session.clear()
    session.permanent = True
    session["login"] = {
        "iss": login.iss,
        "sub": login.sub,
        "email": login.email,
        "id_token": login.id_token,
    }
    session[CSRF_FIELD] = secrets.token_urlsafe(24)


def csrf_token() -> str:
    """The session's CSRF token, made on first use."""
    if not current_app.secret_key:
        return ""
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = session[CSRF_FIELD] = secrets.token_urlsafe(24)
    return token


def csrf_ok(sent: str | None) -> bool:
    """Whether a form carries the session's CSRF token."""
    expected = session.get(CSRF_FIELD) if current_app.secret_key else None
    return bool(isinstance(expected, str) and sent and hmac.compare_digest(expected, str(sent)))
