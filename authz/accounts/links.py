"""Links between clients, portal access on them, and the caregiver's invite.

A link is made on the original client A to linked client B. Only A's side edits or removes it.
Portal access on a link lets B (the caregiver) act as A (the care receiver).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import replace
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from authz.accounts import outbox
from authz.accounts.clients import add_client, client_view, display_name, get_in_org
from authz.base import clock, ids
from authz.base.config import Settings
from authz.base.errors import (
    Conflict,
    EntitlementRequired,
    Forbidden,
    Gone,
    NotFound,
    ValidationFailed,
)
from authz.base.principals import Principal
from authz.policy import grants
from authz.store import refusals
from authz.store.db import Store, WriteTxn
from authz.store.models import (
    ACCESS_LEVELS,
    CLIENT_TYPES,
    RELATIONSHIPS,
    Client,
    Invite,
    Link,
    Organization,
)

ENTITLEMENT = "linked_portal_access"
LINK_FIELDS = ("relationship", "client_type", "emergency_contact", "notify")


def _iso(value: dt.datetime | None) -> str | None:
    value = clock.aware(value)
    return value.isoformat() if value else None


def grant_facts(link: Link, receiver: Client, caregiver: Client) -> grants.GrantFacts:
    return grants.GrantFacts(
        status=link.portal_status,
        expires_at=clock.aware(link.expires_at),
        receiver_type=receiver.client_type,
        receiver_birth_date=receiver.birth_date,
        receiver_active=receiver.active,
        caregiver_active=caregiver.active,
    )


def link_view(
    link: Link, for_client: str | None = None, state: grants.GrantState | None = None
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": link.id,
        "original_client_id": link.original_client_id,
        "linked_client_id": link.linked_client_id,
        "relationship": link.relationship,
        "client_type": link.client_type,
        "emergency_contact": link.emergency_contact,
        "notify": link.notify,
        "created_by": link.created_by,
        "created_at": _iso(link.created_at),
        "portal_access": None,
    }
    if for_client is not None:
        view["direction"] = "outgoing" if for_client == link.original_client_id else "incoming"
    if link.portal_status is not None:
        view["portal_access"] = {
            "status": link.portal_status,
            "effective_status": state.effective if state else link.portal_status,
            "effective_reason": state.reason if state else None,
            "ends_at": _iso(state.ends_at) if state else _iso(link.expires_at),
            "access_level": link.access_level,
            "caregiver_client_id": link.linked_client_id,
            "care_receiver_client_id": link.original_client_id,
            "acknowledgement": link.acknowledgement,
            "acknowledged_by": link.acknowledged_by,
            "acknowledged_at": _iso(link.acknowledged_at),
            "activated_at": _iso(link.activated_at),
            "revoked_at": _iso(link.revoked_at),
            "revoked_by": link.revoked_by,
            "revoked_reason": link.revoked_reason,
            "expires_at": _iso(link.expires_at),
        }
    return view


def _bool(errors: list[tuple[str, str]], data: dict[str, Any], key: str) -> bool | None:
    if key not in data:
        return None
    if not isinstance(data[key], bool):
        errors.append((key, "must be a boolean"))
        return None
    return bool(data[key])


def _validate_attrs(data: dict[str, Any], creating: bool) -> dict[str, Any]:
    errors: list[tuple[str, str]] = []
    clean: dict[str, Any] = {}
    if creating and "relationship" not in data:
        errors.append(("relationship", "is required"))
    if "relationship" in data:
        if data["relationship"] not in RELATIONSHIPS:
            errors.append(("relationship", f"must be one of {', '.join(RELATIONSHIPS)}"))
        else:
            clean["relationship"] = data["relationship"]
    if "client_type" in data:
        if data["client_type"] not in CLIENT_TYPES:
            errors.append(("client_type", f"must be one of {', '.join(CLIENT_TYPES)}"))
        else:
            clean["client_type"] = data["client_type"]
    for key in ("emergency_contact", "notify"):
        value = _bool(errors, data, key)
        if value is not None:
            clean[key] = value
    if errors:
        raise ValidationFailed(errors)
    return clean


def _validate_portal(raw: Any, creating: bool) -> dict[str, Any]:
    """`{"enabled": bool, "acknowledgement": str, "access_level": …, "expires_at": …}`: on a
    patch, a merge patch (RFC 7396): a key left out keeps its value; `expires_at: null` removes
    the expiry."""
    if not isinstance(raw, dict):
        raise ValidationFailed([("portal_access", "must be an object")])
    errors: list[tuple[str, str]] = []
    known = {"enabled", "acknowledgement", "access_level", "expires_at"}
    errors.extend((f"portal_access.{k}", "unknown field") for k in raw if k not in known)
    if (creating or "enabled" in raw) and not isinstance(raw.get("enabled"), bool):
        errors.append(("portal_access.enabled", "is required and must be a boolean"))
    ack = raw.get("acknowledgement")
    if ack is not None and (not isinstance(ack, str) or len(ack) > 4000):
        errors.append(("portal_access.acknowledgement", "must be text of at most 4000 characters"))
    level = raw.get("access_level", "full")
    if level not in ACCESS_LEVELS:
        errors.append(("portal_access.access_level", f"must be one of {', '.join(ACCESS_LEVELS)}"))
    expires: dt.datetime | None = None
    if raw.get("expires_at") is not None:
        try:
            expires = dt.datetime.fromisoformat(str(raw["expires_at"]).replace("Z", "+00:00"))
            if expires.tzinfo is None:
                expires = expires.replace(tzinfo=dt.UTC)
            if expires <= clock.now():
                errors.append(("portal_access.expires_at", "is in the past"))
        except ValueError:
            errors.append(("portal_access.expires_at", "must be an ISO 8601 date-time"))
    if errors:
        raise ValidationFailed(errors)
    return {
        "enabled": raw.get("enabled"),
        "acknowledgement": ack,
        "access_level": level,
        "expires_at": expires,
        "keys": set(raw),
    }


def check_ages(settings: Settings, receiver: Client, caregiver: Client, client_type: str) -> None:
    """Refuse at once what could never work: a care receiver recorded as a minor but past the
    age of majority, or a link's `client_type` that its client's birth date contradicts."""
    today = clock.now().date()
    if receiver.client_type == "minor" and receiver.birth_date is not None:
        of_age = grants.majority_date(receiver.birth_date, settings.majority_age)
        if of_age <= today:
            raise ValidationFailed(
                [
                    (
                        "portal_access",
                        f"{display_name(receiver)} is recorded as a minor but was born on "
                        f"{receiver.birth_date.isoformat()} and came of age on "
                        f"{of_age.isoformat()}: record them as an adult first",
                    )
                ]
            )
    _check_client_type(settings, caregiver, client_type)


def _check_client_type(settings: Settings, client: Client, client_type: str) -> None:
    if client.birth_date is None:
        return
    adult = grants.majority_date(client.birth_date, settings.majority_age) <= clock.now().date()
    if (client_type == "adult") != adult:
        raise ValidationFailed(
            [
                (
                    "client_type",
                    f"{display_name(client)} was born on {client.birth_date.isoformat()}, so "
                    f"is {'an adult' if adult else 'a minor'}, not {client_type!r}",
                )
            ]
        )


def _pair_key(a: str, b: str) -> str:
    return "|".join(sorted((a, b)))


def _get_link(session: Session, org_id: str, client_id: str, link_id: str) -> Link:
    get_in_org(session, client_id, org_id)
    link = session.get(Link, link_id) if isinstance(link_id, str) else None
    if (
        link is None
        or link.org_id != org_id
        or client_id not in (link.original_client_id, link.linked_client_id)
    ):
        raise NotFound(f"link {link_id} not found on client {client_id}")
    return link


def _require_original(session: Session, link: Link, client_id: str, verb: str) -> None:
    if client_id != link.original_client_id:
        original = session.get(Client, link.original_client_id)
        name = display_name(original) if original else link.original_client_id
        raise Conflict(
            f"link {link.id} can only be {verb} from the original client's side: "
            f"{name} ({link.original_client_id})"
        )


def _issue_invite(
    txn: WriteTxn, settings: Settings, link: Link, receiver: Client, caregiver: Client
) -> str:
    """Queue the caregiver's two emails; return the single-use invite token."""
    if not caregiver.email:
        raise ValidationFailed(
            [("portal_access", "the caregiver has no email address for the invite")]
        )
    for old in txn.session.scalars(
        select(Invite).where(
            Invite.link_id == link.id, Invite.used_at.is_(None), Invite.cancelled_at.is_(None)
        )
    ):
        old.cancelled_at = clock.now()
    token = secrets.token_urlsafe(32)
    now = clock.now()
    invite = Invite(
        id=ids.new_id("inv"),
        link_id=link.id,
        client_id=caregiver.id,
        token_hash=hash_invite_token(token),
        created_at=now,
        expires_at=now + dt.timedelta(seconds=settings.invite_ttl),
    )
    txn.session.add(invite)
    txn.record(
        "invite.created",
        invite.id,
        None,
        {"link_id": link.id, "client_id": caregiver.id, "expires_at": invite.expires_at},
        [caregiver.id, receiver.id],
    )
    receiver_name, caregiver_name = display_name(receiver), display_name(caregiver)
    outbox.enqueue(
        txn,
        link.org_id,
        "portal_access.invite",
        caregiver.email,
        f"Accept Invite: portal access to {receiver_name}'s account",
        f"Hello {caregiver_name},\n\nYou have been given {link.access_level} access to "
        f"{receiver_name}'s client portal account.\nAccept Invite: "
        f"{settings.portal_url.rstrip('/')}/invites/{token}\n\nThis link works once and expires "
        f"on {invite.expires_at.date().isoformat()}.\n",
        caregiver.id,
    )
    notices = (
        f"copies of the emails sent to {receiver_name}"
        if link.notify
        else f"no copies of {receiver_name}'s emails"
    )
    outbox.enqueue(
        txn,
        link.org_id,
        "portal_access.notifications",
        caregiver.email,
        f"Notifications you will receive for {receiver_name}",
        f"Hello {caregiver_name},\n\nAs {receiver_name}'s {link.relationship.replace('_', ' ')}, "
        f"you will receive {notices}. The practice can change this at any time.\n",
        caregiver.id,
    )
    return token


