"""The caregiver's invite: what it offers, proof of relationship, accepting and declining.

The caregiver, signed in as themselves, proves the relationship by the care receiver's date of
birth as the practice recorded it; five wrong answers lock the invite and tell the provider.
Only a proved invite can be accepted. Every attempt, refusal and answer is audited.
"""

from __future__ import annotations

import datetime as dt
import hmac
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from authz.accounts import invite_notices
from authz.accounts.clients import display_name
from authz.accounts.links import grant_facts, hash_invite_token, link_view
from authz.base import clock
from authz.base.config import Settings
from authz.base.errors import Conflict, Forbidden, Gone, NotFound, ValidationFailed
from authz.base.principals import Principal
from authz.policy import grants, vocabulary
from authz.policy import recertification as recertification_rules
from authz.policy.engine import PolicySet
from authz.store import refusals
from authz.store.db import Store
from authz.store.models import Client, Invite, Link, Organization, Provider

#: Wrong dates of birth an invite takes before it locks.
MAX_PROOF_FAILURES = 5

#: What each state of an invite means, in the words the pages and the API use.
STATE_TEXT = {
    "pending": "This invite is waiting for your answer.",
    "used": "This invite was already used: it was accepted, and it works only once.",
    "declined": "This invite was declined.",
    "cancelled": "This invite was withdrawn by the practice; a newer invite may have replaced it.",
    "expired": "This invite has expired; ask the practice for a new one.",
    "locked": "This invite is locked after five wrong dates of birth; the practice has been told.",
}


#: Resource types whose plain plural would mislead (a client resource is the profile).
LABELS = {"client": "Profile"}


@dataclass(frozen=True)
class Found:
    """An invite with its link and the two clients."""

    invite: Invite
    link: Link
    receiver: Client
    caregiver: Client


def state_of(invite: Invite, link: Link, now: dt.datetime) -> str:
    """pending, used, declined, cancelled, expired or locked."""
    if invite.used_at is not None:
        return "used"
    if invite.declined_at is not None:
        return "declined"
    if invite.locked_at is not None:
        return "locked"
    if invite.cancelled_at is not None or link.portal_status != "pending":
        return "cancelled"
    if clock.aware(invite.expires_at) <= now:  # type: ignore[operator]
        return "expired"
    return "pending"


def find(session: Session, token: str) -> Found:
    """The invite a token names, or NotFound."""
    invite = session.scalar(
        select(Invite).where(Invite.token_hash == hash_invite_token(token or ""))
    )
    link = session.get(Link, invite.link_id) if invite else None
    receiver = session.get(Client, link.original_client_id) if link else None
    caregiver = session.get(Client, link.linked_client_id) if link else None
    if invite is None or link is None or receiver is None or caregiver is None:
        raise NotFound("this invite is not valid")
    return Found(invite, link, receiver, caregiver)


def authorize(found: Found, principal: Principal) -> None:
    """Only the invited client, signed in as themselves, may see or answer an invite."""
    if principal.kind != "client" or principal.via == "delegation":
        raise Forbidden("open the invite signed in as yourself, not as another account")
    if found.link.org_id != principal.org_id:
        raise NotFound("this invite is not valid")
    if found.invite.client_id != principal.id:
        raise Forbidden("this invite was sent to another client")


def _refused(store: Store, principal: Principal, exc: Exception, action: str) -> None:
    detail = getattr(exc, "detail", str(exc))
    refusals.record(
        store,
        "invite.refused",
        principal.label,
        principal.org_id or None,
        {"reason": detail, "action": action, "client_id": principal.client_id},
        [principal.id] if principal.kind == "client" else None,
    )


def _require_open(found: Found, now: dt.datetime) -> None:
    state = state_of(found.invite, found.link, now)
    if state != "pending":
        raise Gone(STATE_TEXT[state])


# -- what the invite offers ---------------------------------------------------------------------


def level_terms(policy: PolicySet, level: str) -> dict[str, list[dict[str, Any]]]:
    """What a caregiver at `level` may and may not do on the care receiver's account, by
    resource type, as the engine decides with the policy files in force (not as written here):
    `may` is what the level allows, `may_not` what the client may do for themselves but the
    caregiver may not."""
    from authz.policy import probe

    allowed: set[str] = set()
    own: set[str] = set()
    caregiver = f"client:cli_{level}"
    for action, _act in vocabulary.ACTIONS.items():
        if probe.owner_for(action) == probe.ORG:
            continue
        if probe.decide(policy, caregiver, action).allowed:
            allowed.add(action)
        if probe.decide(policy, f"client:{probe.OWNER}", action).allowed:
            own.add(action)
    return {"may": _grouped(allowed), "may_not": _grouped(own - allowed)}


