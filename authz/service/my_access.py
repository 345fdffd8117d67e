""""My access", for a client signed in as themselves: both sides of delegation, and who acted.

- the accounts the login may act as (the Switch Account list, `authz.policy.delegation`);
- for each of its own accounts, who else may act for it and through what, and the grants on
  both sides (offered to it, held by it), with what the login may do about each;
- who acted for one of its accounts: every switch into it (the audit trail's issued tokens)
  and every decision taken with `act` on it (the decision log), newest first, paged.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import or_, select

from authz.accounts import links
from authz.accounts.clients import display_name
from authz.base import clock, pagination
from authz.base.errors import Forbidden, ValidationFailed
from authz.base.principals import Principal
from authz.compliance import review
from authz.policy import delegation
from authz.policy.engine import Subject
from authz.service.access import AccessService
from authz.store import audit
from authz.store.models import AuditEvent, Client, Decision, Link

_CURSOR = re.compile(r"^c(\d+)\.d(\d+)$")


def _own_login(principal: Principal) -> None:
    if principal.kind != "client" or principal.via != "self" or principal.actor is not None:
        raise Forbidden("my access is read with a client's own token, signed in as themselves")


def overview(svc: AccessService, principal: Principal) -> dict[str, Any]:
    """Both sides of delegation for the login's own accounts (facts fresh by the caller)."""
    _own_login(principal)
    facts, now = svc.facts, clock.now()
    own = delegation.own_accounts(facts, principal.id, now)
    can_act_as = [a.as_dict() for a in svc.engine.accounts(Subject.from_principal(principal))]
    accounts = []
    with svc.runtime.store.read() as session:
        for cid in own:
            client = session.get(Client, cid)
            if client is None:
                continue
            others = [
                a.as_dict()
                for a in svc.engine.who_can(principal.org_id, cid)
                if a.subject.startswith("client:") and a.subject.partition(":")[2] not in own
            ]
            rows = session.scalars(
                select(Link)
                .where(
                    or_(Link.original_client_id == cid, Link.linked_client_id == cid),
                    Link.portal_status.is_not(None),
                )
                .order_by(Link.id)
            ).all()
            offered, held = [], []
            for link in rows:
                state = links.effective(session, svc.runtime.settings, link)
                receiver = session.get(Client, link.original_client_id)
                caregiver = session.get(Client, link.linked_client_id)
                assert receiver is not None and caregiver is not None
                live = link.portal_status in ("pending", "active")
                item: dict[str, Any] = {
                    "link_id": link.id,
                    "care_receiver": {"id": receiver.id, "name": display_name(receiver)},
                    "caregiver": {"id": caregiver.id, "name": display_name(caregiver)},
                    "relationship": link.relationship,
                    "access_level": link.access_level or "full",
                    "status": link.portal_status,
                    "effective_status": state.effective if state else link.portal_status,
                    "effective_reason": state.reason if state else None,
                    "ends_at": _iso(state.ends_at if state else link.expires_at),
                    "revoked_reason": link.revoked_reason,
                }
                if link.original_client_id == cid:
                    # A minor's caregiver access is managed by the practice.
                    item["can_end"] = live and receiver.client_type == "adult"
                    offered.append(item)
                else:
                    item["can_end"] = live
                    held.append(item)
            accounts.append(
                {
                    "client_id": cid,
                    "name": display_name(client),
                    "client_type": client.client_type,
                    "via": "self" if cid == principal.id else "shared_email",
                    "who_can_act": others,
                    "grants_on_me": offered,
                    "grants_i_hold": held,
                }
            )
    return {
        "client_id": principal.id,
        "can_act_as": can_act_as,
        "accounts": accounts,
        "revision": str(facts.revision),
    }


def _iso(value: Any) -> str | None:
    value = clock.aware(value)
    return value.isoformat() if value else None


def _positions(page: pagination.Page) -> tuple[int | None, int | None]:
    if page.after is None:
        return None, None
    found = _CURSOR.match(page.after)
    if not found:
        raise ValidationFailed([("cursor", "is not a cursor this service issued")])
    return int(found.group(1)), int(found.group(2))


