"""A live authorization server on loopback, and a real OAuth client (Authlib) to drive it."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from sqlalchemy import select
from werkzeug.serving import make_server

from authz.base import clock
from authz.oauth.oauth_clients import TOKEN_EXCHANGE
from authz.store.models import AuditEvent
from authz.tokens import keys
from tests.helpers import ACCESS, AUDIENCE, ID_TOKEN, Api

ALGS = ["ES256", "EdDSA"]


class _Dispatch:
    """The WSGI app is built after the socket, once the server's URL (its issuer) is known.
    It counts requests per path, so that tests can see what a client fetched."""

    def __init__(self) -> None:
        self.app: Any = None
        self.hits: Counter[str] = Counter()

    def __call__(self, environ: Any, start_response: Any) -> Any:
        self.hits[environ.get("PATH_INFO", "")] += 1
        return self.app(environ, start_response)


@dataclass
class Live:
    url: str
    api: Api
    hits: Counter[str]

    @property
    def token_url(self) -> str:
        return f"{self.url}/oauth/token"

    def session(self, client_id: str | None = None, secret: str | None = None) -> OAuth2Session:
        """An OAuth client authenticating with client_secret_basic."""
        return OAuth2Session(
            client_id or self.api.client_id,
            secret or self.api.client_secret,
            token_endpoint_auth_method="client_secret_basic",
            revocation_endpoint_auth_method="client_secret_basic",
            default_timeout=10,
        )

    def exchange(
        self,
        subject_token: str,
        resource: str,
        subject_token_type: str = ACCESS,
        session: OAuth2Session | None = None,
        **extra: str,
    ) -> dict[str, Any]:
        """An RFC 8693 exchange; raises OAuthError when refused."""
        params = {"audience": AUDIENCE, **extra}
        token = (session or self.session()).fetch_token(
            self.token_url,
            grant_type=TOKEN_EXCHANGE,
            subject_token=subject_token,
            subject_token_type=subject_token_type,
            resource=resource,
            **params,
        )
        return dict(token)

    def refused(self, error: str, subject_token: str, resource: str, **kwargs: Any) -> OAuthError:
        """The exchange is refused with `error` (an RFC 6749/8693 code)."""
        with pytest.raises(OAuthError) as info:
            self.exchange(subject_token, resource, **kwargs)
        assert info.value.error == error, (info.value.error, info.value.description)
        return info.value

    def sign_in(self, resource: str, email: str, **extra: str) -> str:
        token = self.exchange(self.api.id_token(email), resource, ID_TOKEN, **extra)
        return str(token["access_token"])

    def introspect(self, token: str, session: OAuth2Session | None = None) -> dict[str, Any]:
        r = (session or self.session()).introspect_token(f"{self.url}/oauth/introspect", token)
        assert r.status_code == 200, r.text
        assert r.headers["Cache-Control"] == "no-store"
        return dict(r.json())

    def revoke(self, token: str, session: OAuth2Session | None = None) -> Any:
        return (session or self.session()).revoke_token(f"{self.url}/oauth/revoke", token)

    def verify(self, token: str, audience: str = AUDIENCE) -> dict[str, Any]:
        """Verify with PyJWT against the served JWKS alone."""
        jwks = jwt.PyJWKClient(f"{self.url}/.well-known/jwks.json", cache_keys=False)
        key = jwks.get_signing_key_from_jwt(token)
        header = jwt.get_unverified_header(token)
        assert header["typ"] == "at+jwt" and header["kid"] == key.key_id
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=ALGS,
            audience=audience,
            issuer=self.url,
            options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]},
        )
        assert 0 < claims["exp"] - claims["iat"] <= 900
        return claims

    def audit(self, kind: str) -> list[AuditEvent]:
        """The audit events of one kind, oldest first."""
        with self.api.rt.store.read() as session:
            return list(
                session.scalars(
                    select(AuditEvent).where(AuditEvent.kind == kind).order_by(AuditEvent.seq)
                )
            )

    def assert_refusal_audited(self, reason_part: str, *secrets: str) -> AuditEvent:
        """The newest exchange refusal names the reason and the client, and no token."""
        events = self.audit("token_exchange.refused")
        assert events, "refusal was not audited"
        event = events[-1]
        after = event.after or {}
        assert reason_part in after["reason"], after
        assert after["client_id"] and event.actor == f"service:{after['client_id']}"
        text = json.dumps([event.before, event.after, event.entity_id, event.actor])
        for secret in secrets:
            assert secret not in text
        return event


@pytest.fixture
def live(settings_env: dict[str, str]) -> Iterator[Live]:
    from api import create_app

    dispatch = _Dispatch()
    server = make_server("127.0.0.1", 0, dispatch, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app = create_app({**settings_env, "AUTHZ_ISSUER": url})
    rt = app.extensions["authz"]
    keys.ensure_key(rt.store, "test", keys.ACCESS_TOKEN)
    keys.ensure_key(rt.store, "test", keys.DEV_ISSUER)
    dispatch.app = app
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Live(url, Api.bootstrap(app), dispatch.hits)
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
        rt.close()
        clock.reset()
