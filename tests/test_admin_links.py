"""Links, portal access and invites, through the HTTP API."""

from __future__ import annotations

import datetime as dt

from authz.base import clock
from tests.helpers import Api

ACK = "I confirm Jenna gets full access to Sam's account."


def _outbox(api: Api) -> list[dict]:
    return api.ok("GET", "/v1/outbox")["items"]


def test_link_existing_client_records_every_attribute(api: Api) -> None:
    sam = api.client("Sam", "minor")
    jenna = api.client("Jenna", "adult", "jenna@x.test")
    link = api.ok(
        "POST",
        f"/v1/clients/{sam['id']}/links",
        {
            "client_id": jenna["id"],
            "relationship": "legal_guardian",
            "client_type": "adult",
            "emergency_contact": True,
            "notify": True,
        },
        status=201,
    )
    assert link["id"].startswith("lnk_")
    assert link["original_client_id"] == sam["id"] and link["linked_client_id"] == jenna["id"]
    assert (
        link["relationship"],
        link["client_type"],
        link["emergency_contact"],
        link["notify"],
    ) == ("legal_guardian", "adult", True, True)
    assert link["portal_access"] is None and link["direction"] == "outgoing"
    both = api.ok("GET", f"/v1/clients/{jenna['id']}/links")["items"]
    assert [(x["id"], x["direction"]) for x in both] == [(link["id"], "incoming")]


def test_link_a_new_client_queues_the_welcome_unless_turned_off(api: Api) -> None:
    sam = api.client("Sam", "minor")
    made = api.ok(
        "POST",
        f"/v1/clients/{sam['id']}/links",
        {"new_client": {"first_name": "Jenna", "email": "jenna@x.test"}, "relationship": "parent"},
        status=201,
    )
    assert made["linked_client"]["email"] == "jenna@x.test"
    assert [m["kind"] for m in _outbox(api)] == ["client.welcome"]
    api.ok(
        "POST",
        f"/v1/clients/{sam['id']}/links",
        {
            "new_client": {"first_name": "Alex", "email": "alex@x.test"},
            "relationship": "parent",
            "send_welcome_invite": False,
        },
        status=201,
    )
    assert [m["to"] for m in _outbox(api)] == ["jenna@x.test"]


def test_bad_new_client_names_the_nested_field(api: Api) -> None:
    sam = api.client("Sam", "minor")
    before = api.snapshot()
    r = api.call(
        "POST",
        f"/v1/clients/{sam['id']}/links",
        {"new_client": {"first_name": "Jenna", "email": "not-an-email"}, "relationship": "parent"},
    )
    assert r.status_code == 400
    assert "new_client.email" in [e["field"] for e in r.get_json()["errors"]]
    assert api.snapshot() == before


def test_no_self_link_no_duplicate_either_way(api: Api) -> None:
    sam, jenna = api.client("Sam"), api.client("Jenna")
    r = api.call(
        "POST", f"/v1/clients/{sam['id']}/links", {"client_id": sam["id"], "relationship": "other"}
    )
    assert r.status_code == 400
    api.link(sam["id"], jenna["id"])
    before = api.snapshot()
    for a, b in ((sam, jenna), (jenna, sam)):
        r = api.call(
            "POST", f"/v1/clients/{a['id']}/links", {"client_id": b["id"], "relationship": "spouse"}
        )
        assert r.status_code == 409, r.get_json()
    assert api.snapshot() == before


def test_bad_link_fields(api: Api) -> None:
    sam, jenna = api.client("Sam"), api.client("Jenna")
    before = api.snapshot()
    for body in (
        {"client_id": jenna["id"], "relationship": "cousin"},
        {"client_id": jenna["id"], "relationship": "parent", "notify": "yes"},
        {"client_id": jenna["id"]},
        {"relationship": "parent"},
        {"client_id": jenna["id"], "new_client": {"first_name": "X"}, "relationship": "parent"},
        {"client_id": jenna["id"], "relationship": "parent", "colour": "blue"},
        {"client_id": 12, "relationship": "parent"},
    ):
        r = api.call("POST", f"/v1/clients/{sam['id']}/links", body)
        assert r.status_code == 400, (body, r.get_json())
        assert r.get_json()["errors"]
    assert api.snapshot() == before


