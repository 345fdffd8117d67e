"""`/v1/access/*` over HTTP: decisions with reasons, freshness, payment isolation, lists."""

from __future__ import annotations

from typing import Any

from tests.helpers import Api


def _check(
    api: Api,
    service: str,
    token: str,
    action: str,
    owner: str,
    rtype: str = "invoice",
    rid: str | None = "inv_9",
    pm: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "token": token,
        "action": action,
        "resource": {"type": rtype, "id": rid, "owner": owner},
        **extra,
    }
    if pm:
        body["context"] = {"payment_method": pm}
    return api.ok("POST", "/v1/access/check", body, token=service)


def _family(api: Api) -> dict[str, Any]:
    sam = api.client("Sam", "minor", "jenna@x.test")
    link, jenna_token = api.grant(sam["id"], "caregiver@x.test")
    api.ok("POST", f"/v1/clients/{sam['id']}/payment-methods", {"id": "pm_sam", "label": "Visa"})
    api.ok(
        "POST",
        f"/v1/clients/{link['linked_client_id']}/payment-methods",
        {"id": "pm_jenna", "label": "Amex"},
    )
    delegated = api.exchange(jenna_token, f"client:{sam['id']}").get_json()["access_token"]
    return {
        "sam": sam,
        "link": link,
        "caregiver": jenna_token,
        "delegated": delegated,
        "service": api.service_token("authz:check"),
    }


def test_caregiver_pays_with_the_care_receivers_card_only(api: Api) -> None:
    f = _family(api)
    ok = _check(api, f["service"], f["delegated"], "invoice.pay", f["sam"]["id"], pm="pm_sam")
    assert ok["allowed"] is True and ok["decision_id"].startswith("dec_")
    assert f["link"]["id"] in ok["reason"] and "Dr. Lee" in ok["reason"]
    assert "invoice.pay" in ok["rule"]
    own_card = _check(
        api, f["service"], f["delegated"], "invoice.pay", f["sam"]["id"], pm="pm_jenna"
    )
    assert own_card["allowed"] is False and "pm_jenna" in own_card["reason"]
    assert "deny" in own_card["rule"]


def test_a_revoke_that_returned_is_never_followed_by_an_allow(api: Api) -> None:
    f = _family(api)
    assert _check(api, f["service"], f["delegated"], "invoice.read", f["sam"]["id"])["allowed"]
    revoked = api.ok(
        "PATCH",
        f"/v1/clients/{f['sam']['id']}/links/{f['link']['id']}",
        {"portal_access": {"enabled": False}},
    )
    after = _check(
        api,
        f["service"],
        f["delegated"],
        "invoice.read",
        f["sam"]["id"],
        consistency={"at_least": revoked["revision"]},
    )
    assert after["allowed"] is False
    assert int(after["revision"]) >= int(revoked["revision"])


def test_unknown_actions_and_other_organizations_are_denied_with_a_reason(app, api: Api) -> None:
    f = _family(api)
    unknown = _check(api, f["service"], f["caregiver"], "invoice.steal", f["sam"]["id"])
    assert unknown["allowed"] is False and "unknown action" in unknown["reason"]
    other = Api.bootstrap(app, name="Other")
    zoe = other.client("Zoe")
    cross = _check(api, f["service"], f["caregiver"], "invoice.read", zoe["id"])
    assert cross["allowed"] is False and "organization" in cross["reason"]


def test_batch_answers_in_order(api: Api) -> None:
    f = _family(api)
    checks = [
        {
            "token": f["delegated"],
            "action": "invoice.read",
            "resource": {"type": "invoice", "id": "inv_1", "owner": f["sam"]["id"]},
        },
        {
            "token": f["delegated"],
            "action": "invoice.pay",
            "resource": {"type": "invoice", "id": "inv_1", "owner": f["sam"]["id"]},
            "context": {"payment_method": "pm_jenna"},
        },
    ]
    got = api.ok("POST", "/v1/access/check-batch", {"checks": checks}, token=f["service"])
    assert [r["allowed"] for r in got["results"]] == [True, False]
    r = api.call("POST", "/v1/access/check-batch", {"checks": checks * 501}, token=f["service"])
    assert r.status_code == 400


