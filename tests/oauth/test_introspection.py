"""RFC 7662 introspection and RFC 7009 revocation: a token dies the moment its grant does."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from authz.base import clock
from authz.oauth import oauth_clients
from tests.helpers import AUDIENCE, Api
from tests.oauth.conftest import Live

Edit = Callable[[Api, dict[str, Any], dict[str, Any], str], None]


def _delegated(live: Live, **grant: Any) -> tuple[dict[str, Any], dict[str, Any], str, str]:
    """A care receiver, the link, the caregiver's own token and a delegated token."""
    receiver = live.api.client("Sam", "adult", "sam@x.test")
    link, caregiver_token = live.api.grant(receiver["id"], "jenna@x.test", **grant)
    delegated = live.exchange(caregiver_token, f"client:{receiver['id']}")["access_token"]
    return receiver, link, caregiver_token, delegated


def test_introspection_answers_the_token_claims(live: Live) -> None:
    _receiver, _link, _caregiver_token, delegated = _delegated(live)
    info = live.introspect(delegated)
    assert info["active"] is True and info["token_type"] == "Bearer"
    claims = live.verify(delegated)
    for name in ("sub", "scope", "client_id", "aud", "iss", "exp", "iat", "jti", "act", "grant"):
        assert info[name] == claims[name], name
    assert info["org"] == live.api.org_id and info["authz_via"] == "delegation"
    assert live.introspect("not-a-token") == {"active": False}


def test_introspection_is_client_authenticated(live: Live) -> None:
    sam = live.api.client("Sam", "adult", "sam@x.test")
    token = live.sign_in(f"client:{sam['id']}", "sam@x.test")
    r = live.session(secret="wrong").introspect_token(f"{live.url}/oauth/introspect", token)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_a_client_sees_only_tokens_of_its_own_organization(live: Live) -> None:
    sam = live.api.client("Sam", "adult", "sam@x.test")
    token = live.sign_in(f"client:{sam['id']}", "sam@x.test")
    other = Api.bootstrap(live.api.app, name="Elsewhere")
    session = live.session(other.client_id, other.client_secret)
    assert live.introspect(token, session) == {"active": False}
    assert live.introspect(token)["active"] is True


def test_revoke_a_token(live: Live) -> None:
    _receiver, link, caregiver_token, delegated = _delegated(live)
    r = live.revoke(delegated)
    assert r.status_code == 200
    assert live.introspect(delegated) == {"active": False}
    # A revoked token is no subject for an exchange, not even to switch back.
    caregiver = f"client:{link['linked_client_id']}"
    live.refused("invalid_request", delegated, caregiver)
    live.assert_refusal_audited("revoked", delegated)
    (event,) = live.audit("token.revoked")
    assert event.actor == f"service:{live.api.client_id}"
    assert event.after and event.after["grant"] == link["id"]
    assert delegated not in str(event.after)
    # Revoking again, or revoking garbage, is still 200 (RFC 7009 §2.2).
    assert live.revoke(delegated).status_code == 200
    assert live.revoke("garbage").status_code == 200
    assert live.introspect(caregiver_token)["active"] is True


def test_only_the_client_a_token_was_issued_to_may_revoke_it(live: Live) -> None:
    sam = live.api.client("Sam", "adult", "sam@x.test")
    token = live.sign_in(f"client:{sam['id']}", "sam@x.test")
    other = Api.bootstrap(live.api.app, name="Elsewhere")
    r = live.revoke(token, live.session(other.client_id, other.client_secret))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert live.introspect(token)["active"] is True
    (event,) = live.audit("token_revocation.refused")
    assert event.org_id == other.org_id and event.actor == f"service:{other.client_id}"
    assert token not in str(event.after)


def _revoke_by_provider(api: Api, receiver: dict[str, Any], link: dict[str, Any], _: str) -> None:
    api.ok(
        "PATCH",
        f"/v1/clients/{receiver['id']}/links/{link['id']}",
        {"portal_access": {"enabled": False}},
    )


def _revoke_by_receiver(api: Api, receiver: dict[str, Any], link: dict[str, Any], _: str) -> None:
    own = api.sign_in(f"client:{receiver['id']}", "sam@x.test")
    api.ok("POST", f"/v1/links/{link['id']}/portal-access/revoke", {}, token=own)


def _delete_link(api: Api, receiver: dict[str, Any], link: dict[str, Any], _: str) -> None:
    api.ok("DELETE", f"/v1/clients/{receiver['id']}/links/{link['id']}")


def _remove_caregiver(api: Api, receiver: dict[str, Any], link: dict[str, Any], _: str) -> None:
    api.ok("PATCH", f"/v1/clients/{link['linked_client_id']}", {"active": False})


def _remove_receiver(api: Api, receiver: dict[str, Any], link: dict[str, Any], _: str) -> None:
    api.ok("PATCH", f"/v1/clients/{receiver['id']}", {"active": False})


def _narrow(api: Api, receiver: dict[str, Any], link: dict[str, Any], _: str) -> None:
    api.ok(
        "PATCH",
        f"/v1/clients/{receiver['id']}/links/{link['id']}",
        {"portal_access": {"enabled": True, "access_level": "scheduling"}},
    )