def test_only_the_original_side_edits_or_removes(api: Api) -> None:
    sam, jenna = api.client("Sam"), api.client("Jenna")
    link = api.link(sam["id"], jenna["id"])
    before = api.snapshot()
    for method, body in (("PATCH", {"notify": True}), ("DELETE", None)):
        r = api.call(method, f"/v1/clients/{jenna['id']}/links/{link['id']}", body)
        assert r.status_code == 409
        assert r.mimetype == "application/problem+json"
        assert sam["id"] in r.get_json()["detail"] and "Sam Rivera" in r.get_json()["detail"]
    assert api.snapshot() == before
    edited = api.ok("PATCH", f"/v1/clients/{sam['id']}/links/{link['id']}", {"notify": True})
    assert edited["notify"] is True
    api.ok("DELETE", f"/v1/clients/{sam['id']}/links/{link['id']}")
    assert api.ok("GET", f"/v1/clients/{jenna['id']}/links")["items"] == []


def test_portal_access_needs_the_entitlement(app) -> None:
    api = Api.bootstrap(app, entitlements=(), name="Basic")
    sam, jenna = api.client("Sam", "minor"), api.client("Jenna", "adult", "j@x.test")
    before = api.snapshot()
    r = api.call(
        "POST",
        f"/v1/clients/{sam['id']}/links",
        {
            "client_id": jenna["id"],
            "relationship": "parent",
            "portal_access": {"enabled": True, "acknowledgement": ACK},
        },
    )
    assert r.status_code == 403 and "linked_portal_access" in r.get_json()["detail"]
    assert api.snapshot() == before


def test_portal_access_needs_the_acknowledgement(api: Api) -> None:
    sam, jenna = api.client("Sam", "minor"), api.client("Jenna", "adult", "j@x.test")
    before = api.snapshot()
    for portal in ({"enabled": True}, {"enabled": True, "acknowledgement": "   "}):
        r = api.call(
            "POST",
            f"/v1/clients/{sam['id']}/links",
            {"client_id": jenna["id"], "relationship": "parent", "portal_access": portal},
        )
        assert r.status_code == 400
        assert r.get_json()["errors"][0]["field"] == "portal_access.acknowledgement"
    assert api.snapshot() == before


def test_portal_access_records_who_what_when_and_queues_two_emails(api: Api) -> None:
    sam, jenna = api.client("Sam", "minor"), api.client("Jenna", "adult", "jenna@x.test")
    link = api.ok(
        "POST",
        f"/v1/clients/{sam['id']}/links",
        {
            "client_id": jenna["id"],
            "relationship": "parent",
            "notify": True,
            "portal_access": {"enabled": True, "acknowledgement": ACK},
        },
        status=201,
    )
    pa = link["portal_access"]
    assert pa["status"] == "pending" and pa["acknowledgement"] == ACK
    assert pa["acknowledged_by"] == api.provider_id and pa["acknowledged_at"]
    assert pa["caregiver_client_id"] == jenna["id"]
    mails = _outbox(api)
    assert sorted(m["kind"] for m in mails) == [
        "portal_access.invite",
        "portal_access.notifications",
    ]
    invite = next(m for m in mails if m["kind"] == "portal_access.invite")
    assert invite["to"] == "jenna@x.test" and "Accept Invite" in invite["body"]
    assert link["dev_invite_token"] in invite["body"]
    notice = next(m for m in mails if m["kind"] == "portal_access.notifications")
    assert "copies of the emails sent to Sam Rivera" in notice["body"]
    # The invite token is stored hashed: it appears nowhere in the store but the email body.
    with api.rt.store.read() as session:
        from sqlalchemy import select

        from authz.store.models import AuditEvent, Invite

        hashes = list(session.scalars(select(Invite.token_hash)))
        audit = " ".join(str(e.after) for e in session.scalars(select(AuditEvent)))
    assert link["dev_invite_token"] not in hashes and link["dev_invite_token"] not in audit