def hash_invite_token(token: str) -> str:
    """Invite tokens are stored hashed; only the email carries the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()


def _apply_portal(
    txn: WriteTxn,
    settings: Settings,
    principal: Principal,
    link: Link,
    portal: dict[str, Any],
    receiver: Client,
    caregiver: Client,
) -> tuple[str | None, str | None]:
    """Enable, change or disable portal access as a merge patch; return a new invite token if
    one was made, and the kind of change (enabled, widened, narrowed, revoked; None: none).

    A grant widens (a higher level, a later or removed expiry, re-enabling) only with a new
    acknowledgement, recorded with the provider; narrowing needs none; the same terms change
    nothing."""
    now, keys = clock.now(), portal["keys"]
    live = link.portal_status in ("pending", "active")
    enabled = portal["enabled"] if "enabled" in keys else live
    if not enabled:
        if not live:
            return None, None
        link.portal_status, link.revoked_at, link.revoked_by = "revoked", now, principal.label
        link.grant_version += 1
        _cancel_invites(txn, link, now)
        return None, "revoked"
    org = txn.session.get(Organization, link.org_id)
    if org is None or ENTITLEMENT not in (org.entitlements or []):
        raise EntitlementRequired(
            f"portal access needs the organization's {ENTITLEMENT} entitlement"
        )
    if principal.kind != "provider" and principal.kind != "service":
        raise Forbidden("only a provider can grant portal access")
    if caregiver.client_type == "minor":
        raise ValidationFailed(
            [("portal_access", "a minor cannot be given access to another account")]
        )
    check_ages(settings, receiver, caregiver, link.client_type)
    level = portal["access_level"] if "access_level" in keys or not live else link.access_level
    level = level or "full"
    old_expiry = clock.aware(link.expires_at)
    expires = portal["expires_at"] if "expires_at" in keys or not live else old_expiry
    ack = (portal["acknowledgement"] or "").strip() if "acknowledgement" in keys else ""
    required = (
        "portal_access.acknowledgement",
        "is required: the provider must acknowledge that the caregiver gets "
        "full access to the care receiver's account",
    )
    if live:
        old_level = link.access_level or "full"
        same = level == old_level and expires == old_expiry
        if same and (not ack or ack == link.acknowledgement):
            return None, None
        wider = not grants.LEVEL_SCOPES[level] <= grants.LEVEL_SCOPES[old_level] or (
            old_expiry is not None and (expires is None or expires > old_expiry)
        )
        if wider and not ack:
            raise ValidationFailed(
                [
                    (
                        "portal_access.acknowledgement",
                        "is required to widen a grant (a higher access level, a later or no "
                        "expiry): the provider acknowledges the new terms",
                    )
                ]
            )
        link.access_level, link.expires_at = level, expires
        if ack:
            _acknowledge(link, principal, ack, now)
        link.grant_version += 1
        return None, "widened" if wider else "narrowed"
    if not ack:
        raise ValidationFailed([required])
    link.portal_status = "pending"
    link.access_level, link.expires_at = level, expires
    _acknowledge(link, principal, ack, now)
    link.activated_at = link.revoked_at = None
    link.revoked_by = link.revoked_reason = None
    link.grant_version += 1
    return _issue_invite(txn, settings, link, receiver, caregiver), "enabled"


def _acknowledge(link: Link, principal: Principal, ack: str, now: dt.datetime) -> None:
    link.acknowledgement, link.acknowledged_at = ack, now
    link.acknowledged_by = principal.id if principal.kind == "provider" else principal.label


def _cancel_invites(txn: WriteTxn, link: Link, now: dt.datetime) -> None:
    for inv in txn.session.scalars(
        select(Invite).where(
            Invite.link_id == link.id, Invite.used_at.is_(None), Invite.cancelled_at.is_(None)
        )
    ):
        inv.cancelled_at = now


def _tell_both(
    txn: WriteTxn, settings: Settings, link: Link, receiver: Client, caregiver: Client, what: str
) -> None:
    """Every change of a grant is emailed to the caregiver and to an adult care receiver."""
    receiver_name, caregiver_name = display_name(receiver), display_name(caregiver)
    level = link.access_level or "full"
    until = clock.aware(link.expires_at)
    terms = f"{level} access" + (f" until {until.date().isoformat()}" if until else "")
    lines = {
        "enabled": f"{caregiver_name} was offered {terms} to {receiver_name}'s account.",
        "widened": f"{caregiver_name}'s access to {receiver_name}'s account was widened to "
        f"{terms}.",
        "narrowed": f"{caregiver_name}'s access to {receiver_name}'s account was narrowed to "
        f"{terms}.",
        "revoked": f"{caregiver_name}'s access to {receiver_name}'s account was ended.",
    }
    text = lines.get(what, f"{caregiver_name}'s access to {receiver_name}'s account changed.")
    for person in (caregiver, receiver):
        if person is receiver and receiver.client_type != "adult":
            continue
        if person.email:
            outbox.enqueue(
                txn,
                link.org_id,
                "portal_access.changed",
                person.email,
                f"Portal access to {receiver_name}'s account changed",
                f"Hello {display_name(person)},\n\n{text}\n",
                person.id,
            )


def create_link(
    store: Store,
    settings: Settings,
    principal: Principal,
    org_id: str,
    client_id: str,
    data: dict[str, Any],
) -> dict[str, Any]:
    """Link client A (`client_id`) to an existing or a new client B."""
    known = {"client_id", "new_client", "send_welcome_invite", "portal_access", *LINK_FIELDS}
    unknown = [(k, "unknown field") for k in data if k not in known]
    if unknown:
        raise ValidationFailed(unknown)
    if ("client_id" in data) == ("new_client" in data):
        raise ValidationFailed([("client_id", "give exactly one of client_id or new_client")])
    send_welcome = data.get("send_welcome_invite", True)
    if not isinstance(send_welcome, bool):
        raise ValidationFailed([("send_welcome_invite", "must be a boolean")])
    attrs = _validate_attrs(data, creating=True)
    portal = (
        _validate_portal(data["portal_access"], creating=True)
        if data.get("portal_access") is not None
        else None
    )
    if "new_client" in data and not isinstance(data["new_client"], dict):
        raise ValidationFailed([("new_client", "must be an object")])
    with store.write(principal.label, org_id) as txn:
        receiver = get_in_org(txn.session, client_id, org_id)
        if "new_client" in data:
            new = dict(data["new_client"])
            new.setdefault("client_type", attrs.get("client_type", "adult"))
            try:
                caregiver = add_client(txn, org_id, new)
            except ValidationFailed as exc:
                raise ValidationFailed(
                    [(f"new_client.{e['field']}", e["message"]) for e in exc.errors]
                ) from exc
            txn.session.flush()
            if send_welcome and caregiver.email:
                outbox.enqueue(
                    txn,
                    org_id,
                    "client.welcome",
                    caregiver.email,
                    "Welcome to your client portal",
                    f"Hello {display_name(caregiver)},\n\nAn account was created for you and "
                    f"linked to {display_name(receiver)}'s account.\nSign in: "
                    f"{settings.portal_url}\n",
                    caregiver.id,
                )
        else:
            if not isinstance(data["client_id"], str):
                raise ValidationFailed([("client_id", "must be a client id")])
            caregiver = get_in_org(txn.session, data["client_id"], org_id, "client_id")
        if caregiver.id == receiver.id:
            raise ValidationFailed([("client_id", "a client cannot be linked to itself")])
        existing = txn.session.scalar(
            select(Link).where(Link.pair_key == _pair_key(receiver.id, caregiver.id))
        )
        if existing is not None:
            raise Conflict(f"{receiver.id} and {caregiver.id} are already linked by {existing.id}")
        now = clock.now()
        link = Link(
            id=ids.new_id("lnk"),
            org_id=org_id,
            original_client_id=receiver.id,
            linked_client_id=caregiver.id,
            pair_key=_pair_key(receiver.id, caregiver.id),
            relationship=attrs["relationship"],
            client_type=attrs.get("client_type", caregiver.client_type),
            emergency_contact=attrs.get("emergency_contact", False),
            notify=attrs.get("notify", False),
            created_by=principal.label,
            created_at=now,
            updated_at=now,
            grant_version=0,
        )
        _check_client_type(settings, caregiver, link.client_type)
        txn.session.add(link)
        invite = None
        if portal is not None:
            invite, change = _apply_portal(
                txn, settings, principal, link, portal, receiver, caregiver
            )
            if change == "enabled" and receiver.client_type == "adult":
                _tell_both(txn, settings, link, receiver, caregiver, change)
        txn.session.flush()
        txn.record("link.created", link.id, None, link_view(link), [receiver.id, caregiver.id])
        view = link_view(link, receiver.id)
        if "new_client" in data:
            view["linked_client"] = client_view(caregiver)
    view["revision"] = str(txn.revision)
    if invite is not None and settings.dev_mode:
        # Development only: lets the demo and local testing accept without reading email.
        view["dev_invite_token"] = invite
    return view


def list_links(store: Store, settings: Settings, org_id: str, client_id: str) -> dict[str, Any]:
    """The client's links of both directions, with `direction` and the grant's effective state."""
    with store.read() as session:
        get_in_org(session, client_id, org_id)
        rows = session.scalars(
            select(Link)
            .where(or_(Link.original_client_id == client_id, Link.linked_client_id == client_id))
            .order_by(Link.id)
        ).all()
        return {
            "items": [
                link_view(link, client_id, effective(session, settings, link)) for link in rows
            ],
            "next_cursor": None,
        }


def effective(session: Session, settings: Settings, link: Link) -> grants.GrantState | None:
    """The grant's state now (age of majority, expiry, removed accounts taken into account)."""
    if link.portal_status is None:
        return None
    receiver = session.get(Client, link.original_client_id)
    caregiver = session.get(Client, link.linked_client_id)
    assert receiver is not None and caregiver is not None
    return grants.effective_state(
        grant_facts(link, receiver, caregiver), clock.now(), settings.majority_age
    )