def _grouped(actions: set[str]) -> list[dict[str, Any]]:
    groups: dict[str, list[str]] = {}
    for name in sorted(actions):
        rtype, _, verb = name.partition(".")
        groups.setdefault(rtype, []).append(verb)
    return [
        {
            "resource": rtype,
            "label": LABELS.get(rtype, rtype.replace("_", " ").capitalize() + "s"),
            "actions": [f"{rtype}.{v}" for v in verbs],
            "verbs": verbs,
        }
        for rtype, verbs in groups.items()
    ]


def _iso(value: dt.datetime | None) -> str | None:
    value = clock.aware(value)
    return value.isoformat() if value else None


def view_of(session: Session, found: Found, policy: PolicySet, now: dt.datetime) -> dict[str, Any]:
    """The invite as the caregiver reads it."""
    invite, link = found.invite, found.link
    org = session.get(Organization, link.org_id)
    provider = session.get(Provider, link.acknowledged_by) if link.acknowledged_by else None
    state = state_of(invite, link, now)
    level = link.access_level or "full"
    return {
        "id": invite.id,
        "status": state,
        "status_text": STATE_TEXT[state],
        "practice": {"id": link.org_id, "name": org.name if org else link.org_id},
        "invited_by": {
            "id": link.acknowledged_by,
            "name": (provider.name or provider.email) if provider else link.acknowledged_by,
        },
        "care_receiver": {
            "id": found.receiver.id,
            "name": display_name(found.receiver),
            "client_type": found.receiver.client_type,
        },
        "caregiver": {"id": found.caregiver.id, "name": display_name(found.caregiver)},
        "relationship": link.relationship,
        "link_id": link.id,
        "access_level": level,
        "access_ends_at": _iso(link.expires_at),
        "expires_at": _iso(invite.expires_at),
        "acknowledgement": link.acknowledgement,
        "acknowledged_at": _iso(link.acknowledged_at),
        "proved": invite.proved_at is not None,
        "proof_attempts_left": max(0, MAX_PROOF_FAILURES - (invite.proof_failures or 0)),
        **level_terms(policy, level),
    }


def get_invite(store: Store, policy: PolicySet, principal: Principal, token: str) -> dict[str, Any]:
    """The invite for its caregiver; anyone else is refused, and the refusal audited."""
    try:
        with store.read() as session:
            found = find(session, token)
            authorize(found, principal)
            return view_of(session, found, policy, clock.now())
    except (NotFound, Forbidden) as exc:
        _refused(store, principal, exc, "view")
        raise


# -- proof of relationship ----------------------------------------------------------------------


def parse_birth_date(raw: Any) -> dt.date:
    """`YYYY-MM-DD`, or ValidationFailed."""
    if not isinstance(raw, str):
        raise ValidationFailed([("birth_date", "is required: the care receiver's date of birth")])
    try:
        return dt.date.fromisoformat(raw.strip())
    except ValueError as exc:
        raise ValidationFailed([("birth_date", "must be a date: YYYY-MM-DD")]) from exc


def prove(
    store: Store, settings: Settings, principal: Principal, token: str, data: dict[str, Any]
) -> dict[str, Any]:
    """Check the care receiver's date of birth. A right answer marks the invite proved; a wrong
    one is counted, and the fifth locks the invite and tells the provider."""
    unknown = [(k, "unknown field") for k in data if k != "birth_date"]
    if unknown:
        raise ValidationFailed(unknown)
    answer = parse_birth_date(data.get("birth_date"))
    try:
        with store.write(principal.label, principal.org_id) as txn:
            found = find(txn.session, token)
            authorize(found, principal)
            now = clock.now()
            _require_open(found, now)
            invite, link = found.invite, found.link
            if invite.proved_at is not None:
                return {"proved": True, "proof_attempts_left": _left(invite)}
            recorded = found.receiver.birth_date
            if recorded is None:
                raise Conflict(
                    f"the practice has no date of birth on record for "
                    f"{display_name(found.receiver)}; ask the practice to add it"
                )
            ids = [link.original_client_id, link.linked_client_id]
            # Compared in constant time: the answer is a secret of sorts.
            if hmac.compare_digest(answer.isoformat(), recorded.isoformat()):
                invite.proved_at = now
                txn.record("invite.proved", invite.id, None, {"link_id": link.id}, ids)
                return {"proved": True, "proof_attempts_left": _left(invite)}
            invite.proof_failures = (invite.proof_failures or 0) + 1
            txn.record(
                "invite.proof_failed",
                invite.id,
                None,
                {"link_id": link.id, "attempt": invite.proof_failures, "left": _left(invite)},
                ids,
            )
            if invite.proof_failures >= MAX_PROOF_FAILURES:
                invite.locked_at = now
                txn.record("invite.locked", invite.id, None, {"link_id": link.id}, ids)
                invite_notices.tell(txn, link, found.receiver, found.caregiver, "locked")
            left = _left(invite)
    except (NotFound, Forbidden) as exc:
        _refused(store, principal, exc, "proof")
        raise
    # Raised after the write, so that the wrong answer stays counted.
    if left == 0:
        raise Gone(STATE_TEXT["locked"])
    raise ValidationFailed(
        [
            (
                "birth_date",
                f"does not match the practice's records; {left} "
                f"{'try' if left == 1 else 'tries'} left",
            )
        ]
    )


