"""Edges of the decision API the generated requests may not reach: a bad user token is a deny
(never an error a caller could mistake), and a revision that is not ASCII digits is a 400."""

from __future__ import annotations

from tests.helpers import Api


def test_bad_user_tokens_are_denies_and_odd_revisions_are_problems(api: Api) -> None:
    sam = api.client("Sam", "adult", "sam@x.test")["id"]
    service = api.service_token("authz:check")
    resource = {"type": "invoice", "id": "inv_1", "owner": sam}
    for token in ("garbage", api.provider_token() + "x", "a.b.c"):
        r = api.call(
            "POST",
            "/v1/access/check",
            {"token": token, "action": "invoice.read", "resource": resource},
            token=service,
        )
        assert r.status_code == 200, r.get_json()
        assert r.get_json()["allowed"] is False and r.get_json()["reason"]
    for revision in ("²", "١٢", "-1", "1.0"):
        r = api.call(
            "POST",
            "/v1/access/check",
            {
                "token": "garbage",
                "action": "invoice.read",
                "resource": resource,
                "consistency": {"at_least": revision},
            },
            token=service,
        )
        assert r.status_code == 400, (revision, r.status_code)
        assert r.get_json()["errors"][0]["field"] == "consistency.at_least"


def test_a_nul_in_a_check_is_refused_and_does_not_jam_the_decision_log(api: Api) -> None:
    # PostgreSQL cannot store U+0000; a decision carrying one would fail every log write after it.
    sam = api.client("Sam", "adult", "sam@x.test")["id"]
    service = api.service_token("authz:check")
    body = {"token": "garbage", "resource": {"type": "invoice", "id": "inv_1", "owner": sam}}
    bad = api.call("POST", "/v1/access/check", {**body, "action": "invoice.\x00"}, token=service)
    assert bad.status_code == 400, bad.get_json()
    batch = {"checks": [{**body, "action": "invoice.read", "resource": {"type": "\x00"}}]}
    assert api.call("POST", "/v1/access/check-batch", batch, token=service).status_code == 400
    who = api.call("GET", "/v1/access/who-can?client=cli_%00", token=service)
    assert who.status_code == 400
    for _ in range(3):
        ok = api.call("POST", "/v1/access/check", {**body, "action": "invoice.read"}, token=service)
        assert ok.status_code == 200, ok.get_json()
        api.rt.extras["access"].log.flush()
