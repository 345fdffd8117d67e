"""The access review: for each client, who can act for them and how, who did, and what needs care.

"Who can act" comes from the policy engine's `who_can`, so the report and the decisions agree;
the store adds what a reviewer needs beside it (acknowledgements, dates, the family's links).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from authz.accounts import clients, notifications
from authz.accounts.links import grant_facts
from authz.base import clock
from authz.base.config import Settings
from authz.base.errors import NotFound, ValidationFailed
from authz.base.ids import looks_like
from authz.compliance.policy_review import adolescence
from authz.policy import grants
from authz.policy import recertification as recertification_rules
from authz.policy.engine import Engine, PolicySet
from authz.policy.facts import FactIndex
from authz.store import audit
from authz.store.db import Store
from authz.store.models import (
    AuditEvent,
    Client,
    Contact,
    Decision,
    Link,
    Organization,
    Provider,
    Reviewer,
)

#: Issued-token kinds (the `token.issued` audit rows) that act as another account.
SWITCH_KINDS = ("switch", "toggle")

READ_KIND = "review.read"
EXPIRING_WITHIN = dt.timedelta(days=30)
VIA = {"self": "own account", "shared_email": "shared email"}
#: Attention kinds, most urgent first: the summary's list and the cards follow this order.
ATTENTION = {
    "lapsed": "lapsed: nobody re-approved it by its review date",
    "past_majority": "past the age of majority",
    "expiring": "expires within 30 days",
    "review_due": "review due within 30 days",
    "pending": "pending acceptance",
    "widened": "widened since the last review",
}
FAMILY_NOTE = (
    "A family is a group of clients joined by links or by a shared email address; its number "
    "only labels the group in this report and the graph of that number below."
)


def _name(client: Client) -> str:
    return clients.display_name(client)


def _families(links: list[Link], email_groups: list[list[str]]) -> dict[str, int]:
    """Family number of each client: connected through links or a shared email."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for link in links:
        parent[find(link.original_client_id)] = find(link.linked_client_id)
    for group in email_groups:
        for other in group[1:]:
            parent[find(other)] = find(group[0])
    roots: dict[str, int] = {}
    return {c: roots.setdefault(find(c), len(roots) + 1) for c in sorted(parent)}


def _of_age(receiver: Client, majority_age: int, now: dt.datetime) -> bool:
    """A minor's grant outlives its purpose once the minor comes of age."""
    if receiver.client_type != "minor" or receiver.birth_date is None:
        return False
    return grants.majority_date(receiver.birth_date, majority_age) <= now.date()


def _phrase(relationship: str, for_receiver: bool) -> str:
    """The relationship as the card being read says it (`relationship` is what the linked
    client is to the original client; the other side reads its inverse)."""
    side = "outgoing" if for_receiver else "incoming"
    return clients.relationship_to(relationship, side).replace("_", " ")


def _grant_row(
    link: Link,
    receiver: Client,
    caregiver: Client,
    state: grants.GrantState,
    staff_name: Any,
    now: dt.datetime,
    majority_age: int,
    widened: set[str],
) -> dict[str, Any]:
    """One grant, once, with its effective state, every reason it needs attention, and how it
    ended if it did."""
    attention: list[str] = []
    live = link.portal_status in ("pending", "active")
    if state.effective == "lapsed":
        attention.append("lapsed")
    if live and _of_age(receiver, majority_age, now):
        attention.append("past_majority")
    soon = now + EXPIRING_WITHIN
    expires = clock.aware(link.expires_at)
    if state.effective == "active" and expires is not None and expires <= soon:
        attention.append("expiring")
    if state.effective == "active" and state.review_by is not None and state.review_by <= soon:
        attention.append("review_due")
    if link.portal_status == "pending":
        attention.append("pending")
    if live and link.id in widened:
        attention.append("widened")
    # The state's own reason already says lapsed, pending or of age: the rest are added.
    said = {state.effective} | ({"past_majority"} if "came of age" in state.reason else set())
    reasons = [state.reason] + [ATTENTION[k] for k in attention if k not in said]
    return {
        "link_id": link.id,
        "caregiver_id": caregiver.id,
        "caregiver": _name(caregiver),
        "receiver_id": receiver.id,
        "receiver": _name(receiver),
        "relationship": link.relationship,
        "status": link.portal_status,
        "effective": state.effective,
        "reason": state.reason,
        "reasons": reasons,
        "attention": attention,
        "access_level": link.access_level,
        "ends_at": audit.jsonable(state.ends_at),
        "expires_at": audit.jsonable(expires),
        "review_by": audit.jsonable(clock.aware(link.review_by)),
        "recertified_at": audit.jsonable(clock.aware(link.recertified_at)),
        "recertified_by": link.recertified_by,
        "recertified_by_name": staff_name(link.recertified_by),
        "recertified_note": link.recertified_note,
        "acknowledged_by": link.acknowledged_by,
        "acknowledged_by_name": staff_name(link.acknowledged_by),
        "acknowledged_at": audit.jsonable(clock.aware(link.acknowledged_at)),
        "acknowledgement": link.acknowledgement,
        "activated_at": audit.jsonable(clock.aware(link.activated_at)),
        "revoked_at": audit.jsonable(clock.aware(link.revoked_at)),
        "revoked_by": link.revoked_by,
        "revoked_by_name": staff_name(link.revoked_by),
        "revoked_reason": link.revoked_reason,
        "can_recertify": link.portal_status == "active" and state.effective in ("active", "lapsed"),
        "can_end": live,
    }


