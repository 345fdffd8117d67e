"""The exchange's fast path: exchanges that only read write nothing, and the strict reading of
our own tokens refuses every other spelling of a genuine one and every JWS extension."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest
import requests

from tests.oauth.conftest import Live

B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _unpadded(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decoded(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def test_exchanges_write_only_the_audit_of_what_they_issue(live: Live) -> None:
    sam = live.api.client("Sam", "adult", "sam@x.test")
    sue = live.api.client("Sue", "adult", "sam@x.test")
    live.sign_in(f"client:{sam['id']}", "sam@x.test")  # the first sign-in verifies the address
    link, jenna = live.api.grant(sam["id"], "jenna@x.test")
    before = live.api.snapshot()
    # A further sign-in, a toggle, a switch and a switch back, introspection: each issued token
    # is one audit row, and nothing else changes.
    sams = live.sign_in(f"client:{sam['id']}", "sam@x.test")
    assert live.verify(live.exchange(sams, f"client:{sue['id']}")["access_token"])["sub"] == (
        f"client:{sue['id']}"
    )
    as_sam = live.exchange(jenna, f"client:{sam['id']}")["access_token"]
    assert live.verify(as_sam)["grant"] == link["id"]
    back = live.exchange(as_sam, live.verify(jenna)["sub"])["access_token"]
    assert live.verify(back)["authz_via"] == "self"
    assert live.introspect(as_sam)["active"] is True
    live.api.assert_only_refusals_since(before, ["token.issued"] * 4)
    kinds = [e.after["kind"] for e in live.audit("token.issued")[-4:]]
    assert kinds == ["sign-in", "toggle", "switch", "switch back"]


def _signed(live: Live, header: dict[str, Any], payload: bytes) -> str:
    """A token signed with the service's own current key: only the content is wrong."""
    key = live.api.rt.keys.signing_key()
    head = {"alg": key.alg, "kid": key.kid, "typ": "at+jwt", **header}
    signing_input = f"{_unpadded(json.dumps(head).encode())}.{_unpadded(payload)}"
    signature = jwt.get_algorithm_by_name(key.alg).sign(signing_input.encode(), key.private)
    return f"{signing_input}.{_unpadded(signature)}"


def _variants(live: Live, genuine: str) -> dict[str, str]:
    head, body, sig = genuine.split(".")
    # The last character of a 64-byte signature carries 4 unused bits: flipping one of them
    # spells the same bytes differently.
    assert len(sig) % 4 == 2
    respelt = sig[:-1] + B64URL[B64URL.index(sig[-1]) ^ 1]
    assert _decoded(respelt) == _decoded(sig)
    claims = json.loads(_decoded(body))
    no_jti = json.dumps({k: v for k, v in claims.items() if k != "jti"}).encode()
    return {
        "non-canonical signature": f"{head}.{body}.{respelt}",
        "padded payload": f"{head}.{body}{'=' * (-len(body) % 4) or '===='}.{sig}",
        "trailing newline": genuine + "\n",
        "empty signature": f"{head}.{body}.",
        "critical extension": _signed(live, {"crit": ["exp"]}, json.dumps(claims).encode()),
        "unencoded payload option": _signed(live, {"b64": True}, json.dumps(claims).encode()),
        "payload not an object": _signed(live, {}, json.dumps([claims]).encode()),
        "payload without jti": _signed(live, {}, no_jti),
        "header not an object": f"{_unpadded(b'[1]')}.{body}.{sig}",
    }


@pytest.mark.parametrize(
    "name",
    [
        "non-canonical signature",
        "padded payload",
        "trailing newline",
        "empty signature",
        "critical extension",
        "unencoded payload option",
        "payload not an object",
        "payload without jti",
        "header not an object",
    ],
)
def test_other_spellings_and_extensions_are_refused(live: Live, name: str) -> None:
    sam = live.api.client("Sam", "adult", "sam@x.test")
    genuine = live.sign_in(f"client:{sam['id']}", "sam@x.test")
    forged = _variants(live, genuine)[name]
    claims = json.loads(_decoded(genuine.split(".")[1]))
    control = _signed(live, {}, json.dumps(claims).encode())
    assert live.introspect(control)["active"] is True  # hand-signing alone is not the flaw
    err = live.refused("invalid_request", forged, f"client:{sam['id']}")
    if name == "trailing newline":
        # A control character in any token-endpoint parameter is a malformed request (RFC 6749
        # §3.2 strictness), refused before any token is read, at introspection too.
        assert "subject_token contains a control character" in err.description
        r = requests.post(
            f"{live.url}/oauth/introspect",
            data={"token": forged},
            auth=(live.api.client_id, live.api.client_secret),
            timeout=10,
        )
        assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    else:
        assert "subject_token rejected" in err.description, name
        assert live.introspect(forged) == {"active": False}, name
    # The genuine token still works, so the refusal was about the spelling alone.
    assert live.introspect(genuine)["active"] is True
    assert live.exchange(genuine, f"client:{sam['id']}")["access_token"]
