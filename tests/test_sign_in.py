"""Sign-in from a configured trusted issuer (production path: no development issuer)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from authz.accounts import orgs
from authz.oauth import oauth_clients
from authz.tokens import keys
from authz.tokens.keys import public_jwk
from tests.helpers import AUDIENCE, ID_TOKEN, Api

IDP_KEY = ec.generate_private_key(ec.SECP256R1())
IDP_JWKS = {"keys": [public_jwk(IDP_KEY, "idp-1", "ES256")]}


@pytest.fixture(scope="module")
def idp() -> Iterator[str]:
    """An identity provider's JWKS endpoint on loopback."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(IDP_JWKS).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks"
    server.shutdown()


@pytest.fixture
def prod_api(settings_env: dict[str, str], idp: str) -> Iterator[Api]:
    from api import create_app

    env = {
        **settings_env,
        "AUTHZ_DEV_MODE": "0",
        "AUTHZ_TRUSTED_ISSUERS": json.dumps(
            [{"issuer": "https://idp.test", "audience": "portal-login", "jwks_uri": idp}]
        ),
    }
    app = create_app(env)
    rt = app.extensions["authz"]
    keys.ensure_key(rt.store, "test")
    org = orgs.create_org(rt.store, "t", "Practice", [])
    prv = orgs.create_provider(rt.store, "t", org["id"], "dr.lee@practice.test")
    oc = oauth_clients.create_client(rt.store, "t", org["id"], [AUDIENCE], ["authz:admin"])
    yield Api(app, org["id"], prv["id"], prv["email"], "", oc["client_id"], oc["client_secret"])
    rt.close()


def idp_token(email: str, verified: bool = True, key: Any = IDP_KEY, **over: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": "https://idp.test",
        "sub": "u-1",
        "aud": "portal-login",
        "iat": now,
        "exp": now + 300,
        "email": email,
        "email_verified": verified,
        **over,
    }
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": "idp-1"})


def _exchange(api: Api, token: str) -> Any:
    return api.token_request(
        {
            "grant_type": oauth_clients.TOKEN_EXCHANGE,
            "subject_token": token,
            "subject_token_type": ID_TOKEN,
            "resource": f"provider:{api.provider_id}",
            "audience": AUDIENCE,
        }
    )


def test_trusted_issuer_signs_a_provider_in(prod_api: Api) -> None:
    r = _exchange(prod_api, idp_token("Dr.Lee@practice.test"))
    assert r.status_code == 200, r.get_json()
    claims = jwt.decode(r.get_json()["access_token"], options={"verify_signature": False})
    assert claims["sub"] == f"provider:{prod_api.provider_id}" and claims["scope"] == "authz:admin"
    created = prod_api.call(
        "POST",
        "/v1/clients",
        {"first_name": "A", "client_type": "adult"},
        token=r.get_json()["access_token"],
    )
    assert created.status_code == 201


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (lambda: idp_token("dr.lee@practice.test", verified=False), "not verified"),
        (lambda: idp_token("someone@practice.test"), "not bound"),
        (lambda: idp_token("dr.lee@practice.test", aud="other"), "rejected"),
        (lambda: idp_token("dr.lee@practice.test", iss="https://evil.test"), "trusted issuer"),
        (
            lambda: idp_token("dr.lee@practice.test", key=ec.generate_private_key(ec.SECP256R1())),
            "rejected",
        ),
        (lambda: idp_token("dr.lee@practice.test", exp=int(time.time()) - 3600), "expired"),
    ],
)
def test_untrusted_or_mismatched_logins_are_refused(prod_api: Api, token: Any, reason: str) -> None:
    r = _exchange(prod_api, token())
    assert r.status_code in (400, 401), r.get_json()
    # RFC 8693 §2.2.2: an unacceptable subject_token is invalid_request; a resource the login
    # is not bound to is invalid_target.
    expected = "invalid_target" if reason == "not bound" else "invalid_request"
    assert r.get_json()["error"] == expected
    assert reason in r.get_json()["error_description"]


def test_the_development_issuer_is_off_outside_development_mode(prod_api: Api) -> None:
    r = prod_api.http.get("/.well-known/oauth-authorization-server")
    assert r.status_code == 200
    assert prod_api.rt.dev_keys is None