def test_accepting_the_invite_activates_and_it_is_single_use(api: Api) -> None:
    sam = api.client("Sam", "minor")
    jenna = api.client("Jenna", "adult", "jenna@x.test")
    link = api.link(sam["id"], jenna["id"], portal=True)
    token = api.sign_in(f"client:{jenna['id']}", "jenna@x.test")
    accepted = api.ok("POST", f"/v1/invites/{link['dev_invite_token']}/accept", {}, token=token)
    assert accepted["portal_access"]["status"] == "active"
    assert accepted["portal_access"]["activated_at"]
    before = api.snapshot()
    again = api.call("POST", f"/v1/invites/{link['dev_invite_token']}/accept", {}, token=token)
    assert again.status_code == 410 and "already used" in again.get_json()["detail"]
    api.assert_only_refusals_since(before, ["invite.refused"])


def test_a_foreign_unknown_or_expired_invite_is_refused(api: Api) -> None:
    sam = api.client("Sam", "minor")
    jenna = api.client("Jenna", "adult", "jenna@x.test")
    mallory = api.client("Mallory", "adult", "mallory@x.test")
    link = api.link(sam["id"], jenna["id"], portal=True)
    invite = link["dev_invite_token"]
    mallory_token = api.sign_in(f"client:{mallory['id']}", "mallory@x.test")
    before = api.snapshot()
    r = api.call("POST", f"/v1/invites/{invite}/accept", {}, token=mallory_token)
    assert r.status_code == 403 and "another client" in r.get_json()["detail"]
    r = api.call("POST", "/v1/invites/not-a-real-invite/accept", {}, token=mallory_token)
    assert r.status_code == 404
    api.assert_only_refusals_since(before, ["invite.refused", "invite.refused"])
    clock.travel(dt.timedelta(days=8))
    api.tokens.clear()
    jenna_token = api.sign_in(f"client:{jenna['id']}", "jenna@x.test")
    r = api.call("POST", f"/v1/invites/{invite}/accept", {}, token=jenna_token)
    assert r.status_code == 410 and "expired" in r.get_json()["detail"]
    assert (
        api.ok("GET", f"/v1/clients/{sam['id']}/links")["items"][0]["portal_access"]["status"]
        == "pending"
    )


def test_a_provider_token_cannot_accept_and_a_delegated_token_cannot_either(api: Api) -> None:
    sam = api.client("Sam", "minor")
    link, jenna_token = api.grant(sam["id"], "jenna@x.test")
    alex = api.client("Alex", "adult", "alex@x.test")
    second = api.link(alex["id"], link["linked_client_id"], "spouse", portal=True)
    r = api.call("POST", f"/v1/invites/{second['dev_invite_token']}/accept", {})
    assert r.status_code == 403
    delegated = api.exchange(jenna_token, f"client:{sam['id']}").get_json()["access_token"]
    r = api.call("POST", f"/v1/invites/{second['dev_invite_token']}/accept", {}, token=delegated)
    assert r.status_code == 403


def test_turning_portal_access_off_revokes_and_withdraws_the_invite(api: Api) -> None:
    sam, jenna = api.client("Sam", "minor"), api.client("Jenna", "adult", "jenna@x.test")
    link = api.link(sam["id"], jenna["id"], portal=True)
    off = api.ok(
        "PATCH",
        f"/v1/clients/{sam['id']}/links/{link['id']}",
        {"portal_access": {"enabled": False}},
    )
    assert off["portal_access"]["status"] == "revoked"
    assert off["portal_access"]["revoked_by"] == f"provider:{api.provider_id}"
    token = api.sign_in(f"client:{jenna['id']}", "jenna@x.test")
    r = api.call("POST", f"/v1/invites/{link['dev_invite_token']}/accept", {}, token=token)
    assert r.status_code == 410