def get_link(
    store: Store, settings: Settings, org_id: str, client_id: str, link_id: str
) -> dict[str, Any]:
    with store.read() as session:
        link = _get_link(session, org_id, client_id, link_id)
        return link_view(link, client_id, effective(session, settings, link))


class _Unchanged(Exception):
    """A patch that changes nothing: its write is rolled back, the current view answered."""

    def __init__(self, view: dict[str, Any]) -> None:
        super().__init__("unchanged")
        self.view = view


def patch_link(
    store: Store,
    settings: Settings,
    principal: Principal,
    org_id: str,
    client_id: str,
    link_id: str,
    data: dict[str, Any],
) -> dict[str, Any]:
    """Edit a link (only from the original client's side); a patch that changes nothing
    writes nothing."""
    try:
        return _patch_link(store, settings, principal, org_id, client_id, link_id, data)
    except _Unchanged as same:
        return same.view | {"revision": str(store.revision())}


def _patch_link(
    store: Store,
    settings: Settings,
    principal: Principal,
    org_id: str,
    client_id: str,
    link_id: str,
    data: dict[str, Any],
) -> dict[str, Any]:
    unknown = [(k, "unknown field") for k in data if k not in {*LINK_FIELDS, "portal_access"}]
    if unknown:
        raise ValidationFailed(unknown)
    attrs = _validate_attrs(data, creating=False)
    portal = (
        _validate_portal(data["portal_access"], creating=False)
        if data.get("portal_access") is not None
        else None
    )
    with store.write(principal.label, org_id) as txn:
        link = _get_link(txn.session, org_id, client_id, link_id)
        _require_original(txn.session, link, client_id, "edited")
        before = link_view(link)
        for key, value in attrs.items():
            setattr(link, key, value)
        receiver = txn.session.get(Client, link.original_client_id)
        caregiver = txn.session.get(Client, link.linked_client_id)
        assert receiver is not None and caregiver is not None
        if "client_type" in attrs:
            _check_client_type(settings, caregiver, link.client_type)
        invite = change = None
        if portal is not None:
            invite, change = _apply_portal(
                txn, settings, principal, link, portal, receiver, caregiver
            )
        if link_view(link) == before:
            # The same terms change nothing: no revision, no email, no new invite.
            raise _Unchanged(link_view(link, client_id, effective(txn.session, settings, link)))
        link.updated_at = clock.now()
        if change is not None:
            _tell_both(txn, settings, link, receiver, caregiver, change)
        kind = {"revoked": "grant.revoked", "widened": "grant.widened"}.get(change or "")
        txn.record(
            kind or "link.updated",
            link.id,
            before,
            link_view(link),
            [link.original_client_id, link.linked_client_id],
        )
        view = link_view(link, client_id, effective(txn.session, settings, link))
    view["revision"] = str(txn.revision)
    if invite is not None and settings.dev_mode:
        view["dev_invite_token"] = invite
    return view


