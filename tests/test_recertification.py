"""Recertification (issue 16): a grant nobody re-approves by its review-by date lapses at once;
re-approval and ending are audited; reminders go out 30 and 7 days ahead, once each."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from authz.accounts import recertification
from authz.base import clock
from authz.policy import recertification as recertification_rules
from authz.store.models import AuditEvent, OutboxMessage
from tests.helpers import Api
from tests.test_delegation_integrity import _check, _family, _introspect, _switch

PERIOD = dt.timedelta(days=recertification_rules.policy().period_days)


def _events(api: Api, kind: str, entity: str) -> list[AuditEvent]:
    with api.rt.store.read() as session:
        return list(
            session.scalars(
                select(AuditEvent)
                .where(AuditEvent.kind == kind, AuditEvent.entity_id == entity)
                .order_by(AuditEvent.seq)
            )
        )


def _reviewer(api: Api) -> str:
    return api.sign_in(f"reviewer:{api.reviewer_id}", "review@practice.test")


def _travel(api: Api, delta: dt.timedelta) -> None:
    """Move the clock; tokens issued before are then stale, so forget the cached ones."""
    clock.travel(delta)
    api.tokens.clear()


def _portal(api: Api, f: dict[str, Any]) -> dict[str, Any]:
    view = api.ok("GET", f"/v1/clients/{f['mia']['id']}/links/{f['link']['id']}")
    return dict(view["portal_access"])


def test_an_active_grant_shows_its_review_date(api: Api) -> None:
    f = _family(api)
    portal = _portal(api, f)
    activated = dt.datetime.fromisoformat(portal["activated_at"])
    assert dt.datetime.fromisoformat(portal["review_by"]) == activated + PERIOD
    assert portal["effective_status"] == "active"


def test_a_grant_not_reapproved_lapses_and_its_token_dies_without_a_write(api: Api) -> None:
    f = _family(api)
    review_by = dt.datetime.fromisoformat(_portal(api, f)["review_by"])
    _travel(api, review_by - clock.now() - dt.timedelta(seconds=60))
    own = api.sign_in(f"client:{f['carlos']['id']}", "carlos@x.test")
    token = _switch(api, own, f["mia"]["id"])
    assert _introspect(api, token)["active"] is True
    assert _check(api, token, "invoice.read", f["mia"]["id"])["allowed"] is True
    before = api.rt.store.revision()
    clock.travel(dt.timedelta(seconds=61))  # every token in hand stays within its lifetime
    assert _introspect(api, token) == {"active": False}
    denied = _check(api, token, "invoice.read", f["mia"]["id"])
    assert denied["allowed"] is False and "re-approved" in denied["reason"]
    assert api.rt.store.revision() == before  # nothing was written for the lapse
    own = api.sign_in(f"client:{f['carlos']['id']}", "carlos@x.test")
    refused = api.exchange(own, f"client:{f['mia']['id']}")
    assert refused.status_code == 400, refused.get_json()
    accounts = api.ok("GET", "/v1/access/accounts", token=own)
    assert f["mia"]["id"] not in str(accounts)
    assert _portal(api, f)["effective_status"] == "lapsed"
    assert _events(api, "grant.lapsed", f["link"]["id"]) == []  # nothing was written to lapse

    # The sweep audits the lapse once and tells the provider and the caregiver.
    assert recertification.sweep(api.rt.store, api.rt.settings) == {"reminders": 0, "lapsed": 1}
    assert recertification.sweep(api.rt.store, api.rt.settings) == {"reminders": 0, "lapsed": 0}
    [lapsed] = _events(api, "grant.lapsed", f["link"]["id"])
    assert lapsed.actor == "system:recertification"

    # A reviewer may still re-approve it: the caregiver can switch again.
    body = {"decision": "still_needed", "note": "Mia still needs help with bills"}
    done = api.ok(
        "POST", f"/v1/links/{f['link']['id']}/portal-access/recertify", body, token=_reviewer(api)
    )
    assert done["portal_access"]["effective_status"] == "active"
    _switch(api, own, f["mia"]["id"])
    # ...with a new token: the one issued before the lapse stays dead (nothing revoked comes back).
    assert _introspect(api, token) == {"active": False}
    assert _check(api, token, "invoice.read", f["mia"]["id"])["allowed"] is False


def test_reapproval_moves_the_date_and_is_audited(api: Api) -> None:
    f = _family(api)
    _travel(api, dt.timedelta(days=200))
    token = _reviewer(api)
    url = f"/v1/links/{f['link']['id']}/portal-access/recertify"
    done = api.ok(
        "POST", url, {"decision": "still_needed", "note": "confirmed by phone"}, token=token
    )
    portal = done["portal_access"]
    assert dt.datetime.fromisoformat(portal["review_by"]) >= clock.now() + PERIOD - dt.timedelta(
        minutes=1
    )
    assert portal["recertified_by"] == f"reviewer:{api.reviewer_id}"
    assert portal["recertified_note"] == "confirmed by phone"
    [event] = _events(api, "grant.recertified", f["link"]["id"])
    assert event.actor == f"reviewer:{api.reviewer_id}" and event.after is not None
    assert event.after["portal_access"]["recertified_note"] == "confirmed by phone"
    # Past the old date the grant still stands.
    _travel(api, dt.timedelta(days=200))
    _switch(api, api.sign_in(f"client:{f['carlos']['id']}", "carlos@x.test"), f["mia"]["id"])


def test_ending_from_the_review_records_who_when_and_why(api: Api) -> None:
    f = _family(api)
    url = f"/v1/links/{f['link']['id']}/portal-access/recertify"
    done = api.ok("POST", url, {"decision": "end", "note": "no longer the carer"})  # a provider
    portal = done["portal_access"]
    assert portal["status"] == "revoked" and portal["revoked_reason"] == "no longer the carer"
    assert portal["revoked_by"] == f"provider:{api.provider_id}" and portal["revoked_at"]
    [event] = _events(api, "grant.revoked", f["link"]["id"])
    assert event.after is not None and event.after["ended_by_role"] == "provider"
    again = api.call("POST", url, {"decision": "still_needed", "note": "x"})
    assert again.status_code == 409


def test_bad_recertifications_are_refused_and_change_nothing(api: Api) -> None:
    f = _family(api)
    url = f"/v1/links/{f['link']['id']}/portal-access/recertify"
    before = api.snapshot()
    for body, status in [
        ({"decision": "maybe", "note": "x"}, 400),
        ({"decision": "still_needed"}, 400),
        ({"decision": "still_needed", "note": "  "}, 400),
        ({"decision": "end", "note": "x", "extra": 1}, 400),
    ]:
        r = api.call("POST", url, body)
        assert r.status_code == status and r.mimetype == "application/problem+json", body
    missing = api.call(
        "POST", "/v1/links/lnk_nope/portal-access/recertify", {"decision": "end", "note": "x"}
    )
    assert missing.status_code == 404
    # The caregiver cannot re-approve their own access.
    r = api.call("POST", url, {"decision": "still_needed", "note": "me"}, token=f["own"])
    assert r.status_code == 403
    assert api.snapshot() == before


def test_reminders_go_out_30_and_7_days_ahead_once_each(api: Api) -> None:
    f = _family(api)
    review_by = dt.datetime.fromisoformat(_portal(api, f)["review_by"])
    sweep = recertification.sweep
    assert sweep(api.rt.store, api.rt.settings) == {"reminders": 0, "lapsed": 0}
    _travel(api, review_by - clock.now() - dt.timedelta(days=29))
    assert sweep(api.rt.store, api.rt.settings) == {"reminders": 1, "lapsed": 0}
    assert sweep(api.rt.store, api.rt.settings) == {"reminders": 0, "lapsed": 0}
    _travel(api, dt.timedelta(days=23))
    assert sweep(api.rt.store, api.rt.settings) == {"reminders": 1, "lapsed": 0}
    days = [
        e.after["days"]
        for e in _events(api, "grant.recertification_reminder", f["link"]["id"])
        if e.after
    ]
    assert days == [30, 7]
    with api.rt.store.read() as session:
        sent = {
            m.to_address
            for m in session.scalars(
                select(OutboxMessage).where(OutboxMessage.kind == "portal_access.recertification")
            )
        }
    assert "carlos@x.test" in sent and len(sent) == 2  # the caregiver and the provider