def activity(
    svc: AccessService, principal: Principal, client_id: str, page: pagination.Page
) -> dict[str, Any]:
    """Who acted for `client_id` (one of the login's own accounts): switches into it and
    decisions taken with `act` on it, newest first."""
    _own_login(principal)
    own = delegation.own_accounts(svc.facts, principal.id, clock.now())
    if client_id not in own:
        raise Forbidden("you can read the activity of your own accounts only")
    c_before, d_before = _positions(page)
    n = page.limit + 1
    account = f"client:{client_id}"
    with svc.runtime.store.read() as session:
        switches: list[AuditEvent] = []
        stmt = (
            select(AuditEvent)
            .where(
                AuditEvent.org_id == principal.org_id,
                AuditEvent.kind == "token.issued",
                # Only tokens that act as another account, and as this one (not every sign-in).
                AuditEvent.after["kind"].as_string().in_(review.SWITCH_KINDS),
                AuditEvent.after["account"].as_string() == account,
            )
            .order_by(AuditEvent.seq.desc())
        )
        if c_before is not None:
            stmt = stmt.where(AuditEvent.seq < c_before)
        # Issued tokens are filtered here on their JSON (portable across SQLite and PostgreSQL);
        # read in chunks so that a long history is not loaded at once.
        for ev in session.scalars(stmt.execution_options(yield_per=500)):
            after = ev.after or {}
            if after.get("account") == account and after.get("act") not in (None, account):
                switches.append(ev)
                if len(switches) >= n:
                    break
        dstmt = (
            select(Decision)
            .where(
                Decision.org_id == principal.org_id,
                Decision.owner_client_id == client_id,
                Decision.subject == account,
                Decision.actor != account,
            )
            .order_by(Decision.seq.desc())
            .limit(n)
        )
        if d_before is not None:
            dstmt = dstmt.where(Decision.seq < d_before)
        decisions = list(session.scalars(dstmt))
        names = {
            c.id: display_name(c)
            for c in session.scalars(
                select(Client).where(Client.org_id == principal.org_id)
            )
        } if switches or decisions else {}
    merged: list[tuple[str, Any, int, Any]] = sorted(
        [("switch", e.at, e.seq, e) for e in switches]
        + [("decision", d.at, d.seq, d) for d in decisions],
        key=lambda item: (clock.aware(item[1]), item[0] == "switch", item[2]),
        reverse=True,
    )
    taken, more = merged[: page.limit], len(merged) > page.limit
    items: list[dict[str, Any]] = []
    c_last, d_last = c_before or 0, d_before or 0
    for kind, _at, seq, row in taken:
        if kind == "switch":
            c_last = seq
            actor = str(row.after.get("act") or "")
            items.append(
                {
                    "kind": "switch",
                    "at": audit.jsonable(row.at),
                    "actor": actor,
                    "actor_name": names.get(actor.partition(":")[2], actor),
                    "via": row.after.get("via"),
                    "grant": row.after.get("grant"),
                    "scope": row.after.get("scope"),
                    "client_id": row.after.get("client_id"),
                    "id": row.id,
                }
            )
        else:
            d_last = seq
            actor = row.actor or ""
            items.append(
                {
                    "kind": "decision",
                    "at": audit.jsonable(row.at),
                    "actor": actor,
                    "actor_name": names.get(actor.partition(":")[2], actor),
                    "action": row.action,
                    "resource": row.resource,
                    "allowed": row.allowed,
                    "reason": row.reason,
                    "id": row.id,
                }
            )
    if more:
        # A chain none of whose rows were taken keeps its place; a fresh start is "before
        # everything" (0 would mean before seq 0, which is nothing).
        c_pos = c_last if any(k == "switch" for k, *_ in taken) else (c_before or 2**62)
        d_pos = d_last if any(k == "decision" for k, *_ in taken) else (d_before or 2**62)
        cursor = pagination.encode(f"c{c_pos}.d{d_pos}")
    else:
        cursor = None
    return {
        "client_id": client_id,
        "items": items,
        "next_cursor": cursor,
        "revision": str(svc.facts.revision),
    }


def login_accounts(store: Any, email: str) -> list[dict[str, str]]:
    """The account a login (by its verified email) signs in to in each organization: an adult
    one first, as a shared email's family member is usually the adult's minor."""
    from authz.store.models import Organization

    with store.read() as session:
        rows = session.scalars(
            select(Client)
            .where(Client.email == email, Client.active.is_(True))
            .order_by(Client.org_id, Client.client_type, Client.id)
        ).all()
        out: dict[str, dict[str, str]] = {}
        for row in rows:
            if row.org_id not in out:
                org = session.get(Organization, row.org_id)
                out[row.org_id] = {
                    "org_id": row.org_id,
                    "org_name": org.name if org else row.org_id,
                    "client_id": row.id,
                }
        return list(out.values())