def delete_link(
    store: Store, principal: Principal, org_id: str, client_id: str, link_id: str
) -> dict[str, Any]:
    """Remove a link and any portal access on it (only from the original client's side)."""
    with store.write(principal.label, org_id) as txn:
        link = _get_link(txn.session, org_id, client_id, link_id)
        _require_original(txn.session, link, client_id, "removed")
        for inv in txn.session.scalars(select(Invite).where(Invite.link_id == link.id)):
            txn.session.delete(inv)
        txn.record(
            "link.deleted",
            link.id,
            link_view(link),
            None,
            [link.original_client_id, link.linked_client_id],
        )
        txn.session.delete(link)
    return {"id": link_id, "deleted": True, "revision": str(txn.revision)}


def end_grant(
    store: Store, settings: Settings, principal: Principal, link_id: str, data: dict[str, Any]
) -> dict[str, Any]:
    """End portal access: by a provider of the organization, by the adult care receiver, or
    by the caregiver renouncing it (each signed in as themselves), with an optional reason."""
    unknown = [(k, "unknown field") for k in data if k != "reason"]
    reason = data.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 2000):
        unknown.append(("reason", "must be text of at most 2000 characters"))
    if unknown:
        raise ValidationFailed(unknown)
    provider = principal.is_admin_of(principal.org_id)
    if not provider and (principal.kind != "client" or principal.via == "delegation"):
        raise Forbidden(
            "a provider, the care receiver or the caregiver, signed in as themselves, "
            "can end portal access"
        )
    with store.write(principal.label, principal.org_id) as txn:
        link = txn.session.get(Link, link_id) if isinstance(link_id, str) else None
        sides = (link.original_client_id, link.linked_client_id) if link else ()
        if (
            link is None
            or link.org_id != principal.org_id
            or not (provider or principal.id in sides)
        ):
            raise NotFound(f"link {link_id} not found on your account")
        receiver = txn.session.get(Client, link.original_client_id)
        caregiver = txn.session.get(Client, link.linked_client_id)
        assert receiver is not None and caregiver is not None
        role = "provider"
        if not provider:
            role = "care receiver" if principal.id == receiver.id else "caregiver"
        if role == "care receiver" and receiver.client_type != "adult":
            raise Forbidden("a minor's caregiver access is managed by the practice")
        if link.portal_status not in ("pending", "active"):
            raise Conflict(f"portal access on {link_id} is {link.portal_status or 'not set'}")
        before = link_view(link)
        now = clock.now()
        link.portal_status, link.revoked_at, link.revoked_by = "revoked", now, principal.label
        link.revoked_reason = reason.strip() if reason else None
        link.grant_version += 1
        link.updated_at = now
        _cancel_invites(txn, link, now)
        _tell_both(txn, settings, link, receiver, caregiver, "revoked")
        txn.record(
            "grant.revoked",
            link.id,
            before,
            link_view(link) | {"ended_by_role": role},
            [link.original_client_id, link.linked_client_id],
        )
    return link_view(link, None if provider else principal.id) | {"revision": str(txn.revision)}