def _disclosures(
    client: Client, contacts: list[Contact], notify_links: list[tuple[Link, Client]]
) -> dict[str, Any]:
    """Who receives copies of the client's emails (every event type: the rule of
    `authz.accounts.notifications`) and who is an emergency contact: each a disclosure."""
    events = list(notifications.EVENTS)
    copies: list[dict[str, Any]] = []
    emergency: list[dict[str, Any]] = []
    for contact in contacts:
        entry = {
            "kind": "contact",
            "id": contact.id,
            "name": contact.name,
            "email": contact.email,
            "relation": contact.relationship.replace("_", " "),
            "since": audit.jsonable(clock.aware(contact.created_at)),
        }
        if contact.notify and contact.email:
            copies.append(entry | {"events": events})
        if contact.emergency_contact:
            emergency.append(entry)
    for link, other in notify_links:
        entry = {
            "kind": "linked_client",
            "id": other.id,
            "link_id": link.id,
            "name": _name(other),
            "email": other.email,
            "relation": _phrase(link.relationship, True),
            "since": audit.jsonable(clock.aware(link.created_at)),
        }
        if link.notify and other.email and other.active:
            copies.append(entry | {"events": events})
        if link.emergency_contact:
            emergency.append(entry)
    return {"email_copies": copies, "emergency_contacts": emergency}


