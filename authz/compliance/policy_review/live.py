"""The live relations of the store, as the engine sees them now: who holds what on whom."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass

from authz.base import clock
from authz.base.errors import Conflict
from authz.policy.engine import Engine, PolicySet
from authz.policy.facts import ADOLESCENT_PROXY, FactIndex
from authz.store.db import Store


@dataclass(frozen=True)
class Relation:
    """`g, subject, relation, owner`: the subject holds the relation on the owner."""

    subject: str
    relation: str
    owner: str
    link_id: str | None
    reason: str


def engine_for(store: Store, majority_age: int, now: dt.datetime | None = None) -> Engine:
    """An engine over the policy files and the store's facts, logging nothing (review only)."""
    at = now or clock.now()
    return Engine(PolicySet.load(), FactIndex.load(store, majority_age), now=lambda: at)


def relations(engine: Engine, org_id: str | None = None) -> Iterator[Relation]:
    """Every relation the role manager answers now: on each client (the engine's `who_can`)
    and, for staff, on their organization (organization-wide resources such as policies)."""
    facts = engine.facts
    for org in sorted(facts.org_ids):
        if org_id is not None and org != org_id:
            continue
        org_index = facts.orgs[org]
        for cid in sorted(c for c in facts.client_ids() if facts.org_of(c) == org_index):
            now = engine.now()
            for access in engine.who_can(org, cid):
                yield Relation(access.subject, access.relation, cid, access.link_id, access.reason)
                held = facts.relations(access.subject, cid, now)
                if access.relation.startswith("caregiver_") and ADOLESCENT_PROXY in held:
                    band = facts.band(cid, now)
                    why = f"{facts.name(cid)} is in {band.describe()}" if band else ""
                    yield Relation(access.subject, ADOLESCENT_PROXY, cid, access.link_id, why)
        for staff in facts.staff_of(org):
            for path in facts.paths(staff, org, engine.now()):
                kind = staff.partition(":")[0]
                yield Relation(
                    staff, path.rel, org, None, f"{kind} of {facts.org_names[org_index]}"
                )


def payment_methods(engine: Engine, org_id: str | None = None) -> list[tuple[str, str]]:
    """`g2, payment method, client`: every payment method and the one client it belongs to.

    Payment-method ids are each organization's own, so two lines may name the same id for two
    clients of two organizations. The pair stays exact: a client id names one organization,
    and a check asks `g2` about the resource owner's own payment methods only."""
    return [(pm, owner) for _, pm, owner in engine.facts.payment_methods(org_id)]


def casbin_lines(engine: Engine, org_id: str | None = None) -> list[str]:
    """The export in the exact format `model.conf` loads (`g` and `g2` policy lines)."""
    facts = engine.facts
    head = [
        f"# authz grants export at {engine.now().isoformat()}, store revision {facts.revision},",
        f"# policy files {engine.policy.digest}.",
        "# g, <subject>, <relation>, <owner>: the subject holds the relation on the owner.",
        "# g2, <payment method>, <client>: the payment method (an id of the client's own",
        "# organization) belongs to that client.",
        "# g3, <caregiver>, <label>, <minor>: the minor shares that label with the caregiver.",
    ]
    g = [_line("g", r.subject, r.relation, r.owner) for r in relations(engine, org_id)]
    g2 = [_line("g2", pm, owner) for pm, owner in payment_methods(engine, org_id)]
    # An adolescent's consent to share a category with a caregiver (accounts.category_shares).
    g3 = [
        _line("g3", f"client:{caregiver}", label, minor)
        for (minor, caregiver), labels in sorted(engine.facts.consents.items())
        for label in sorted(labels)
        if org_id is None or engine.facts.client_org(minor) == org_id
    ]
    return head + g + g2 + g3


#: What an exported field may hold: ids, `kind:id` subjects and relation names. Nothing that
#: could end a field or a line (`,`, quotes, line breaks) or start a comment (`#`).
_FIELD = re.compile(r"[A-Za-z0-9_.:@-]{1,200}")


def _line(kind: str, *fields: str) -> str:
    """One policy line; a stored value that could break it or add another is refused."""
    for value in fields:
        if not _FIELD.fullmatch(value):
            raise Conflict(
                f"the stored value {value!r} cannot be exported safely (it could split or add "
                "a policy line); correct it before exporting"
            )
    return ", ".join((kind, *fields))
