"""`authz.oauth.portal` against the live server: what a portal backend sees of a token."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from authz.base import clock
from authz.oauth.portal import PortalTokenError, PortalVerifier
from authz.tokens import keys
from tests.helpers import AUDIENCE
from tests.oauth.conftest import Live

JWKS = "/.well-known/jwks.json"


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _verifier(live: Live, **kwargs: object) -> PortalVerifier:
    return PortalVerifier(
        live.url,
        AUDIENCE,
        live.api.client_id,
        live.api.client_secret,
        **kwargs,  # type: ignore[arg-type]
    )


def test_the_acting_account_the_human_and_the_scopes(live: Live) -> None:
    receiver = live.api.client("Sam", "adult", "sam@x.test")
    link, caregiver_token = live.api.grant(receiver["id"], "jenna@x.test")
    delegated = live.exchange(caregiver_token, f"client:{receiver['id']}", scope="billing")
    verifier = _verifier(live)
    caller = verifier.verify(delegated["access_token"])
    assert caller.account == f"client:{receiver['id']}" and caller.account_id == receiver["id"]
    assert caller.human == f"client:{link['linked_client_id']}" and caller.delegated
    assert caller.scopes == {"billing"} and caller.grant == link["id"]
    assert caller.via == "delegation" and caller.org == live.api.org_id
    caller.require("billing")
    with pytest.raises(PortalTokenError, match="lacks scope documents"):
        caller.require("documents")
    own = verifier.verify(caregiver_token)
    assert own.account == own.human == f"client:{link['linked_client_id']}"
    assert not own.delegated
    # The JWKS was fetched once and cached.
    assert live.hits[JWKS] == 1


def test_introspection_for_revocation_sensitive_actions(live: Live) -> None:
    receiver = live.api.client("Sam", "adult", "sam@x.test")
    link, caregiver_token = live.api.grant(receiver["id"], "jenna@x.test")
    delegated = live.exchange(caregiver_token, f"client:{receiver['id']}")["access_token"]
    verifier = _verifier(live)
    assert verifier.verify(delegated, introspect=True).delegated
    live.api.ok(
        "PATCH",
        f"/v1/clients/{receiver['id']}/links/{link['id']}",
        {"portal_access": {"enabled": False}},
    )
    # The signature still holds; the grant does not.
    assert verifier.verify(delegated).account == f"client:{receiver['id']}"
    with pytest.raises(PortalTokenError, match="no longer active"):
        verifier.verify(delegated, introspect=True)
    without_credentials = PortalVerifier(live.url, AUDIENCE)
    with pytest.raises(PortalTokenError, match="needs the portal's client_id"):
        without_credentials.verify(delegated, introspect=True)


def test_an_unknown_kid_refetches_the_jwks_once(live: Live) -> None:
    sam = live.api.client("Sam", "adult", "sam@x.test")
    verifier = _verifier(live, refresh_cooldown=60.0)
    verifier.verify(live.sign_in(f"client:{sam['id']}", "sam@x.test"))
    assert live.hits[JWKS] == 1
    keys.create_key(live.api.rt.store, "test")
    live.api.rt.keys.load()
    rotated = live.sign_in(f"client:{sam['id']}", "sam@x.test")
    assert verifier.verify(rotated).account == f"client:{sam['id']}"
    assert live.hits[JWKS] == 2
    # A made-up kid inside the cooldown does not make the portal hammer the JWKS.
    _, body, sig = rotated.split(".")
    forged_header = _b64({"alg": "ES256", "typ": "at+jwt", "kid": "made-up"})
    with pytest.raises(PortalTokenError, match="unknown signing key"):
        verifier.verify(f"{forged_header}.{body}.{sig}")
    assert live.hits[JWKS] == 2


def test_bad_tokens_are_refused(live: Live) -> None:
    sam = live.api.client("Sam", "adult", "sam@x.test")
    token = live.sign_in(f"client:{sam['id']}", "sam@x.test")
    with pytest.raises(PortalTokenError, match="InvalidAudienceError"):
        PortalVerifier(live.url, "https://other-portal.test").verify(token)
    with pytest.raises(PortalTokenError, match="InvalidIssuerError"):
        PortalVerifier("https://elsewhere.test", AUDIENCE, jwks_url=f"{live.url}{JWKS}").verify(
            token
        )
    head, body, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    tampered = _b64(claims | {"sub": "client:cli_someone_else"})
    with pytest.raises(PortalTokenError, match="InvalidSignatureError"):
        _verifier(live).verify(f"{head}.{tampered}.{sig}")
    with pytest.raises(PortalTokenError, match="not a compact JWS"):
        _verifier(live).verify("nope")
    # Issued a quarter of an hour "ago" (our clock moved back): expired for the portal.
    clock.travel(-dt.timedelta(minutes=16))
    stale = live.sign_in(f"client:{sam['id']}", "sam@x.test")
    clock.reset()
    with pytest.raises(PortalTokenError, match="ExpiredSignatureError"):
        _verifier(live).verify(stale)
