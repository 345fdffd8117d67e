"""`authz policy diff OLD NEW`: the decisions that change between two versions of the policy
files, in plain words, grouped by who is affected and counted over the live store.

Both versions are evaluated by the engine over the probe world (every relation, every action
of the vocabulary, with the owner's own and another client's payment method), so a reordered or
reworded file that decides the same says so, and a one-line edit shows everything it changes.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from authz.compliance.policy_review import live
from authz.policy import probe, vocabulary
from authz.policy.age_bands import NARROWS, BandTable
from authz.policy.engine import Engine, PolicySet

#: Who holds each relation, in a reviewer's words, and what one of them is counted as.
WHO: dict[str, tuple[str, str]] = {
    "self": ("clients on their own account", "accounts"),
    "shared_email": ("logins on an account sharing their verified email", "shared-email pairs"),
    "caregiver_full": ("caregivers with full access", "grants"),
    "caregiver_billing": ("caregivers with billing access", "grants"),
    "caregiver_scheduling": ("caregivers with scheduling access", "grants"),
    "provider": ("providers", "providers"),
    "reviewer": ("reviewers", "reviewers"),
}
CASES = {probe.OWN_PM: "", probe.OTHER_PM: " with another client's payment method"}


@dataclass(frozen=True)
class Change:
    relation: str
    action: str
    payment_case: str
    before: bool
    after: bool
    before_rule: str | None
    after_rule: str | None


def changes(old: PolicySet, new: PolicySet) -> list[Change]:
    """Every (relation, action, payment case) whose decision differs."""
    out = []
    pms = tuple(CASES)
    for a, b in zip(probe.every(old, pms), probe.every(new, pms), strict=True):
        if a.allowed != b.allowed:
            out.append(
                Change(
                    a.relation,
                    a.action,
                    CASES[a.payment_method] if vocabulary.ACTIONS[a.action].payment else "",
                    a.allowed,
                    b.allowed,
                    a.rule.source if a.rule else None,
                    b.rule.source if b.rule else None,
                )
            )
    return out


def store_counts(engine: Engine) -> dict[str, int]:
    """How many holders of each relation the store has now (staff once each, not per client)."""
    counts: Counter[str] = Counter()
    staff: set[str] = set()
    for rel in live.relations(engine):
        if rel.relation in ("provider", "reviewer"):
            staff.add(rel.subject)
        elif rel.relation != "shared_email" or rel.subject < f"client:{rel.owner}":
            counts[rel.relation] += 1  # a shared-email pair counts once, not once per side
    for sub in staff:
        counts[sub.partition(":")[0]] += 1
    return dict(counts)


def summarize(found: list[Change], counts: dict[str, int] | None) -> list[dict[str, Any]]:
    """Changes grouped by relation, direction and payment case, each with a plain sentence."""
    groups: dict[tuple[str, bool, str], list[Change]] = defaultdict(list)
    for c in found:
        groups[(c.relation, c.after, c.payment_case)].append(c)
    order = list(WHO)
    out = []
    for (rel, gains, case), items in sorted(
        groups.items(), key=lambda kv: (order.index(kv[0][0]) if kv[0][0] in order else 99, kv[0])
    ):
        who, unit = WHO.get(rel, (f"holders of {rel}", "holders"))
        actions = sorted(c.action for c in items)
        sentence = f"{who} {'gain' if gains else 'lose'} {', '.join(actions)}{case}"
        affected = None if counts is None else counts.get(rel, 0)
        if affected is not None:
            sentence += f": {affected} {unit} affected in this store"
        out.append(
            {
                "relation": rel,
                "change": "gain" if gains else "lose",
                "payment_case": case.strip() or None,
                "actions": actions,
                "affected": affected,
                "unit": unit,
                "summary": sentence,
                "lines": [
                    f"{c.action}: {c.before_rule or 'no line (default deny)'}"
                    f" → {c.after_rule or 'no line (default deny)'}"
                    for c in sorted(items, key=lambda c: c.action)
                ],
            }
        )
    return out


def band_changes(old: BandTable, new: BandTable, engine: Engine) -> list[dict[str, Any]]:
    """Every live grant on a minor whose age band today differs between two band tables:
    who gains or loses what (policies/adolescents.csv says what the adolescent band takes)."""
    facts, now = engine.facts, engine.now()
    out: list[dict[str, Any]] = []
    for cid in sorted(facts.client_ids()):
        if facts.band(cid, now) is None:
            continue
        i = facts.client_index(cid)
        assert i is not None
        org = facts.org_of(cid)
        jurisdiction = facts.org_jurisdiction[org] if org is not None else None
        birth = facts.birth_date(cid)
        assert birth is not None
        a = old.band(jurisdiction, birth, now.date())
        b = new.band(jurisdiction, birth, now.date())
        if a.name == b.name:
            continue
        for link in facts.grants_as_receiver(cid):
            g = facts.grant(link)
            if not facts.grant_state(link, now).usable and a.name != "adult":
                continue
            if b.name == "adolescent" or (a.name == "child" and b.name == "adult"):
                verb = "loses"
            else:
                verb = "gains"
            took = NARROWS.get("adolescent" if "adolescent" in (a.name, b.name) else "adult")
            out.append(
                {
                    "link_id": g.link_id,
                    "caregiver": g.caregiver,
                    "minor": cid,
                    "before": a.name,
                    "after": b.name,
                    "summary": (
                        f"{facts.name(g.caregiver)} ({g.caregiver}) {verb} access to "
                        f"{facts.name(cid)} ({cid}, {a.age}, {jurisdiction or new.default}) "
                        f"through {g.link_id}: {a.name} → {b.name} band ({took})"
                    ),
                }
            )
    return out
