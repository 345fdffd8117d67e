"""Key rotation without downtime: old tokens verify until they expire."""

from __future__ import annotations

import datetime as dt

import jwt

from authz.base import clock
from authz.tokens import keys
from tests.oauth.conftest import Live


def test_old_tokens_keep_verifying_after_rotation_until_they_expire(live: Live) -> None:
    sam = live.api.client("Sam", "adult", "sam@x.test")
    old = live.sign_in(f"client:{sam['id']}", "sam@x.test")
    old_kid = jwt.get_unverified_header(old)["kid"]
    new_kid = keys.create_key(live.api.rt.store, "test")
    assert new_kid != old_kid
    # Before this worker notices the new key, it still signs and verifies with the old one.
    assert live.introspect(old)["active"] is True
    # The periodic reload (every worker does it within `refresh_seconds`).
    live.api.rt.keys.load()
    new = live.sign_in(f"client:{sam['id']}", "sam@x.test")
    assert jwt.get_unverified_header(new)["kid"] == new_kid
    published = {k["kid"] for k in live.api.http.get("/.well-known/jwks.json").get_json()["keys"]}
    assert {old_kid, new_kid} <= published
    # Both verify against the served JWKS alone, and both are active.
    assert live.verify(old)["sub"] == live.verify(new)["sub"] == f"client:{sam['id']}"
    assert live.introspect(old)["active"] is True
    assert live.exchange(old, f"client:{sam['id']}")["access_token"]
    # Once the old token has expired it is done, though its key may still be published.
    clock.travel(dt.timedelta(minutes=16))
    assert live.introspect(old) == {"active": False}
    live.refused("invalid_request", old, f"client:{sam['id']}")
