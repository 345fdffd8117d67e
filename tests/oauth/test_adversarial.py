"""Adversarial exchanges: each is refused, changes nothing but the audit trail, and is audited."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from authz.base import clock
from tests.helpers import ID_TOKEN, Api
from tests.oauth.conftest import Live


def _changed_only_by_audit(before: dict[str, Any], after: dict[str, Any], events: int = 1) -> None:
    counts = dict(after["counts"])
    assert counts.pop("audit_events") == before["counts"]["audit_events"] + events
    assert counts == {k: v for k, v in before["counts"].items() if k != "audit_events"}


def test_re_delegation_is_refused(live: Live) -> None:
    # Grandma's caregiver is Mum; Mum's caregiver is Jenna. Jenna acting as Mum must not
    # reach Grandma: a delegated token is never the subject of another delegation.
    grandma = live.api.client("Rosa", "adult", "rosa@x.test")
    mum = live.api.client("Maria", "adult", "maria@x.test")
    mum_link = live.api.link(grandma["id"], mum["id"], "parent", portal=True)
    mum_token = live.sign_in(f"client:{mum['id']}", "maria@x.test")
    live.api.ok("POST", f"/v1/invites/{mum_link['dev_invite_token']}/accept", {}, token=mum_token)
    _, jenna_token = live.api.grant(mum["id"], "jenna@x.test")
    as_mum = live.exchange(jenna_token, f"client:{mum['id']}")["access_token"]
    before = live.api.snapshot()
    err = live.refused("invalid_request", as_mum, f"client:{grandma['id']}")
    assert "delegated token" in err.description
    _changed_only_by_audit(before, live.api.snapshot())
    event = live.assert_refusal_audited("delegated token", as_mum)
    assert event.after and event.after["subject"] == f"client:{mum['id']}"
    assert event.after["actor"] == live.verify(jenna_token)["sub"]
    # Nor may the delegated token toggle or switch to anyone else, Mum's own token can.
    assert live.exchange(mum_token, f"client:{grandma['id']}")["access_token"]


def test_another_organizations_client_is_refused(live: Live) -> None:
    sam = live.api.client("Sam", "adult", "sam@x.test")
    token = live.sign_in(f"client:{sam['id']}", "sam@x.test")
    other = Api.bootstrap(live.api.app, name="Elsewhere")
    session = live.session(other.client_id, other.client_secret)
    before = live.api.snapshot()
    err = live.refused("invalid_request", token, f"client:{sam['id']}", session=session)
    assert "another organization" in err.description
    _changed_only_by_audit(before, live.api.snapshot())
    event = live.assert_refusal_audited("another organization", token)
    assert event.org_id == other.org_id and event.client_ids == []
    # Sign-in through the other organization's client cannot reach this one's accounts.
    live.refused(
        "invalid_target",
        live.api.id_token("sam@x.test"),
        f"client:{sam['id']}",
        subject_token_type=ID_TOKEN,
        session=session,
    )


def _pending_grant(live: Live) -> tuple[str, str]:
    receiver = live.api.client("Sam", "adult", "sam@x.test")
    caregiver = live.api.client("Jenna", "adult", "jenna@x.test")
    live.api.link(receiver["id"], caregiver["id"], "parent", portal=True)
    return receiver["id"], live.sign_in(f"client:{caregiver['id']}", "jenna@x.test")


def _revoked_grant(live: Live) -> tuple[str, str]:
    receiver = live.api.client("Sam", "adult", "sam@x.test")
    link, token = live.api.grant(receiver["id"], "jenna@x.test")
    live.api.ok(
        "PATCH",
        f"/v1/clients/{receiver['id']}/links/{link['id']}",
        {"portal_access": {"enabled": False}},
    )
    return receiver["id"], token


def _expired_grant(live: Live) -> tuple[str, str]:
    receiver = live.api.client("Sam", "adult", "sam@x.test")
    ends = clock.now() + dt.timedelta(hours=1)
    link, _ = live.api.grant(receiver["id"], "jenna@x.test")
    live.api.ok(
        "PATCH",
        f"/v1/clients/{receiver['id']}/links/{link['id']}",
        {"portal_access": {"enabled": True, "expires_at": ends.isoformat()}},
    )
    clock.travel(dt.timedelta(hours=1, seconds=1))
    return receiver["id"], live.sign_in(f"client:{link['linked_client_id']}", "jenna@x.test")


def _no_portal_access(live: Live) -> tuple[str, str]:
    receiver = live.api.client("Sam", "adult", "sam@x.test")
    caregiver = live.api.client("Jenna", "adult", "jenna@x.test")
    live.api.link(receiver["id"], caregiver["id"], "parent")
    return receiver["id"], live.sign_in(f"client:{caregiver['id']}", "jenna@x.test")


@pytest.mark.parametrize(
    ("setup", "error", "reason"),
    [
        (_pending_grant, "invalid_grant", "portal access is pending"),
        (_revoked_grant, "invalid_grant", "portal access is revoked"),
        (_expired_grant, "invalid_grant", "portal access expired"),
        (_no_portal_access, "invalid_target", "no portal access"),
    ],
    ids=["pending", "revoked", "expired", "link-without-access"],
)
def test_unusable_grants_are_refused(live: Live, setup: Any, error: str, reason: str) -> None:
    receiver_id, caregiver_token = setup(live)
    before = live.api.snapshot()
    err = live.refused(error, caregiver_token, f"client:{receiver_id}")
    assert reason in err.description
    _changed_only_by_audit(before, live.api.snapshot())
    event = live.assert_refusal_audited(reason, caregiver_token)
    assert receiver_id in event.client_ids


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """Signed by hand: PyJWT itself refuses a PEM key as an HMAC secret, an attacker does not."""
    signing_input = f"{_b64(header)}.{_b64(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def _forgeries(live: Live, genuine: str) -> dict[str, str]:
    header = jwt.get_unverified_header(genuine)
    claims = jwt.decode(genuine, options={"verify_signature": False})
    public_pem = (
        live.api.rt.keys.get(header["kid"])
        .public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        .decode()
    )
    foreign = ec.generate_private_key(ec.SECP256R1())
    typ = {"typ": "at+jwt"}
    head, body, sig = genuine.split(".")
    tampered_claims = claims | {"scope": claims["scope"] + " authz:admin"}
    return {
        "alg-none": f"{_b64({'alg': 'none', **typ, 'kid': header['kid']})}.{body}.",
        "hs256-public-key": _hs256(
            {"alg": "HS256", **typ, "kid": header["kid"]}, claims, public_pem.encode()
        ),
        "foreign-key-our-kid": jwt.encode(
            claims, foreign, algorithm="ES256", headers={**typ, "kid": header["kid"]}
        ),
        "foreign-key-own-kid": jwt.encode(
            claims, foreign, algorithm="ES256", headers={**typ, "kid": "attacker"}
        ),
        "tampered-payload": f"{head}.{_b64(tampered_claims)}.{sig}",
    }


def test_forged_subject_tokens_are_refused(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    sam = live.api.client("Sam", "adult", "sam@x.test")
    genuine = live.sign_in(f"client:{sam['id']}", "sam@x.test")
    for name, forged in _forgeries(live, genuine).items():
        before = live.api.snapshot()
        err = live.refused("invalid_request", forged, f"client:{sam['id']}")
        assert "subject_token rejected" in err.description, name
        _changed_only_by_audit(before, live.api.snapshot())
        live.assert_refusal_audited("subject_token rejected", forged, genuine)
        assert live.introspect(forged) == {"active": False}, name
    assert live.introspect(genuine)["active"] is True


def test_forged_id_tokens_do_not_sign_in(live: Live) -> None:
    sam = live.api.client("Sam", "adult", "sam@x.test")
    genuine = live.api.id_token("sam@x.test")
    claims = jwt.decode(genuine, options={"verify_signature": False})
    kid = jwt.get_unverified_header(genuine)["kid"]
    foreign = ec.generate_private_key(ec.SECP256R1())
    forged = {
        "alg-none": f"{_b64({'alg': 'none', 'kid': kid})}.{_b64(claims)}.",
        "foreign-key": jwt.encode(claims, foreign, algorithm="ES256", headers={"kid": kid}),
        "hs256": _hs256({"alg": "HS256", "kid": kid}, claims, b"secret" * 6),
    }
    for name, token in forged.items():
        err = live.refused(
            "invalid_request", token, f"client:{sam['id']}", subject_token_type=ID_TOKEN
        )
        assert "subject_token rejected" in err.description, name
        live.assert_refusal_audited("subject_token rejected", token)


def test_a_replayed_invite_is_refused_and_audited(live: Live) -> None:
    receiver = live.api.client("Sam", "adult", "sam@x.test")
    caregiver = live.api.client("Jenna", "adult", "jenna@x.test")
    link = live.api.link(receiver["id"], caregiver["id"], "parent", portal=True)
    token = live.sign_in(f"client:{caregiver['id']}", "jenna@x.test")
    invite = link["dev_invite_token"]
    live.api.ok("POST", f"/v1/invites/{invite}/accept", {}, token=token)
    before = live.api.snapshot()
    r = live.api.call("POST", f"/v1/invites/{invite}/accept", {}, token=token)
    assert r.status_code == 410 and "already used" in r.get_json()["detail"]
    _changed_only_by_audit(before, live.api.snapshot())
    (event,) = live.audit("invite.refused")
    assert event.actor == f"client:{caregiver['id']}" and caregiver["id"] in event.client_ids
    assert event.after and "already used" in event.after["reason"]
    assert invite not in json.dumps(event.after)
    # Someone else replaying it is refused too.
    intruder = live.api.client("Eve", "adult", "eve@x.test")
    eve = live.sign_in(f"client:{intruder['id']}", "eve@x.test")
    r = live.api.call("POST", f"/v1/invites/{invite}/accept", {}, token=eve)
    assert r.status_code == 403
    assert len(live.audit("invite.refused")) == 2


def test_a_toggle_needs_the_address_the_login_proved(live: Live) -> None:
    # Sam signed in with sam@; the practice then changes Sam's address to one shared with
    # another client. This login never proved that address: its token stops counting, so no
    # toggle (and no check) rides on it.
    sam = live.api.client("Sam", "adult", "sam@x.test")
    other = live.api.client("Ann", "adult", "shared@x.test")
    token = live.sign_in(f"client:{sam['id']}", "sam@x.test")
    live.api.ok("PATCH", f"/v1/clients/{sam['id']}", {"email": "shared@x.test"})
    assert live.introspect(token)["active"] is False
    before = live.api.snapshot()
    err = live.refused("invalid_request", token, f"client:{other['id']}")
    assert "email address changed" in err.description
    _changed_only_by_audit(before, live.api.snapshot())
    live.assert_refusal_audited("email address changed", token)
    # Once a login proves the address, the toggle works, and says which login acts.
    proven = live.sign_in(f"client:{sam['id']}", "shared@x.test")
    toggled = live.verify(live.exchange(proven, f"client:{other['id']}")["access_token"])
    assert toggled["authz_via"] == "shared_email"
    assert toggled["act"] == {"sub": f"client:{sam['id']}"}


def test_no_toggle_across_organizations(live: Live) -> None:
    sam = live.api.client("Sam", "adult", "family@x.test")
    other = Api.bootstrap(live.api.app, name="Elsewhere")
    theirs = other.client("Sam", "adult", "family@x.test")
    token = live.sign_in(f"client:{sam['id']}", "family@x.test")
    err = live.refused("invalid_target", token, f"client:{theirs['id']}")
    assert "no such client in this organization" in err.description
    live.assert_refusal_audited("no such client", token)
