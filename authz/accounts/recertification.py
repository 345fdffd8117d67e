"""Recertification: every active grant is re-approved by its review-by date, or it lapses.

The lapse itself needs no write: `authz.policy.grants.effective_state` reads the review-by date,
so a check, an introspection or a switch after the date is refused at once. The period and the
reminders are policy data (`authz.policy.recertification`, `policies/recertification.yaml`).
What is written here is the review-by date (at activation and at each re-approval), the
re-approval or the end, and, from the daily sweep, the reminders before the date and the audit
row of a lapse.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from authz.accounts import outbox
from authz.base import clock
from authz.base.config import Settings
from authz.base.errors import Conflict, Forbidden, NotFound, ValidationFailed
from authz.base.principals import Principal
from authz.policy.recertification import Policy, policy
from authz.store.db import Store, WriteTxn
from authz.store.models import AuditEvent, Client, Link, Provider

DECISIONS = ("still_needed", "end")
REMINDED = "grant.recertification_reminder"
LAPSED = "grant.lapsed"


def _may_review(principal: Principal) -> bool:
    return principal.is_admin_of(principal.org_id) or principal.is_reviewer_of(principal.org_id)


def parse(data: Any) -> tuple[str, str]:
    """The decision and its note from a request body; ValidationFailed names each problem."""
    if not isinstance(data, dict):
        raise ValidationFailed([("body", "must be a JSON object")])
    errors = [(k, "unknown field") for k in data if k not in ("decision", "note")]
    decision, note = data.get("decision"), data.get("note")
    if decision not in DECISIONS:
        errors.append(("decision", "must be still_needed or end"))
    if not isinstance(note, str) or not note.strip() or len(note) > 2000:
        errors.append(("note", "is required: why the grant is still needed, or why it ends"))
    if errors:
        raise ValidationFailed(errors)
    assert isinstance(decision, str) and isinstance(note, str)
    return decision, note.strip()


def recertify(
    store: Store, settings: Settings, principal: Principal, link_id: str, data: Any
) -> dict[str, Any]:
    """A provider or reviewer re-approves a grant ("still needed": a new review-by date one
    period from now) or ends it; either is audited with the note."""
    from authz.accounts import links

    if not _may_review(principal):
        raise Forbidden("a provider or a reviewer of the organization re-approves grants")
    decision, note = parse(data)
    with store.write(principal.label, principal.org_id) as txn:
        link = txn.session.get(Link, link_id) if isinstance(link_id, str) else None
        if link is None or link.org_id != principal.org_id or link.portal_status is None:
            raise NotFound(f"grant {link_id} not found")
        if decision == "end":
            links.end(txn, settings, link, principal.label, note, principal.kind)
        else:
            state = links.effective(txn.session, settings, link)
            if link.portal_status != "active" or state is None:
                raise Conflict(f"portal access on {link.id} is {link.portal_status}")
            if state.effective not in ("active", "lapsed"):
                raise Conflict(f"portal access on {link.id} cannot be re-approved: {state.reason}")
            before = links.link_view(link)
            now = clock.now()
            link.review_by = now + policy().period
            if state.effective == "lapsed":
                # A lapse ended the grant's tokens; re-approval starts a new activation, so the
                # tokens issued before the lapse stay dead (they carry the old one).
                link.activated_at = now
            link.recertified_at, link.recertified_by, link.recertified_note = (
                now,
                principal.label,
                note,
            )
            link.updated_at = now
            txn.record(
                "grant.recertified",
                link.id,
                before,
                links.link_view(link) | {"was": state.effective},
                [link.original_client_id, link.linked_client_id],
            )
    return links.link_view(link) | {"decision": decision, "revision": str(txn.revision)}


def _recipients(txn: WriteTxn, link: Link) -> list[tuple[str, str, str | None]]:
    """(address, name, client id) of the provider who granted it (else every provider of the
    organization) and of the caregiver."""
    session = txn.session
    granted = session.get(Provider, link.acknowledged_by) if link.acknowledged_by else None
    staff = (
        [granted]
        if granted is not None and granted.org_id == link.org_id
        else list(session.scalars(select(Provider).where(Provider.org_id == link.org_id)))
    )
    out: list[tuple[str, str, str | None]] = [(p.email, p.name or p.email, None) for p in staff]
    caregiver = session.get(Client, link.linked_client_id)
    if caregiver is not None and caregiver.email:
        out.append((caregiver.email, caregiver.first_name, caregiver.id))
    return out


def sweep(store: Store, settings: Settings, now: dt.datetime | None = None) -> dict[str, int]:
    """Email reminders `reminders_days` before each review-by date and audit each lapse, once
    each (idempotent: run it daily). The lapse is already in force without this."""

    now = now or clock.now()
    rules = policy()
    horizon = now + dt.timedelta(days=max(rules.reminders_days, default=0))
    counts = {"reminders": 0, "lapsed": 0}
    with store.read() as session:
        due = list(
            session.scalars(
                select(Link.id).where(
                    Link.portal_status == "active",
                    Link.review_by.is_not(None),
                    Link.review_by <= horizon,
                )
            )
        )
    for link_id in due:
        with store.read() as session:
            link = session.get(Link, link_id)
            if link is None or link.portal_status != "active" or link.review_by is None:
                continue
            action = _due_action(session, settings, link, rules, now)
        if action is None:
            continue
        kind, after = action
        with store.write("system:recertification", link.org_id) as txn:
            link = txn.session.get(Link, link_id)
            if link is None or clock.aware(link.review_by) != clock.aware(
                dt.datetime.fromisoformat(after["review_by"])
            ):
                continue  # re-approved or changed meanwhile
            txn.record(kind, link.id, None, after, [link.original_client_id, link.linked_client_id])
            receiver = txn.session.get(Client, link.original_client_id)
            name = receiver.first_name if receiver else link.original_client_id
            day = after["review_by"][:10]
            if kind == LAPSED:
                _mail(txn, link, f"Access to {name}'s account lapsed", after["reason"])
                counts["lapsed"] += 1
            else:
                _mail(
                    txn,
                    link,
                    f"Access to {name}'s account needs re-approval by {day}",
                    f"The portal-access grant {link.id} lapses on {day} unless the practice "
                    "re-approves it.",
                )
                counts["reminders"] += 1
    return counts


def _due_action(
    session: Any, settings: Settings, link: Link, rules: Policy, now: dt.datetime
) -> tuple[str, dict[str, Any]] | None:
    """The audit row the sweep owes this grant now (a lapse or a reminder), or None."""
    from authz.accounts import links

    review_by = clock.aware(link.review_by)
    assert review_by is not None
    stamp = review_by.isoformat()
    done = {
        (e.kind, (e.after or {}).get("review_by"), (e.after or {}).get("days"))
        for e in session.scalars(
            select(AuditEvent).where(
                AuditEvent.entity_id == link.id, AuditEvent.kind.in_((REMINDED, LAPSED))
            )
        )
    }
    if now >= review_by:
        state = links.effective(session, settings, link)
        if (LAPSED, stamp, None) in done or state is None or state.effective != "lapsed":
            return None
        return LAPSED, {"review_by": stamp, "reason": state.reason}
    left = review_by - now
    due_now = [d for d in rules.reminders_days if left <= dt.timedelta(days=d)]
    if not due_now or (REMINDED, stamp, min(due_now)) in done:
        return None
    return REMINDED, {"review_by": stamp, "days": min(due_now)}


def _mail(txn: WriteTxn, link: Link, subject: str, text: str) -> None:
    for address, name, client_id in _recipients(txn, link):
        outbox.enqueue(
            txn,
            link.org_id,
            "portal_access.recertification",
            address,
            subject,
            f"Hello {name},\n\n{text}\n",
            client_id,
        )