def _left(invite: Invite) -> int:
    return max(0, MAX_PROOF_FAILURES - (invite.proof_failures or 0))


# -- the answer ---------------------------------------------------------------------------------


def accept(store: Store, settings: Settings, principal: Principal, token: str) -> dict[str, Any]:
    """The caregiver, signed in as themselves and having proved the relationship, accepts:
    the grant becomes active. A refused acceptance is audited."""
    try:
        return _accept(store, settings, principal, token)
    except (NotFound, Forbidden, Gone, Conflict) as exc:
        _refused(store, principal, exc, "accept")
        raise


def _accept(
    store: Store, settings: Settings, principal: Principal, token: str
) -> dict[str, Any]:
    with store.write(principal.label, principal.org_id) as txn:
        found = find(txn.session, token)
        authorize(found, principal)
        now = clock.now()
        _require_open(found, now)
        invite, link = found.invite, found.link
        as_if_active = grant_facts(link, found.receiver, found.caregiver)._replace(status="active")
        state = grants.effective_state(as_if_active, now, settings.majority_age)
        if not state.usable:
            raise Gone(f"this invite can no longer be used: {state.reason}")
        if invite.proved_at is None:
            raise Conflict(
                "prove the relationship first: the care receiver's date of birth "
                "(POST /v1/invites/{token}/proof)"
            )
        before = link_view(link)
        invite.used_at = now
        link.portal_status, link.activated_at = "active", now
        # The first review is due one policy period after the caregiver accepted.
        link.review_by = now + recertification_rules.policy().period
        link.grant_version += 1
        txn.record(
            "grant.activated",
            link.id,
            before,
            link_view(link),
            [link.original_client_id, link.linked_client_id],
        )
        invite_notices.tell(txn, link, found.receiver, found.caregiver, "accepted")
    return link_view(link, principal.id) | {"revision": str(txn.revision)}


def decline(
    store: Store, settings: Settings, principal: Principal, token: str, data: dict[str, Any]
) -> dict[str, Any]:
    """The caregiver declines: the offered access ends before it began, with an optional
    reason; the provider and an adult care receiver are told."""
    unknown = [(k, "unknown field") for k in data if k != "reason"]
    reason = data.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 2000):
        unknown.append(("reason", "must be text of at most 2000 characters"))
    if unknown:
        raise ValidationFailed(unknown)
    try:
        with store.write(principal.label, principal.org_id) as txn:
            found = find(txn.session, token)
            authorize(found, principal)
            now = clock.now()
            _require_open(found, now)
            invite, link = found.invite, found.link
            before = link_view(link)
            invite.declined_at = now
            link.portal_status, link.revoked_at, link.revoked_by = "revoked", now, principal.label
            link.revoked_reason = "declined by the caregiver" + (
                f": {reason.strip()}" if reason and reason.strip() else ""
            )
            link.grant_version += 1
            link.updated_at = now
            txn.record(
                "invite.declined",
                link.id,
                before,
                link_view(link) | {"invite_id": invite.id},
                [link.original_client_id, link.linked_client_id],
            )
            invite_notices.tell(txn, link, found.receiver, found.caregiver, "declined")
    except (NotFound, Forbidden, Gone) as exc:
        _refused(store, principal, exc, "decline")
        raise
    return link_view(link, principal.id) | {"revision": str(txn.revision)}


def principal_for_login(store: Store, token: str, email: str, label: str) -> Principal:
    """The invited client as the page's signed-in login, if the login's verified email is the
    one the invite was sent to; another login is refused, and the refusal audited."""
    with store.read() as session:
        found = find(session, token)
        org_id = found.link.org_id
        invited = found.caregiver.email
    principal = Principal(kind="client", id=found.invite.client_id, org_id=org_id)
    if invited != email:
        refusals.record(
            store,
            "invite.refused",
            label,
            org_id,
            {"reason": "this invite was sent to another login", "action": "view"},
            None,
        )
        raise Forbidden("this invite was sent to someone else")
    return principal