@pytest.mark.parametrize(
    ("edit", "error", "audit_kind", "actor"),
    [
        (_revoke_by_provider, "invalid_grant", "grant.revoked", "provider"),
        (_revoke_by_receiver, "invalid_grant", "grant.revoked", "receiver"),
        (_delete_link, "invalid_target", "link.deleted", "provider"),
        (_remove_caregiver, "invalid_request", "client.deactivated", "provider"),
        (_remove_receiver, "invalid_target", "client.deactivated", "provider"),
        (_narrow, None, "link.updated", "provider"),
    ],
    ids=[
        "revoked",
        "revoked-by-receiver",
        "link-removed",
        "caregiver-removed",
        "receiver-removed",
        "narrowed",
    ],
)
def test_a_grant_edit_ends_the_token_and_the_next_exchange(
    live: Live, edit: Edit, error: str | None, audit_kind: str, actor: str
) -> None:
    receiver, link, caregiver_token, delegated = _delegated(live)
    assert live.introspect(delegated)["active"] is True
    edit(live.api, receiver, link, caregiver_token)
    # No sleep: the very next introspection and the very next exchange see the change.
    assert live.introspect(delegated) == {"active": False}
    target = f"client:{receiver['id']}"
    if error is None:
        # Narrowed: the old full-scope token is dead; a new one carries the narrower scope.
        assert live.exchange(caregiver_token, target)["scope"] == "appointments profile"
        live.refused("invalid_scope", caregiver_token, target, scope="billing")
    else:
        live.refused(error, caregiver_token, target)
        live.assert_refusal_audited("", caregiver_token, delegated)
    # Who did it is in the audit trail.
    involved = {link["id"], receiver["id"], link["linked_client_id"]}
    events = [
        e
        for e in live.audit(audit_kind)
        if e.entity_id in involved or involved & set(e.client_ids or [])
    ]
    assert events, audit_kind
    expected = (
        f"client:{receiver['id']}" if actor == "receiver" else f"provider:{live.api.provider_id}"
    )
    assert events[-1].actor == expected


def test_age_of_majority_ends_a_minors_grant_that_day(live: Live) -> None:
    today = clock.now().date()
    born = today.replace(year=today.year - 18) + dt.timedelta(days=1)
    minor = live.api.client("Leo", "minor", None, birth_date=born.isoformat())
    link, caregiver_token = live.api.grant(minor["id"], "jenna@x.test")
    midnight = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    # Just before the eighteenth birthday: the caregiver still acts (with a fresh sign-in).
    clock.travel(midnight - clock.now() - dt.timedelta(minutes=2))
    caregiver_token = live.sign_in(f"client:{link['linked_client_id']}", "jenna@x.test")
    delegated = live.exchange(caregiver_token, f"client:{minor['id']}")["access_token"]
    assert live.introspect(delegated)["active"] is True
    clock.travel(dt.timedelta(minutes=3))
    assert live.introspect(delegated) == {"active": False}
    err = live.refused("invalid_grant", caregiver_token, f"client:{minor['id']}")
    assert "came of age" in err.description
    live.assert_refusal_audited("came of age", caregiver_token)
    # The provider sees it on the link (signing in afresh: time moved on).
    live.api.tokens.clear()
    seen = live.api.ok("GET", f"/v1/clients/{minor['id']}/links/{link['id']}")
    assert seen["portal_access"]["effective_status"] == "expired"
    assert "came of age" in seen["portal_access"]["effective_reason"]


def test_expires_at_ends_the_grant(live: Live) -> None:
    ends = clock.now() + dt.timedelta(days=2)
    receiver = live.api.client("Sam", "adult", "sam@x.test")
    link, _ = live.api.grant(receiver["id"], "jenna@x.test")
    live.api.ok(
        "PATCH",
        f"/v1/clients/{receiver['id']}/links/{link['id']}",
        {"portal_access": {"enabled": True, "expires_at": ends.isoformat()}},
    )
    clock.travel(ends - clock.now() - dt.timedelta(minutes=1))
    caregiver_token = live.sign_in(f"client:{link['linked_client_id']}", "jenna@x.test")
    delegated = live.exchange(caregiver_token, f"client:{receiver['id']}")["access_token"]
    assert live.introspect(delegated)["active"] is True
    clock.travel(dt.timedelta(minutes=2))
    assert live.introspect(delegated) == {"active": False}
    err = live.refused("invalid_grant", caregiver_token, f"client:{receiver['id']}")
    assert "expired" in err.description


def test_tokens_die_with_their_oauth_client(live: Live) -> None:
    sam = live.api.client("Sam", "adult", "sam@x.test")
    oc = oauth_clients.create_client(
        live.api.rt.store, "test", live.api.org_id, [AUDIENCE], ["profile"]
    )
    session = live.session(oc["client_id"], oc["client_secret"])
    token = live.exchange(
        live.api.id_token("sam@x.test"),
        f"client:{sam['id']}",
        "urn:ietf:params:oauth:token-type:id_token",
        session=session,
    )
    assert live.introspect(token["access_token"])["active"] is True
    oauth_clients.disable_client(live.api.rt.store, "test", live.api.org_id, oc["client_id"])
    assert live.introspect(token["access_token"]) == {"active": False}