def accept_invite(
    store: Store, settings: Settings, principal: Principal, token: str
) -> dict[str, Any]:
    """The caregiver, signed in as themselves, accepts: the grant becomes active.
    A refused acceptance (replayed, withdrawn, expired, someone else's) is audited."""
    try:
        return _accept_invite(store, settings, principal, token)
    except (NotFound, Forbidden, Gone) as exc:
        refusals.record(
            store,
            "invite.refused",
            principal.label,
            principal.org_id,
            {"reason": exc.detail, "client_id": principal.client_id},
            [principal.id] if principal.kind == "client" else None,
        )
        raise


def _accept_invite(
    store: Store, settings: Settings, principal: Principal, token: str
) -> dict[str, Any]:
    if principal.kind != "client" or principal.via == "delegation":
        raise Forbidden("accept the invite signed in as yourself, not as another account")
    with store.write(principal.label, principal.org_id) as txn:
        invite = txn.session.scalar(
            select(Invite).where(Invite.token_hash == hash_invite_token(token or ""))
        )
        link = txn.session.get(Link, invite.link_id) if invite else None
        if invite is None or link is None or link.org_id != principal.org_id:
            raise NotFound("this invite is not valid")
        if invite.client_id != principal.id:
            raise Forbidden("this invite was sent to another client")
        if invite.used_at is not None:
            raise Gone("this invite was already used")
        if invite.cancelled_at is not None or link.portal_status != "pending":
            raise Gone("this invite was withdrawn")
        if clock.aware(invite.expires_at) <= clock.now():  # type: ignore[operator]
            raise Gone("this invite has expired; ask the practice for a new one")
        receiver = txn.session.get(Client, link.original_client_id)
        caregiver = txn.session.get(Client, link.linked_client_id)
        assert receiver is not None and caregiver is not None
        as_if_active = replace(grant_facts(link, receiver, caregiver), status="active")
        state = grants.effective_state(as_if_active, clock.now(), settings.majority_age)
        if not state.usable:
            raise Gone(f"this invite can no longer be used: {state.reason}")
        before = link_view(link)
        invite.used_at = clock.now()
        link.portal_status, link.activated_at = "active", clock.now()
        link.grant_version += 1
        txn.record(
            "grant.activated",
            link.id,
            before,
            link_view(link),
            [link.original_client_id, link.linked_client_id],
        )
    return link_view(link, principal.id) | {"revision": str(txn.revision)}
