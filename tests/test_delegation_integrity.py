"""Delegated access exactly as wide as granted, and recorded every time (issue 11, and issue 12's
revived switch token): one test per finding, through the HTTP API."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from sqlalchemy import select

from authz.base import clock
from authz.oauth import oauth_clients
from authz.oauth.oauth_clients import TOKEN_EXCHANGE
from authz.policy.grants import CLIENT_SCOPES
from authz.service.access import service
from authz.store.models import AuditEvent, Decision, OutboxMessage
from tests.helpers import ID_TOKEN, Api

ACK = "I confirm full access is intended."


def _check(api: Api, token: str, action: str, owner: str, **extra: Any) -> dict[str, Any]:
    rtype = action.split(".")[0]
    body = {
        "token": token,
        "action": action,
        "resource": {"type": rtype, "id": "x_1", "owner": owner},
    }
    body.update(extra)
    service_token = api.tokens.get("check") or api.service_token("authz:check")
    api.tokens["check"] = service_token
    return api.ok("POST", "/v1/access/check", body, token=service_token)


def _introspect(api: Api, token: str) -> dict[str, Any]:
    r = api.http.post("/oauth/introspect", data={"token": token}, headers=api.basic())
    assert r.status_code == 200
    return dict(r.get_json())


def _audit(api: Api, kind: str) -> list[AuditEvent]:
    with api.rt.store.read() as session:
        return list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.kind == kind).order_by(AuditEvent.seq)
            )
        )


def _outbox_count(api: Api) -> int:
    with api.rt.store.read() as session:
        return len(list(session.scalars(select(OutboxMessage.id))))


def _family(api: Api, level: str | None = None, **portal: Any) -> dict[str, Any]:
    mia = api.client("Mia", "adult", "mia@x.test")
    carlos = api.client("Carlos", "adult", "carlos@x.test")
    access: dict[str, Any] = {"enabled": True, "acknowledgement": ACK, **portal}
    if level:
        access["access_level"] = level
    link = api.ok(
        "POST",
        f"/v1/clients/{mia['id']}/links",
        {"client_id": carlos["id"], "relationship": "caregiver", "portal_access": access},
    )
    own = api.sign_in(f"client:{carlos['id']}", "carlos@x.test")
    api.accept(link["dev_invite_token"], own)
    return {"mia": mia, "carlos": carlos, "link": link, "own": own}


def _switch(api: Api, own: str, receiver: str) -> str:
    r = api.exchange(own, f"client:{receiver}")
    assert r.status_code == 200, r.get_json()
    return str(r.get_json()["access_token"])


# 1. The audience is checked where tokens are used.
def test_a_token_for_another_audience_counts_for_nothing(api: Api) -> None:
    jenna = api.client("Jenna", "adult", "jenna@x.test")
    pharmacy = oauth_clients.create_client(
        api.rt.store, "test", api.org_id, ["https://pharmacy.test"], list(CLIENT_SCOPES), "pharmacy"
    )
    r = api.http.post(
        "/oauth/token",
        data={
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": api.id_token("jenna@x.test"),
            "subject_token_type": ID_TOKEN,
            "resource": f"client:{jenna['id']}",
            "audience": "https://pharmacy.test",
        },
        headers=api.basic(pharmacy["client_id"], pharmacy["client_secret"]),
    )
    foreign = r.get_json()["access_token"]
    decided = _check(api, foreign, "invoice.read", jenna["id"])
    assert decided["allowed"] is False and "audience" in decided["reason"]
    # Her token from the portal's own client counts.
    own = api.sign_in(f"client:{jenna['id']}", "jenna@x.test")
    assert _check(api, own, "invoice.read", jenna["id"])["allowed"] is True
    # The portal backend may not exchange it either.
    refused = api.exchange(foreign, f"client:{jenna['id']}")
    assert refused.status_code == 400 and "audience" in refused.get_json()["error_description"]


# 2. A caregiver acts for the care receiver only with the Switch Account token.
def test_a_caregivers_own_token_does_not_act_for_the_care_receiver(api: Api) -> None:
    f = _family(api, "billing")
    mia = f["mia"]["id"]
    api.ok("POST", f"/v1/clients/{mia}/payment-methods", {"id": "pm_mia", "label": "Visa"})
    card = {"context": {"payment_method": "pm_mia"}}
    own = _check(api, f["own"], "invoice.pay", mia, **card)
    assert own["allowed"] is False and own["rule"] == "token: one account"
    switched = _switch(api, f["own"], mia)
    assert _check(api, switched, "invoice.pay", mia, **card)["allowed"] is True
    narrowed = _check(api, switched, "message.send", f["mia"]["id"])
    assert narrowed["allowed"] is False and narrowed["rule"] == "token: scope"
    service(api.rt).log.flush()
    with api.rt.store.read() as session:
        row = session.scalars(
            select(Decision).where(Decision.action == "invoice.pay", Decision.allowed.is_(True))
        ).one()
    assert (row.actor, row.subject) == (f"client:{f['carlos']['id']}", f"client:{f['mia']['id']}")


# 3. Shared email: one rule, shown the same everywhere, and the log says which login acted.
def test_the_shared_email_rule_is_the_same_in_every_view(api: Api) -> None:
    alex = api.client("Alex", "adult", "family@x.test")
    casey = api.client("Casey", "adult", "family@x.test")  # nobody ever signed in as Casey
    mine = api.sign_in(f"client:{alex['id']}", "family@x.test")
    listed = api.ok("GET", "/v1/access/accounts", token=mine)["accounts"]
    assert {(a["client_id"], a["via"]) for a in listed} == {
        (alex["id"], "self"),
        (casey["id"], "shared_email"),
    }
    check_token = api.service_token("authz:check")
    by_login = api.ok("GET", "/v1/access/accounts?login=family@x.test", token=check_token)
    assert {a["client_id"] for a in by_login["accounts"]} == {alex["id"], casey["id"]}
    who = api.ok("GET", f"/v1/access/who-can?client={casey['id']}")["access"]
    assert {"subject": f"client:{alex['id']}", "relation": "shared_email"}.items() <= next(
        a for a in who if a["subject"] == f"client:{alex['id']}"
    ).items()
    toggled = _switch(api, mine, casey["id"])
    assert _check(api, toggled, "invoice.read", casey["id"])["allowed"] is True
    service(api.rt).log.flush()
    with api.rt.store.read() as session:
        row = session.scalars(select(Decision).where(Decision.action == "invoice.read")).one()
    assert (row.actor, row.subject) == (f"client:{alex['id']}", f"client:{casey['id']}")
    review = api.call("GET", "/v1/review", token=_reviewer(api))  # the review shows it too
    assert review.status_code == 200
    page = review.get_data(as_text=True)
    assert "Alex" in page and "Casey" in page


# 4. A grant widens only with a new acknowledgement; a patch is a merge patch.
def test_widening_needs_a_new_acknowledgement_and_absent_keys_keep_their_values(api: Api) -> None:
    f = _family(api, "billing")
    path = f"/v1/clients/{f['mia']['id']}/links/{f['link']['id']}"
    r = api.call("PATCH", path, {"portal_access": {"enabled": True, "access_level": "full"}})
    assert r.status_code == 400
    assert r.get_json()["errors"][0]["field"] == "portal_access.acknowledgement"
    assert api.ok("GET", path)["portal_access"]["access_level"] == "billing"
    widened = api.ok(
        "PATCH",
        path,
        {"portal_access": {"access_level": "full", "acknowledgement": "Full access now, agreed."}},
    )
    pa = widened["portal_access"]
    assert (pa["status"], pa["access_level"]) == ("active", "full")
    assert pa["acknowledgement"] == "Full access now, agreed."
    assert _audit(api, "grant.widened")
    emails = {m for m in _recipients(api, "portal_access.changed")}
    assert emails == {"carlos@x.test", "mia@x.test"}
    # Narrowing needs none.
    narrowed = api.ok("PATCH", path, {"portal_access": {"access_level": "scheduling"}})
    assert narrowed["portal_access"]["access_level"] == "scheduling"


def _recipients(api: Api, kind: str) -> list[str]:
    with api.rt.store.read() as session:
        rows = select(OutboxMessage.to_address).where(OutboxMessage.kind == kind)
        return list(session.scalars(rows))


def test_the_same_terms_change_nothing(api: Api) -> None:
    ends = (clock.now() + dt.timedelta(days=3)).isoformat()
    f = _family(api, "scheduling", expires_at=ends)
    path = f"/v1/clients/{f['mia']['id']}/links/{f['link']['id']}"
    switched = _switch(api, f["own"], f["mia"]["id"])
    before, outbox = api.rt.store.revision(), _outbox_count(api)
    same = api.ok("PATCH", path, {"portal_access": {"enabled": True}})
    assert same["portal_access"]["access_level"] == "scheduling"
    assert same["portal_access"]["expires_at"] is not None
    resent = api.ok("PATCH", path, {"portal_access": {"enabled": True, "acknowledgement": ACK}})
    assert resent["portal_access"]["status"] == "active"
    assert api.rt.store.revision() == before and _outbox_count(api) == outbox
    assert _introspect(api, switched)["active"] is True


# 5. What cannot work is refused at once.
def test_portal_access_for_a_minor_past_majority_is_refused_at_once(api: Api) -> None:
    grown = api.client("Rae", "minor", "rae@x.test", birth_date="2005-01-10")
    carer = api.client("Pat", "adult", "pat@x.test")
    before, outbox = api.snapshot(), _outbox_count(api)
    r = api.call(
        "POST",
        f"/v1/clients/{grown['id']}/links",
        {
            "client_id": carer["id"],
            "relationship": "parent",
            "portal_access": {"enabled": True, "acknowledgement": ACK},
        },
    )
    assert r.status_code == 400
    assert r.get_json()["errors"][0]["field"] == "portal_access"
    assert "came of age" in r.get_json()["detail"]
    assert api.snapshot()["counts"] == before["counts"] and _outbox_count(api) == outbox
    teen = api.client("Tia", "adult", "tia@x.test", birth_date=f"{clock.now().year - 10}-01-01")
    r = api.call(
        "POST",
        f"/v1/clients/{grown['id']}/links",
        {"client_id": teen["id"], "relationship": "child", "client_type": "adult"},
    )
    assert r.status_code == 400 and r.get_json()["errors"][0]["field"] == "client_type"


# 6. Every issued token is audited, and the care receiver's trail shows every switch.
def test_every_issued_token_is_in_the_audit_trail(api: Api) -> None:
    f = _family(api)
    switched = _switch(api, f["own"], f["mia"]["id"])
    back = api.exchange(switched, f"client:{f['carlos']['id']}")
    assert back.status_code == 200
    kinds = [e.after["kind"] for e in _audit(api, "token.issued")]
    assert kinds[-3:] == ["sign-in", "switch", "switch back"]
    switch = _audit(api, "token.issued")[-2].after
    assert switch["grant"] == f["link"]["id"] and switch["act"] == f"client:{f['carlos']['id']}"
    assert switch["client_id"] == api.client_id and switch["jti"] and switch["scope"]
    trail = api.ok(
        "GET", f"/v1/audit?client={f['mia']['id']}&kind=token.issued", token=_reviewer(api)
    )
    assert any(e["after"]["kind"] == "switch" for e in trail["items"])
    # The review's "who acted" shows the switch into Mia's account, before any decision.
    from authz.compliance import review

    report = review.build(api.rt.store, api.rt.settings, api.org_id, f["mia"]["id"])
    [mia] = [c for c in report["clients"] if c["id"] == f["mia"]["id"]]
    [acted] = mia["acted_for_by"]
    assert (acted["actor"], acted["switches"]) == (f"client:{f['carlos']['id']}", 1)


def test_an_issued_token_is_chained_without_moving_the_revision(api: Api) -> None:
    """A token changes no fact: its audit row takes the writers' lock and the chain, but not a
    revision of its own, so no worker of any replica refreshes its facts for it."""
    from authz.compliance import audit_log

    f = _family(api)
    facts = service(api.rt).facts
    before = api.rt.store.revision()
    assert facts.ensure_fresh(api.rt.store) == before
    switched = _switch(api, f["own"], f["mia"]["id"])
    assert api.rt.store.revision() == before
    issued = _audit(api, "token.issued")[-1]
    assert issued.revision == before and issued.after["kind"] == "switch"
    assert facts.ensure_fresh(api.rt.store) == before  # nothing to catch up with
    assert _check(api, switched, "invoice.read", f["mia"]["id"])["allowed"] is True
    result = audit_log.verify(api.rt.store)
    assert result["ok"], result
    # The next change of facts moves the revision by one, as before.
    api.client("Nell", "adult", "nell@x.test")
    assert api.rt.store.revision() == before + 1


def _reviewer(api: Api) -> str:
    with api.rt.store.read() as session:
        from authz.store.models import Reviewer

        email = session.get(Reviewer, api.reviewer_id).email  # type: ignore[union-attr]
    return api.sign_in(f"reviewer:{api.reviewer_id}", email)


# 7. The issuer applies no leeway to its own tokens.
def test_a_token_is_expired_at_exp_on_the_issuer(api: Api) -> None:
    jenna = api.client("Jenna", "adult", "jenna@x.test")
    token = api.sign_in(f"client:{jenna['id']}", "jenna@x.test")
    assert _introspect(api, token)["active"] is True
    clock.travel(dt.timedelta(seconds=900))
    assert _introspect(api, token) == {"active": False}
    denied = _check(api, token, "invoice.read", jenna["id"])
    assert denied["allowed"] is False
    assert denied["reason"] == "the user's access token expired"
    assert api.call("GET", "/v1/access/accounts", token=token).status_code == 401


# 8. A consistency token beyond the store is refused, never answered with an older state.
def test_a_revision_the_store_has_not_reached_is_refused(api: Api) -> None:
    jenna = api.client("Jenna", "adult", "jenna@x.test")
    token = api.sign_in(f"client:{jenna['id']}", "jenna@x.test")
    started = time.monotonic()
    r = api.call(
        "POST",
        "/v1/access/check",
        {
            "token": token,
            "action": "invoice.read",
            "resource": {"type": "invoice", "id": "i", "owner": jenna["id"]},
            "consistency": {"at_least": "999999"},
        },
        token=api.service_token("authz:check"),
    )
    assert r.status_code == 409
    body = r.get_json()
    assert body["newest_revision"] == str(api.rt.store.revision())
    assert body["newest_revision"] in body["detail"]
    assert time.monotonic() - started < 10


# 9. Any party may end a grant, recorded with who, when and why.
def test_the_provider_the_receiver_and_the_caregiver_can_each_end_a_grant(api: Api) -> None:
    f = _family(api)
    switched = _switch(api, f["own"], f["mia"]["id"])
    ended = api.ok(
        "POST",
        f"/v1/links/{f['link']['id']}/portal-access/revoke",
        {"reason": "I no longer help with Mia's bills"},
        token=f["own"],
    )
    pa = ended["portal_access"]
    assert pa["status"] == "revoked" and pa["revoked_by"] == f"client:{f['carlos']['id']}"
    assert pa["revoked_reason"] == "I no longer help with Mia's bills" and pa["revoked_at"]
    assert _introspect(api, switched) == {"active": False}
    assert _audit(api, "grant.revoked")[-1].after["ended_by_role"] == "caregiver"
    g = _family_again(api, f)
    by_provider = api.ok("POST", f"/v1/links/{g['id']}/portal-access/revoke", {})
    assert by_provider["portal_access"]["revoked_by"] == f"provider:{api.provider_id}"


def _family_again(api: Api, f: dict[str, Any]) -> dict[str, Any]:
    """The same grant enabled again and accepted: a new grant on the same link."""
    path = f"/v1/clients/{f['mia']['id']}/links/{f['link']['id']}"
    again = api.ok("PATCH", path, {"portal_access": {"enabled": True, "acknowledgement": ACK}})
    api.accept(again["dev_invite_token"], f["own"])
    return again


# Issue 12, finding 1: nothing revoked comes back.
def test_a_switch_token_dies_with_its_grant_even_if_granted_again(api: Api) -> None:
    f = _family(api)
    old = _switch(api, f["own"], f["mia"]["id"])
    path = f"/v1/clients/{f['mia']['id']}/links/{f['link']['id']}"
    api.ok("PATCH", path, {"portal_access": {"enabled": False}})
    assert _introspect(api, old) == {"active": False}
    _family_again(api, f)
    assert _introspect(api, old) == {"active": False}
    denied = _check(api, old, "invoice.read", f["mia"]["id"])
    assert denied["allowed"] is False and "granted again" in denied["reason"]
    fresh = _switch(api, f["own"], f["mia"]["id"])
    assert _check(api, fresh, "invoice.read", f["mia"]["id"])["allowed"] is True