def test_a_minor_cannot_be_a_caregiver(api: Api) -> None:
    sam, kid = api.client("Sam", "adult"), api.client("Kid", "minor", "kid@x.test")
    r = api.call(
        "POST",
        f"/v1/clients/{sam['id']}/links",
        {
            "client_id": kid["id"],
            "relationship": "child",
            "portal_access": {"enabled": True, "acknowledgement": ACK},
        },
    )
    assert r.status_code == 400


def test_payment_methods_belong_to_one_client(api: Api) -> None:
    sam, jenna = api.client("Sam"), api.client("Jenna")
    api.ok("POST", f"/v1/clients/{sam['id']}/payment-methods", {"id": "pm_3", "label": "Visa 4242"})
    before = api.snapshot()
    r = api.call("POST", f"/v1/clients/{jenna['id']}/payment-methods", {"id": "pm_3", "label": "x"})
    assert r.status_code == 409
    r = api.call(
        "POST",
        f"/v1/clients/{jenna['id']}/payment-methods",
        {"id": "pm_4", "label": "4242 4242 4242 4242"},
    )
    assert r.status_code == 400
    assert api.snapshot() == before
    assert [
        p["id"] for p in api.ok("GET", f"/v1/clients/{sam['id']}/payment-methods")["items"]
    ] == ["pm_3"]
    assert api.ok("GET", f"/v1/clients/{jenna['id']}/payment-methods")["items"] == []


def test_notification_recipients(api: Api) -> None:
    sam = api.client("Sam", "minor", "sam@x.test")
    jenna = api.client("Jenna", "adult", "jenna@x.test")
    alex = api.client("Alex", "adult", "alex@x.test")
    api.link(sam["id"], jenna["id"], "parent", notify=True)
    api.link(sam["id"], alex["id"], "parent", notify=False)
    api.ok(
        "POST",
        f"/v1/clients/{sam['id']}/contacts",
        {"name": "Rose", "email": "rose@x.test", "relationship": "family_member", "notify": True},
    )
    api.ok(
        "POST",
        f"/v1/clients/{sam['id']}/contacts",
        {"name": "Quiet", "email": "q@x.test", "relationship": "other", "notify": False},
    )
    got = api.ok(
        "GET", f"/v1/clients/{sam['id']}/notification-recipients?event=appointment.reminder"
    )
    assert [(r["email"], r["kind"], r["relation"]) for r in got["recipients"]] == [
        ("sam@x.test", "client", "self"),
        ("rose@x.test", "contact", "family_member"),
        ("jenna@x.test", "linked_client", "parent"),
    ]
    r = api.call("GET", f"/v1/clients/{sam['id']}/notification-recipients?event=party")
    assert r.status_code == 400


def test_every_change_is_audited_with_before_and_after(api: Api) -> None:
    sam, jenna = api.client("Sam"), api.client("Jenna")
    link = api.link(sam["id"], jenna["id"])
    api.ok("PATCH", f"/v1/clients/{sam['id']}/links/{link['id']}", {"relationship": "spouse"})
    from sqlalchemy import select

    from authz.compliance import audit_log
    from authz.store.models import AuditEvent

    with api.rt.store.read() as session:
        ev = session.scalars(select(AuditEvent).where(AuditEvent.kind == "link.updated")).one()
    assert ev.before["relationship"] == "parent" and ev.after["relationship"] == "spouse"
    assert ev.actor == f"provider:{api.provider_id}"
    assert sorted(ev.client_ids) == sorted([sam["id"], jenna["id"]])
    # The digest of the policy files in force, on every change (none of them made a check).
    from authz.policy.engine import files_digest

    assert ev.policy_digest == files_digest() and ev.policy_digest.startswith("sha256:")
    assert audit_log.verify(api.rt.store)["ok"] is True