def build(
    store: Store,
    settings: Settings,
    org_id: str,
    client_id: str | None = None,
    now: dt.datetime | None = None,
    engine: Engine | None = None,
) -> dict[str, Any]:
    """The report data for the organization, or for one client (and that client's family).

    `engine`: the service's live engine (its facts already fresh); a command builds its own."""
    now = now or clock.now()
    if client_id is not None and not looks_like(client_id, "cli"):
        raise ValidationFailed([("client", "must be a client id (cli_…)")])
    if engine is None:
        moment = now  # the whole report is read at one moment
        engine = Engine(
            PolicySet.load(), FactIndex.load(store, settings.majority_age), now=lambda: moment
        )
    with store.read() as session:
        org = session.get(Organization, org_id)
        if org is None:
            raise NotFound(f"organization {org_id} not found")
        if client_id is not None:
            clients.get_in_org(session, client_id, org_id, "client")
        everyone = {c.id: c for c in session.scalars(select(Client).where(Client.org_id == org_id))}
        links = list(session.scalars(select(Link).where(Link.org_id == org_id).order_by(Link.id)))
        contacts_of: dict[str, list[Contact]] = defaultdict(list)
        for contact in session.scalars(
            select(Contact).where(Contact.org_id == org_id).order_by(Contact.id)
        ):
            contacts_of[contact.client_id].append(contact)
        staff: dict[str, str] = {}
        for model in (Provider, Reviewer):
            kind = "provider" if model is Provider else "reviewer"
            for srow in session.execute(
                select(model.id, model.name, model.email).where(model.org_id == org_id)
            ):
                staff[srow.id] = staff[f"{kind}:{srow.id}"] = srow.name or srow.email
        last_review = session.scalar(
            select(func.max(AuditEvent.at)).where(
                AuditEvent.org_id == org_id, AuditEvent.kind == READ_KIND
            )
        )
        last_review = clock.aware(last_review)
        widened = {
            str(lid)
            for lid in session.scalars(
                select(AuditEvent.entity_id).where(
                    AuditEvent.org_id == org_id,
                    AuditEvent.kind == "grant.widened",
                    *([AuditEvent.at > last_review] if last_review else []),
                )
            )
        }
        acted_rows = session.execute(
            select(
                Decision.owner_client_id,
                Decision.actor,
                Decision.action,
                Decision.allowed,
                func.count(),
                func.min(Decision.at),
                func.max(Decision.at),
            )
            .where(
                Decision.org_id == org_id,
                Decision.actor.is_not(None),
                Decision.owner_client_id.is_not(None),
                Decision.actor != "client:" + Decision.owner_client_id,
                *([Decision.owner_client_id == client_id] if client_id else []),
            )
            .group_by(Decision.owner_client_id, Decision.actor, Decision.action, Decision.allowed)
        ).all()
        switch_rows = _switches_into(session, org_id, client_id)
    by_email: dict[str, list[str]] = defaultdict(list)
    for c in everyone.values():
        if c.email:
            by_email[c.email].append(c.id)
    groups = [sorted(ids) for ids in by_email.values() if len(ids) > 1]
    family_of = _families(links, groups)
    for cid in everyone:
        family_of.setdefault(cid, 0)
    if client_id is not None:
        wanted = {c for c, f in family_of.items() if f == family_of[client_id] and f} or {client_id}
        shown = [client_id]
    else:
        wanted = set(everyone)
        shown = sorted(everyone, key=lambda c: (_name(everyone[c]).lower(), c))

    def label(subject: str) -> str:
        kind, _, ident = subject.partition(":")
        if kind == "client" and ident in everyone:
            return _name(everyone[ident])
        return staff.get(ident) or subject

    def staff_name(who: str | None) -> str | None:
        if not who:
            return None
        return staff.get(who) or label(who)

    acted: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)

    def acted_entry(owner: str, actor: str, first: Any, last: Any) -> dict[str, Any]:
        entry = acted[owner].setdefault(
            actor,
            {
                "actor": actor,
                "name": label(actor),
                "switches": 0,
                "decisions": 0,
                "allowed": 0,
                "denied": 0,
                "first_at": None,
                "last_at": None,
                "actions": [],
            },
        )
        first, last = audit.jsonable(clock.aware(first)), audit.jsonable(clock.aware(last))
        entry["first_at"] = min(filter(None, (entry["first_at"], first)))
        entry["last_at"] = max(filter(None, (entry["last_at"], last)))
        return entry

    for owner, actor, action, allowed, count, first, last in acted_rows:
        entry = acted_entry(str(owner), str(actor), first, last)  # both filtered to be set
        entry["decisions"] += count
        entry["allowed" if allowed else "denied"] += count
        if action not in entry["actions"]:
            entry["actions"].append(action)
    # Switching into an account is acting for it even before the first decision is asked.
    for owner, actor, when in switch_rows:
        acted_entry(owner, actor, when, when)["switches"] += 1

    links_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    grants_on: dict[str, list[dict[str, Any]]] = defaultdict(list)
    grants_held: dict[str, list[dict[str, Any]]] = defaultdict(list)
    notify_links: dict[str, list[tuple[Link, Client]]] = defaultdict(list)
    for link in links:
        receiver, caregiver = everyone[link.original_client_id], everyone[link.linked_client_id]
        if link.notify or link.emergency_contact:
            notify_links[receiver.id].append((link, caregiver))
        for me, other, direction in (
            (receiver, caregiver, "outgoing"),
            (caregiver, receiver, "incoming"),
        ):
            links_of[me.id].append(
                {
                    "link_id": link.id,
                    "direction": direction,
                    "other_id": other.id,
                    "other": _name(other),
                    "relationship": link.relationship,
                    # What the other client is to this one, said from this card's side.
                    "other_is": _phrase(link.relationship, direction == "outgoing"),
                    "portal_status": link.portal_status,
                }
            )
        if link.portal_status is not None:
            state = grants.effective_state(
                grant_facts(link, receiver, caregiver), now, settings.majority_age
            )
            grants_on[receiver.id].append(
                _grant_row(
                    link,
                    receiver,
                    caregiver,
                    state,
                    staff_name,
                    now,
                    settings.majority_age,
                    widened,
                )
            )
            grants_held[caregiver.id].append(
                {
                    "link_id": link.id,
                    "receiver_id": receiver.id,
                    "receiver": _name(receiver),
                    "receiver_is": _phrase(link.relationship, False),
                    "effective": state.effective,
                    "access_level": link.access_level,
                }
            )

    report_clients = []
    for cid in shown:
        c = everyone[cid]
        who = []
        for access in engine.who_can(org_id, cid):
            if access.relation in ("provider", "reviewer"):
                continue  # organization-wide: listed once under staff
            sharer = everyone.get(access.subject.partition(":")[2])
            row: dict[str, Any] = {
                "subject": access.subject,
                "name": label(access.subject),
                "relation": access.relation,
                "link_id": access.link_id,
                "via": VIA.get(access.relation, "caregiver grant"),
                "reason": access.reason,
            }
            if access.relation == "shared_email" and sharer is not None:
                # The subject is a login: whoever signs in with that address, not the person
                # on the other account.
                row["login"] = sharer.email
                row["name"] = f"the login {sharer.email}"
                row["signs_in_to"] = _name(sharer)
            grant = next((g for g in grants_on[cid] if g["link_id"] == access.link_id), None)
            if grant is not None:
                row.update(
                    {
                        k: grant[k]
                        for k in (
                            "relationship",
                            "access_level",
                            "ends_at",
                            "review_by",
                            "acknowledged_by",
                            "acknowledged_by_name",
                            "acknowledged_at",
                            "acknowledgement",
                        )
                    }
                )
                row["relationship_phrase"] = _phrase(grant["relationship"], True)
            who.append(row)
        mine = grants_on[cid]
        attention = sorted(
            {k for g in mine for k in g["attention"]}, key=lambda k: list(ATTENTION).index(k)
        )
        report_clients.append(
            {
                "id": cid,
                "name": _name(c),
                "client_type": c.client_type,
                "birth_date": audit.jsonable(c.birth_date),
                "email": c.email,
                "active": c.active,
                "family": family_of[cid],
                "attention": attention,
                "adolescence": adolescence.review_view(engine, store, cid, now),
                "who_can_act": who,
                "acted_for_by": sorted(
                    acted[cid].values(), key=lambda e: e["last_at"], reverse=True
                ),
                "grants": mine,
                "grants_held": grants_held[cid],
                "disclosures": _disclosures(c, contacts_of[cid], notify_links[cid]),
                "links": links_of[cid],
            }
        )
    # Cards in order of attention: the most urgent kind first, then by name.
    rank = {k: i for i, k in enumerate(ATTENTION)}
    report_clients.sort(
        key=lambda rc: (
            min((rank[k] for k in rc["attention"]), default=len(rank)),
            -len(rc["attention"]),
            rc["name"].lower(),
            rc["id"],
        )
    )
    items = [
        {
            "kind": kind,
            "label": ATTENTION[kind],
            "client_id": rc["id"],
            "client": rc["name"],
            "link_id": g["link_id"],
            "caregiver": g["caregiver"],
            "reasons": g["reasons"],
        }
        for rc in report_clients
        for g in rc["grants"]
        for kind in g["attention"][:1]
    ]
    items.sort(key=lambda i: (rank[i["kind"]], i["client"].lower(), i["link_id"]))
    all_grants = [g for rc in report_clients for g in rc["grants"]]

    def with_kind(kind: str) -> int:
        return sum(1 for g in all_grants if kind in g["attention"])

    summary = {
        "counts": {
            "clients": len(report_clients),
            "active_grants": sum(1 for g in all_grants if g["effective"] == "active"),
            "pending": with_kind("pending"),
            "expiring": with_kind("expiring"),
            "review_due": with_kind("review_due"),
            "past_majority": with_kind("past_majority"),
            "lapsed": with_kind("lapsed"),
            "widened": with_kind("widened"),
            "disclosures": sum(
                len(rc["disclosures"]["email_copies"])
                + len(rc["disclosures"]["emergency_contacts"])
                for rc in report_clients
            ),
            "needing_attention": len(items),
        },
        "attention": items,
        "last_review_at": audit.jsonable(last_review),
    }

    # The picture shows what a grant allows now (a minor's grant ends at majority).
    effective = {g["link_id"]: g["effective"] for gs in grants_on.values() for g in gs}
    families = []
    for number in sorted({family_of[c] for c in wanted if family_of[c]}):
        members = sorted(
            (c for c in wanted if family_of[c] == number),
            key=lambda c: (_name(everyone[c]).lower(), c),
        )
        families.append(
            {
                "number": number,
                "clients": [
                    {"id": m, "name": _name(everyone[m]), "client_type": everyone[m].client_type}
                    for m in members
                ],
                "links": [
                    {
                        "link_id": lk.id,
                        "receiver": lk.original_client_id,
                        "caregiver": lk.linked_client_id,
                        "relationship": lk.relationship,
                        "portal_status": effective.get(lk.id, lk.portal_status),
                    }
                    for lk in links
                    if lk.original_client_id in members
                ],
                "shared_email": [g for g in groups if g[0] in members],
            }
        )
    rules = recertification_rules.policy()
    return {
        "organization": {"id": org.id, "name": org.name},
        "generated_at": audit.jsonable(now),
        "policy_digest": engine.policy.digest,
        "majority_age": settings.majority_age,
        "recertification": {
            "period_days": rules.period_days,
            "reminders_days": list(rules.reminders_days),
        },
        "client_filter": client_id,
        "family_note": FAMILY_NOTE,
        "summary": summary,
        "staff": sorted(
            (
                {"subject": s, "name": label(s), "role": s.partition(":")[0]}
                for s in engine.facts.staff_of(org_id)
            ),
            key=lambda s: (s["role"], s["name"]),
        ),
        "clients": report_clients,
        "families": families,
    }


