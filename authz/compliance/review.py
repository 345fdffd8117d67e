"""The access review: for each client, who can act for them and how, who did, and what needs care.

"Who can act" comes from the policy engine's `who_can`, so the report and the decisions agree;
the store adds what a reviewer needs beside it (acknowledgements, dates, the family's links).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import func, select

from authz.accounts import clients
from authz.accounts.links import grant_facts
from authz.base import clock
from authz.base.config import Settings
from authz.base.errors import NotFound, ValidationFailed
from authz.base.ids import looks_like
from authz.compliance.policy_review import adolescence
from authz.policy import grants
from authz.policy.engine import Engine, PolicySet
from authz.policy.facts import FactIndex
from authz.store import audit
from authz.store.db import Store
from authz.store.models import Client, Decision, Link, Organization, Provider, Reviewer

READ_KIND = "review.read"
EXPIRING_WITHIN = dt.timedelta(days=30)
VIA = {"self": "own account", "shared_email": "shared email"}


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


def _public(grant: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in grant.items() if not k.startswith("_")}


def _grant_view(
    link: Link, receiver: Client, caregiver: Client, staff: dict[str, str], state: grants.GrantState
) -> dict[str, Any]:
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
        "access_level": link.access_level,
        "ends_at": audit.jsonable(state.ends_at),
        "acknowledged_by": link.acknowledged_by,
        "acknowledged_by_name": staff.get(link.acknowledged_by or "", link.acknowledged_by),
        "acknowledged_at": audit.jsonable(link.acknowledged_at),
        "acknowledgement": link.acknowledgement,
    }


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
        at = now
        engine = Engine(
            PolicySet.load(), FactIndex.load(store, settings.majority_age), now=lambda: at
        )
    with store.read() as session:
        org = session.get(Organization, org_id)
        if org is None:
            raise NotFound(f"organization {org_id} not found")
        if client_id is not None:
            clients.get_in_org(session, client_id, org_id, "client")
        everyone = {c.id: c for c in session.scalars(select(Client).where(Client.org_id == org_id))}
        links = list(session.scalars(select(Link).where(Link.org_id == org_id).order_by(Link.id)))
        staff: dict[str, str] = {}
        for model in (Provider, Reviewer):
            for srow in session.execute(
                select(model.id, model.name, model.email).where(model.org_id == org_id)
            ):
                staff[srow.id] = srow.name or srow.email
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

    acted: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for owner, actor, action, allowed, count, first, last in acted_rows:
        owner, actor = str(owner), str(actor)  # both filtered to be set
        entry = acted[owner].setdefault(
            actor,
            {
                "actor": actor,
                "name": label(actor),
                "decisions": 0,
                "allowed": 0,
                "denied": 0,
                "first_at": None,
                "last_at": None,
                "actions": [],
            },
        )
        entry["decisions"] += count
        entry["allowed" if allowed else "denied"] += count
        first, last = audit.jsonable(clock.aware(first)), audit.jsonable(clock.aware(last))
        entry["first_at"] = min(filter(None, (entry["first_at"], first)))
        entry["last_at"] = max(filter(None, (entry["last_at"], last)))
        if action not in entry["actions"]:
            entry["actions"].append(action)

    links_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    grants_on: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for link in links:
        receiver, caregiver = everyone[link.original_client_id], everyone[link.linked_client_id]
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
                    "portal_status": link.portal_status,
                }
            )
        if link.portal_status is not None:
            state = grants.effective_state(
                grant_facts(link, receiver, caregiver), now, settings.majority_age
            )
            view = _grant_view(link, receiver, caregiver, staff, state)
            view["_ends"] = state.ends_at
            view["_of_age"] = _of_age(receiver, settings.majority_age, now)
            grants_on[receiver.id].append(view)

    report_clients = []
    for cid in shown:
        c = everyone[cid]
        who = []
        for access in engine.who_can(org_id, cid):
            if access.relation in ("provider", "reviewer"):
                continue  # organization-wide: listed once under staff
            row: dict[str, Any] = {
                "subject": access.subject,
                "name": label(access.subject),
                "relation": access.relation,
                "link_id": access.link_id,
                "via": VIA.get(access.relation, "caregiver grant"),
                "reason": access.reason,
            }
            grant = next((g for g in grants_on[cid] if g["link_id"] == access.link_id), None)
            if grant is not None:
                row.update(
                    {
                        k: grant[k]
                        for k in (
                            "relationship",
                            "access_level",
                            "ends_at",
                            "acknowledged_by",
                            "acknowledged_by_name",
                            "acknowledged_at",
                            "acknowledgement",
                        )
                    }
                )
            who.append(row)
        mine = grants_on[cid]
        soon = now + EXPIRING_WITHIN
        report_clients.append(
            {
                "id": cid,
                "name": _name(c),
                "client_type": c.client_type,
                "birth_date": audit.jsonable(c.birth_date),
                "email": c.email,
                "active": c.active,
                "family": family_of[cid],
                "adolescence": adolescence.review_view(engine, store, cid, now),
                "who_can_act": who,
                "acted_for_by": sorted(
                    acted[cid].values(), key=lambda e: e["last_at"], reverse=True
                ),
                "grants": {
                    "pending": [_public(g) for g in mine if g["status"] == "pending"],
                    "expiring": [
                        _public(g)
                        for g in mine
                        if g["effective"] == "active" and g["_ends"] and g["_ends"] <= soon
                    ],
                    "past_majority": [
                        _public(g)
                        for g in mine
                        if g["status"] in ("pending", "active") and g["_of_age"]
                    ],
                },
                "links": links_of[cid],
            }
        )

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
    return {
        "organization": {"id": org.id, "name": org.name},
        "generated_at": audit.jsonable(now),
        "policy_digest": engine.policy.digest,
        "majority_age": settings.majority_age,
        "client_filter": client_id,
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
    with store.write(reader, org_id) as txn:
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
