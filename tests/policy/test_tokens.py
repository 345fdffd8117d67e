"""Token liveness from the fact index agrees with `authz.oauth.token_status` (which reads the store),
and the verified-token cache never outlives `exp` nor its bound."""

from __future__ import annotations

import datetime as dt
from typing import Any

from authz.base import clock
from authz.oauth import token_status
from authz.service import access
from authz.service.access import service
from authz.store.models import OAuthClient
from authz.tokens import rfc9068
from authz.tokens.validity import TokenCache, token_problem
from tests.helpers import Api


def _agree(api: Api, tokens: dict[str, str]) -> dict[str, bool]:
    svc = service(api.rt)
    svc.facts.ensure_fresh(api.rt.store)
    alive = {}
    for name, token in tokens.items():
        expected = token_status.check(api.rt, token)
        claims = rfc9068.verify(api.rt.keys, token, api.rt.settings.issuer)
        problem = token_problem(svc.facts, claims, api.rt.settings.majority_age)
        assert (problem is None) == expected.active, (name, problem, expected.reason)
        # The cache's answer, remembered from earlier rounds while the facts were older.
        remembered = svc.tokens.live(token, svc.facts, api.rt.settings.majority_age).problem
        assert remembered == problem, (name, remembered, problem)
        alive[name] = expected.active
    return alive


def test_fact_liveness_matches_the_store_through_a_lifecycle(api: Api) -> None:
    sam = api.client("Sam", "minor", "fam@x.test", birth_date="2016-03-01")
    link, caregiver = api.grant(sam["id"], "care@x.test")
    twin = api.client("Kai", "adult", "care@x.test")
    toggled = api.exchange(caregiver, f"client:{twin['id']}").get_json()["access_token"]
    delegated = api.exchange(caregiver, f"client:{sam['id']}").get_json()["access_token"]
    tokens: dict[str, Any] = {
        "caregiver": caregiver,
        "toggled": toggled,
        "delegated": delegated,
        "provider": api.provider_token(),
        "service": api.service_token("authz:check"),
    }
    assert all(_agree(api, tokens).values())

    api.ok(
        "PATCH",
        f"/v1/clients/{sam['id']}/links/{link['id']}",
        {"portal_access": {"enabled": True, "access_level": "scheduling"}},
    )
    assert _agree(api, tokens) == {**dict.fromkeys(tokens, True), "delegated": False}

    api.ok("PATCH", f"/v1/clients/{twin['id']}", {"email": "kai@x.test"})
    assert _agree(api, tokens)["toggled"] is False

    r = api.http.post("/oauth/revoke", data={"token": caregiver}, headers=api.basic())
    assert r.status_code == 200
    assert _agree(api, tokens)["caregiver"] is False

    with api.rt.store.write("test", api.org_id) as txn:
        row = txn.session.get(OAuthClient, api.client_id)
        assert row is not None
        row.disabled_at = clock.now()
        txn.record("oauth_client.disabled", api.client_id, None, {"disabled": True})
    assert not any(_agree(api, tokens).values())


def test_the_cache_is_bounded_and_never_serves_past_exp(api: Api) -> None:
    cache = TokenCache(api.rt.keys, api.rt.settings.issuer, size=3)
    tokens = [api.service_token("authz:check") for _ in range(5)]
    for token in tokens:
        cache.verify(token)
    assert len(cache) == 3
    cache.verify(tokens[-1])
    assert cache.hits == 1
    clock.travel(dt.timedelta(minutes=16))  # past exp (tokens live at most 15 minutes)
    try:
        cache.verify(tokens[-1])
    except rfc9068.InvalidToken as exc:
        assert "expired" in str(exc)
    else:
        raise AssertionError("an expired token was served from the cache")
    assert cache.hits == 1


def test_a_token_found_good_stops_being_good_when_its_grant_ends(api: Api) -> None:
    """No write happens when a grant reaches its `expires_at`: the cached answer must end."""
    sam = api.client("Sam", "adult", "sam@x.test")
    link, caregiver = api.grant(sam["id"], "care@x.test")
    ends = clock.now() + dt.timedelta(minutes=10)
    api.ok(
        "PATCH",
        f"/v1/clients/{sam['id']}/links/{link['id']}",
        {"portal_access": {"enabled": True, "expires_at": ends.isoformat()}},
    )
    delegated = api.exchange(caregiver, f"client:{sam['id']}").get_json()["access_token"]
    svc = access.service(api.rt)
    svc.fresh(access.Consistency(None))
    revision = svc.facts.revision
    assert svc.tokens.live(delegated, svc.facts).problem is None
    assert svc.tokens.live(delegated, svc.facts).problem is None  # from the cache
    clock.travel(dt.timedelta(minutes=11))
    svc.fresh(access.Consistency(None))
    assert svc.facts.revision == revision
    assert svc.tokens.live(delegated, svc.facts).problem == "portal access expired"