def test_a_batch_is_recorded_before_it_is_answered(api: Api, monkeypatch) -> None:
    from sqlalchemy import select

    from authz.service.access import service
    from authz.store.models import Decision

    f = _family(api)
    check = {
        "token": f["delegated"],
        "action": "invoice.pay",
        "resource": {"type": "invoice", "id": "inv_1", "owner": f["sam"]["id"]},
    }
    checks = [
        {**check, "context": {"payment_method": "pm_sam"}},
        {**check, "context": {"payment_method": "pm_jenna"}},
    ]
    got = api.ok("POST", "/v1/access/check-batch", {"checks": checks}, token=f["service"])
    ids = [r["decision_id"] for r in got["results"]]
    with api.rt.store.read() as session:  # no flush: the rows are there already
        rows = {d.id: d for d in session.scalars(select(Decision).where(Decision.id.in_(ids)))}
    assert [rows[i].allowed for i in ids] == [True, False]

    def cannot_write(rows: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(service(api.rt).log, "_append", cannot_write)
    r = api.call("POST", "/v1/access/check-batch", {"checks": checks}, token=f["service"])
    assert r.status_code == 503 and "results" not in r.get_json(), r.get_json()
    assert r.get_json()["detail"] == "decisions cannot be recorded: OSError"


def test_bad_check_requests_are_problems(api: Api) -> None:
    service = api.service_token("authz:check")
    for body in (
        {},
        {"token": "x", "action": "invoice.pay"},
        {"token": "x", "action": "invoice.pay", "resource": {"type": "invoice"}, "extra": 1},
        {
            "token": "x",
            "action": "invoice.pay",
            "resource": {"type": "invoice"},
            "consistency": {"at_least": "abc"},
        },
    ):
        r = api.call("POST", "/v1/access/check", body, token=service)
        assert r.status_code == 400 and r.mimetype == "application/problem+json", body
    no_scope = api.service_token("authz:admin")
    r = api.call(
        "POST",
        "/v1/access/check",
        {"token": "x", "action": "invoice.pay", "resource": {"type": "invoice"}},
        token=no_scope,
    )
    assert r.status_code == 403


def test_explicit_subjects_need_their_scope(api: Api) -> None:
    f = _family(api)
    caregiver_id = f["link"]["linked_client_id"]
    body = {
        "subject": f"client:{caregiver_id}",
        "acting_as": f"client:{f['sam']['id']}",
        "action": "invoice.read",
        "resource": {"type": "invoice", "id": "inv_1", "owner": f["sam"]["id"]},
    }
    assert api.call("POST", "/v1/access/check", body, token=f["service"]).status_code == 403
    trusted = api.service_token("authz:check:subjects")
    assert api.ok("POST", "/v1/access/check", body, token=trusted)["allowed"] is True


def test_accounts_and_who_can_agree_with_check(api: Api) -> None:
    f = _family(api)
    listed = api.ok("GET", "/v1/access/accounts", token=f["caregiver"])["accounts"]
    assert {(a["client_id"], a["via"]) for a in listed} == {
        (f["link"]["linked_client_id"], "self"),
        (f["sam"]["id"], "delegation"),
    }
    by_login = api.ok("GET", "/v1/access/accounts?login=caregiver@x.test", token=f["service"])[
        "accounts"
    ]
    assert {a["client_id"] for a in by_login} == {a["client_id"] for a in listed}
    who = api.ok("GET", f"/v1/access/who-can?client={f['sam']['id']}")["access"]
    relations = {(w["subject"], w["relation"]) for w in who}
    assert (f"client:{f['link']['linked_client_id']}", "caregiver_full") in relations
    assert (f"provider:{api.provider_id}", "provider") in relations


def _revoke(api: Api, token: str) -> None:
    r = api.http.post("/oauth/revoke", data={"token": token}, headers=api.basic())
    assert r.status_code == 200, r.get_data()


def _decision_row(api: Api, decision_id: str) -> Any:
    from sqlalchemy import select

    from authz.service.access import service
    from authz.store.models import Decision

    service(api.rt).log.flush()
    with api.rt.store.read() as session:
        return session.scalars(select(Decision).where(Decision.id == decision_id)).one()


def test_a_revoked_user_token_is_a_logged_deny_that_says_why(api: Api) -> None:
    f = _family(api)
    # Allowed first, so the token's verified signature is cached when the revoke arrives.
    assert _check(api, f["service"], f["delegated"], "invoice.read", f["sam"]["id"])["allowed"]
    _revoke(api, f["delegated"])
    after = _check(api, f["service"], f["delegated"], "invoice.read", f["sam"]["id"])
    assert after["allowed"] is False
    assert after["reason"] == "the user's access token was revoked" and after["rule"].startswith(
        "token:"
    )
    row = _decision_row(api, after["decision_id"])
    assert row.allowed is False and "revoked" in row.reason
    assert row.actor == f"client:{f['link']['linked_client_id']}"  # who, though the token is dead


def test_a_revoked_grant_denies_the_next_check_without_a_consistency_token(api: Api) -> None:
    f = _family(api)
    assert _check(api, f["service"], f["delegated"], "invoice.read", f["sam"]["id"])["allowed"]
    api.ok(
        "PATCH",
        f"/v1/clients/{f['sam']['id']}/links/{f['link']['id']}",
        {"portal_access": {"enabled": False}},
    )
    after = _check(api, f["service"], f["delegated"], "invoice.read", f["sam"]["id"])
    assert after["allowed"] is False and "portal access is revoked" in after["reason"]


def test_unverifiable_and_foreign_user_tokens_are_denied_with_reasons(app, api: Api) -> None:
    f = _family(api)
    forged = f["delegated"][:-4] + ("AAAA" if not f["delegated"].endswith("AAAA") else "BBBB")
    for token, words in (("not-a-jwt", "not a compact JWS"), (forged, "invalid token")):
        d = _check(api, f["service"], token, "invoice.read", f["sam"]["id"])
        assert d["allowed"] is False and words in d["reason"], d
        assert _decision_row(api, d["decision_id"]).actor == "token:unverified"
    other = Api.bootstrap(app, name="Other")
    zoe = other.client("Zoe", "adult", "zoe@x.test")
    zoe_token = other.sign_in(f"client:{zoe['id']}", "zoe@x.test")
    d = _check(api, f["service"], zoe_token, "invoice.read", zoe["id"])
    assert d["allowed"] is False and "another organization" in d["reason"]


def test_a_revoked_caller_token_is_refused_right_after_the_revoke(api: Api) -> None:
    f = _family(api)
    assert _check(
        api,
        f["service"],
        f["caregiver"],
        "client.read",
        f["link"]["linked_client_id"],
        rtype="client",
        rid=None,
    )["allowed"]
    _revoke(api, f["service"])
    r = api.call(
        "POST",
        "/v1/access/check",
        {"token": f["caregiver"], "action": "client.read", "resource": {"type": "client"}},
        token=f["service"],
    )
    assert r.status_code == 401 and "revoked" in r.get_json()["detail"]


def test_a_deactivated_account_and_a_narrowed_grant_end_their_tokens(api: Api) -> None:
    f = _family(api)
    api.ok(
        "PATCH",
        f"/v1/clients/{f['sam']['id']}/links/{f['link']['id']}",
        {"portal_access": {"enabled": True, "access_level": "billing"}},
    )
    d = _check(api, f["service"], f["delegated"], "invoice.read", f["sam"]["id"])
    assert d["allowed"] is False and "narrowed" in d["reason"], d
    api.ok("PATCH", f"/v1/clients/{f['link']['linked_client_id']}", {"active": False})
    d = _check(
        api,
        f["service"],
        f["caregiver"],
        "client.read",
        f["link"]["linked_client_id"],
        rtype="client",
        rid=None,
    )
    assert d["allowed"] is False and "was removed" in d["reason"], d


def test_batch_denies_a_bad_token_in_its_place(api: Api) -> None:
    f = _family(api)
    item = {
        "action": "invoice.read",
        "resource": {"type": "invoice", "id": "inv_1", "owner": f["sam"]["id"]},
    }
    got = api.ok(
        "POST",
        "/v1/access/check-batch",
        {
            "checks": [
                {"token": f["delegated"], **item},
                {"token": "x", **item},
                {"token": f["delegated"], **item},
            ]
        },
        token=f["service"],
    )
    assert [r["allowed"] for r in got["results"]] == [True, False, True]
    assert "token" in got["results"][1]["reason"]
