"""The caregiver's invite over the JSON API: proof of relationship, lockout, accept, decline,
and "my access" on both sides with who acted."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from authz.base import clock
from authz.store.models import AuditEvent
from tests.helpers import Api

BORN = "1950-02-03"


def offer(api: Api, level: str = "full") -> dict[str, Any]:
    """Luis (an adult with a recorded birth date) is offered to Carlos; Carlos signs in."""
    luis = api.client("Luis", "adult", "luis@x.test", birth_date=BORN)
    carlos = api.client("Carlos", "adult", "carlos@x.test")
    link = api.ok(
        "POST",
        f"/v1/clients/{luis['id']}/links",
        {
            "client_id": carlos["id"],
            "relationship": "caregiver",
            "portal_access": {
                "enabled": True,
                "access_level": level,
                "acknowledgement": "Carlos helps Luis.",
            },
        },
        status=201,
    )
    token = api.sign_in(f"client:{carlos['id']}", "carlos@x.test")
    return {
        "luis": luis,
        "carlos": carlos,
        "link": link,
        "invite": link["dev_invite_token"],
        "token": token,
    }


def kinds(api: Api) -> list[str]:
    with api.rt.store.read() as session:
        return list(session.scalars(select(AuditEvent.kind).order_by(AuditEvent.seq)))


def outbox(api: Api) -> list[dict[str, Any]]:
    return list(api.ok("GET", "/v1/outbox")["items"])


def test_the_invite_says_who_what_and_what_the_level_allows_from_the_policy(api: Api) -> None:
    f = offer(api, "billing")
    view = api.ok("GET", f"/v1/invites/{f['invite']}", token=f["token"])
    assert view["status"] == "pending" and view["access_level"] == "billing"
    assert view["invited_by"]["name"] == "Dr. Lee" and view["practice"]["name"] == "Practice"
    assert view["care_receiver"]["name"] == "Luis Rivera"
    assert view["acknowledgement"] == "Carlos helps Luis."
    may = {a for g in view["may"] for a in g["actions"]}
    may_not = {a for g in view["may_not"] for a in g["actions"]}
    assert "invoice.pay" in may and "appointment.book" in may_not
    assert "grant.revoke" in may_not and not may & may_not


def test_accepting_needs_the_proof_and_a_wrong_birth_date_is_refused_and_audited(
    api: Api,
) -> None:
    f = offer(api)
    r = api.call("POST", f"/v1/invites/{f['invite']}/accept", {}, token=f["token"])
    assert r.status_code == 409 and "prove the relationship" in r.get_json()["detail"]
    r = api.call(
        "POST", f"/v1/invites/{f['invite']}/proof", {"birth_date": "1950-03-02"}, token=f["token"]
    )
    assert r.status_code == 400 and "4 tries left" in r.get_json()["detail"]
    r = api.call(
        "POST", f"/v1/invites/{f['invite']}/proof", {"birth_date": "soon"}, token=f["token"]
    )
    assert r.status_code == 400 and "YYYY-MM-DD" in r.get_json()["detail"]
    ok = api.ok("POST", f"/v1/invites/{f['invite']}/proof", {"birth_date": BORN}, token=f["token"])
    assert ok["proved"] is True
    accepted = api.ok("POST", f"/v1/invites/{f['invite']}/accept", {}, token=f["token"])
    assert accepted["portal_access"]["status"] == "active"
    trail = kinds(api)
    assert trail.count("invite.proof_failed") == 1 and "invite.proved" in trail
    mails = [(m["to"], m["kind"]) for m in outbox(api)]
    assert (api.provider_email, "invite.accepted") in mails
    assert ("luis@x.test", "invite.accepted") in mails


def test_five_wrong_birth_dates_lock_the_invite_and_tell_the_provider(api: Api) -> None:
    f = offer(api)
    for left in (4, 3, 2, 1):
        r = api.call(
            "POST",
            f"/v1/invites/{f['invite']}/proof",
            {"birth_date": "2001-01-01"},
            token=f["token"],
        )
        assert r.status_code == 400 and f"{left} tr" in r.get_json()["detail"]
    r = api.call(
        "POST", f"/v1/invites/{f['invite']}/proof", {"birth_date": "2001-01-01"}, token=f["token"]
    )
    assert r.status_code == 410 and "locked" in r.get_json()["detail"]
    r = api.call("POST", f"/v1/invites/{f['invite']}/proof", {"birth_date": BORN}, token=f["token"])
    assert r.status_code == 410
    r = api.call("POST", f"/v1/invites/{f['invite']}/accept", {}, token=f["token"])
    assert r.status_code == 410
    assert kinds(api).count("invite.proof_failed") == 5 and "invite.locked" in kinds(api)
    locked = [m for m in outbox(api) if m["kind"] == "invite.locked"]
    assert [m["to"] for m in locked] == [api.provider_email]
    view = api.ok("GET", f"/v1/invites/{f['invite']}", token=f["token"])
    assert view["status"] == "locked" and view["proof_attempts_left"] == 0


def test_another_login_cannot_open_or_answer_the_invite(api: Api) -> None:
    f = offer(api)
    api.client("Eve", "adult", "eve@x.test")
    eve_id = api.ok("GET", "/v1/clients?email=eve@x.test")["items"][0]["id"]
    eve = api.sign_in(f"client:{eve_id}", "eve@x.test")
    for method, path, body in (
        ("GET", "", None),
        ("POST", "/proof", {"birth_date": BORN}),
        ("POST", "/decline", {}),
        ("POST", "/accept", {}),
    ):
        r = api.call(method, f"/v1/invites/{f['invite']}{path}", body, token=eve)
        assert r.status_code == 403, (path, r.get_json())
    assert kinds(api).count("invite.refused") == 4


def test_declining_ends_the_offer_and_tells_the_provider_and_the_adult(api: Api) -> None:
    f = offer(api)
    out = api.ok(
        "POST", f"/v1/invites/{f['invite']}/decline", {"reason": "not now"}, token=f["token"]
    )
    assert out["portal_access"]["status"] == "revoked"
    assert out["portal_access"]["revoked_reason"] == "declined by the caregiver: not now"
    mails = [(m["to"], m["kind"]) for m in outbox(api)]
    assert (api.provider_email, "invite.declined") in mails
    assert ("luis@x.test", "invite.declined") in mails
    view = api.ok("GET", f"/v1/invites/{f['invite']}", token=f["token"])
    assert view["status"] == "declined" and "declined" in view["status_text"]


def test_my_access_shows_both_sides_and_who_acted(api: Api) -> None:
    f = offer(api)
    api.accept(f["invite"], f["token"])
    luis = api.sign_in(f"client:{f['luis']['id']}", "luis@x.test")
    mine = api.ok("GET", "/v1/access/my-access", token=f["token"])
    assert [a["client_id"] for a in mine["can_act_as"]] == [f["carlos"]["id"], f["luis"]["id"]]
    held = mine["accounts"][0]["grants_i_hold"]
    assert held[0]["care_receiver"]["id"] == f["luis"]["id"] and held[0]["can_end"]
    theirs = api.ok("GET", "/v1/access/my-access", token=luis)
    on_me = theirs["accounts"][0]["grants_on_me"]
    assert on_me[0]["caregiver"]["id"] == f["carlos"]["id"] and on_me[0]["can_end"]
    assert [w["subject"] for w in theirs["accounts"][0]["who_can_act"]] == [
        f"client:{f['carlos']['id']}"
    ]
    switched = api.exchange(f["token"], f"client:{f['luis']['id']}").get_json()["access_token"]
    service = api.service_token("authz:check")
    api.ok(
        "POST",
        "/v1/access/check",
        {
            "token": switched,
            "action": "invoice.read",
            "resource": {"type": "invoice", "id": "inv_1", "owner": f["luis"]["id"]},
        },
        token=service,
    )
    api.rt.extras["access"].log.flush()
    acted = api.ok("GET", f"/v1/access/activity?client={f['luis']['id']}", token=luis)
    assert [i["kind"] for i in acted["items"]] == ["decision", "switch"]
    assert {i["actor"] for i in acted["items"]} == {f"client:{f['carlos']['id']}"}
    page = api.ok("GET", f"/v1/access/activity?client={f['luis']['id']}&limit=1", token=luis)
    assert page["items"][0]["kind"] == "decision" and page["next_cursor"]
    rest = api.ok(
        "GET",
        f"/v1/access/activity?client={f['luis']['id']}&limit=1&cursor={page['next_cursor']}",
        token=luis,
    )
    assert [i["kind"] for i in rest["items"]] == ["switch"] and rest["next_cursor"] is None
    r = api.call("GET", f"/v1/access/activity?client={f['luis']['id']}", token=f["token"])
    assert r.status_code == 403
    r = api.call("GET", "/v1/access/my-access", token=switched)
    assert r.status_code == 403


def test_an_expired_or_withdrawn_invite_says_so_plainly(api: Api) -> None:
    f = offer(api)
    api.ok(
        "PATCH",
        f"/v1/clients/{f['luis']['id']}/links/{f['link']['id']}",
        {"portal_access": {"enabled": False}},
    )
    view = api.ok("GET", f"/v1/invites/{f['invite']}", token=f["token"])
    assert view["status"] == "cancelled" and "withdrawn" in view["status_text"]
    r = api.call("POST", f"/v1/invites/{f['invite']}/proof", {"birth_date": BORN}, token=f["token"])
    assert r.status_code == 410 and "withdrawn" in r.get_json()["detail"]
    g = offer_again(api, f)
    clock.travel(dt.timedelta(days=8))
    api.tokens.clear()
    token = api.sign_in(f"client:{f['carlos']['id']}", "carlos@x.test")
    view = api.ok("GET", f"/v1/invites/{g}", token=token)
    assert view["status"] == "expired" and "expired" in view["status_text"]
    r = api.call("POST", f"/v1/invites/{g}/decline", {}, token=token)
    assert r.status_code == 410 and "expired" in r.get_json()["detail"]


def offer_again(api: Api, f: dict[str, Any]) -> str:
    """Portal access enabled again on the same link: a new invite."""
    again = api.ok(
        "PATCH",
        f"/v1/clients/{f['luis']['id']}/links/{f['link']['id']}",
        {"portal_access": {"enabled": True, "acknowledgement": "Again."}},
    )
    return str(again["dev_invite_token"])