def read(
    store: Store,
    settings: Settings,
    reader: str,
    org_id: str,
    client_id: str | None = None,
    engine: Engine | None = None,
) -> dict[str, Any]:
    """The report, returned only once its reading is recorded in the audit trail."""
    report = build(store, settings, org_id, client_id, engine=engine)
    with store.append_audit(reader, org_id) as txn:
        txn.record(
            READ_KIND,
            client_id,
            None,
            {"client": client_id, "clients": len(report["clients"])},
            [client_id] if client_id else None,
        )
    return report


def org_for(store: Store, org_id: str | None, client_id: str | None) -> str:
    """The organization a command-line report is about: given, the client's, or the only one."""
    with store.read() as session:
        if org_id is not None:
            if session.get(Organization, org_id) is None:
                raise NotFound(f"organization {org_id} not found")
            return org_id
        if client_id is not None:
            client = session.get(Client, client_id) if looks_like(client_id, "cli") else None
            if client is None:
                raise NotFound(f"client {client_id} not found")
            return client.org_id
        orgs = list(session.scalars(select(Organization.id).limit(2)))
    if len(orgs) != 1:
        raise ValidationFailed(
            [
                (
                    "org",
                    "pass --org: the store has "
                    + ("no" if not orgs else "several")
                    + " organizations",
                )
            ]
        )
    return orgs[0]


def _switches_into(
    session: Session, org_id: str, client_id: str | None
) -> list[tuple[str, str, Any]]:
    """(account, acting login, when) for every token issued to act as another account."""
    kind = AuditEvent.after["kind"].as_string()
    rows = session.execute(
        select(AuditEvent.after, AuditEvent.at).where(
            AuditEvent.org_id == org_id,
            AuditEvent.kind == "token.issued",
            kind.in_(SWITCH_KINDS),
        )
    ).all()
    out = []
    for after, at in rows:
        account, login = (after or {}).get("account"), (after or {}).get("act")
        if not (isinstance(account, str) and isinstance(login, str) and account != login):
            continue
        owner = account.partition(":")[2]
        if client_id is None or owner == client_id:
            out.append((owner, login, at))
    return out
