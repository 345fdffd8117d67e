"""A small world in which every relation the store can answer is held once, to ask the engine
what a version of the policy files decides for each relation and action.

`authz policy check` and `authz policy diff` evaluate policy files here rather than reading
their text: what counts is what the engine decides with them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from authz.policy import vocabulary
from authz.policy.engine import CheckRequest, Engine, PolicySet, Resource, Rule, Subject
from authz.policy.facts import LEVELS, ClientRow, FactIndex, LinkRow, OrgRow, PaymentRow, StaffRow
from authz.policy.grants import ENTITLEMENT

NOW = dt.datetime(2030, 1, 1, 12, tzinfo=dt.UTC)
ORG = "org_probe"
OWNER = "cli_owner"
OTHER = "cli_other"
OWN_PM = "pm_owner"
OTHER_PM = "pm_other"


def _world() -> tuple[FactIndex, list[str]]:
    """The facts, and one subject per relation (each holding exactly that one on OWNER)."""
    ack = dt.datetime(2029, 6, 1, tzinfo=dt.UTC)
    clients = [
        ClientRow(OWNER, ORG, "Owner", "adult", None, "owner@probe.test", True, True),
        ClientRow("cli_twin", ORG, "Twin", "adult", None, "owner@probe.test", True, True),
        ClientRow(OTHER, ORG, "Other", "adult", None, "other@probe.test", True, True),
    ]
    links = []
    subjects = [f"client:{OWNER}", "client:cli_twin"]
    for level in (lv for lv in LEVELS if lv):
        cid = f"cli_{level}"
        clients.append(ClientRow(cid, ORG, level.title(), "adult", None, None, True, True))
        links.append(
            LinkRow(
                f"lnk_{level}", OWNER, cid, "caregiver", "active", level, None, "prv_probe", ack
            )
        )
        subjects.append(f"client:{cid}")
    facts = FactIndex.from_rows(
        [OrgRow(ORG, "Probe practice", [ENTITLEMENT])],
        [StaffRow("prv_probe", ORG, "Provider")],
        [StaffRow("rev_probe", ORG, "Reviewer")],
        clients,
        links,
        [PaymentRow(OWN_PM, OWNER), PaymentRow(OTHER_PM, OTHER)],
    )
    return facts, [*subjects, "provider:prv_probe", "reviewer:rev_probe"]


FACTS, SUBJECTS = _world()


def owner_for(action: str) -> str:
    """The owner a resource of this action's type has: the client, or the organization."""
    rtype = vocabulary.RESOURCE_TYPES.get(vocabulary.ACTIONS[action].resource_type)
    return ORG if rtype is not None and rtype.owner is vocabulary.Owner.ORG else OWNER


def relations_of(subject: str, owner: str = OWNER) -> list[str]:
    """What the store-backed role manager answers for this subject on the owner."""
    return [p.rel for p in FACTS.paths(subject, owner, NOW)]


def relation_of(subject: str) -> str:
    """The relation a probe subject stands for (on a client, else on the organization)."""
    rels = relations_of(subject) or relations_of(subject, ORG)
    return rels[0]


def request(subject: str, action: str, payment_method: str = OWN_PM) -> CheckRequest:
    """The check `subject` would make for `action` on a resource of OWNER (or the org)."""
    act = vocabulary.ACTIONS[action]
    rtype, owner = act.resource_type, owner_for(action)
    kind, _, ident = subject.partition(":")
    # A client acts on OWNER through the token issued for that account (its own, toggled or
    # switched to), so that the probe reaches the policy line its relation stands for.
    who = (
        Subject.explicit(subject, ORG, f"client:{owner}")
        if kind == "client" and owner != ORG
        else Subject(subject, ORG, ident if kind == "client" else None)
    )
    rid: str | None = None
    if rtype == "client":
        rid = OWNER
    elif act.payment == "resource":
        rid = payment_method
    return CheckRequest(
        who,
        action,
        Resource(rtype, rid, None if rtype == "client" else owner),
        payment_method if act.payment == "context" else None,
    )


@dataclass(frozen=True)
class Outcome:
    subject: str
    relation: str
    action: str
    payment_method: str
    allowed: bool
    rule: Rule | None
    reason: str


def decide(policy: PolicySet, subject: str, action: str, pm: str = OWN_PM) -> Outcome:
    """The engine's decision, and the policy line that decided (None: default deny)."""
    engine = Engine(policy, FACTS, now=lambda: NOW)
    decision = engine.check(request(subject, action, pm))
    rule = None
    if decision.enforced is not None:
        rule = engine.evaluate(*decision.enforced, now=NOW)[1]
    return Outcome(
        subject, relation_of(subject), action, pm, decision.allowed, rule, decision.reason
    )


def every(policy: PolicySet, pms: tuple[str, ...] = (OWN_PM,)) -> Iterator[Outcome]:
    """Every probe subject, for every vocabulary action (and each payment method given)."""
    for action, act in vocabulary.ACTIONS.items():
        for subject in SUBJECTS:
            for pm in pms if act.payment else (OWN_PM,):
                yield decide(policy, subject, action, pm)
