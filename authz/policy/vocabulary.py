"""The one catalogue of resource types and actions (`<resource type>.<verb>`).

`policies/*.csv` may only name actions listed here, and every action here must be decided by at
least one policy line (`check_policy_lines` proves both; `authz policy check` runs it).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import StrEnum

from authz.policy.grants import CLIENT_SCOPES


class Owner(StrEnum):
    """What a resource's `owner` is."""

    CLIENT = "client"
    ORG = "organization"


@dataclass(frozen=True)
class ResourceType:
    """A kind of resource, and what its `owner` names."""

    name: str
    owner: Owner


@dataclass(frozen=True)
class Action:
    """`<resource type>.<verb>`; `scope` is the client scope it needs, `payment` where the
    payment method to check comes from (`resource` id, `context`, or None)."""

    name: str
    scope: str | None = None
    payment: str | None = None

    @functools.cached_property
    def resource_type(self) -> str:
        """The resource type the action applies to (read on every check, so kept)."""
        return self.name.partition(".")[0]


RESOURCE_TYPES: dict[str, ResourceType] = {
    rt.name: rt
    for rt in (
        ResourceType("appointment", Owner.CLIENT),
        ResourceType("audit", Owner.CLIENT),
        ResourceType("client", Owner.CLIENT),
        ResourceType("contact", Owner.CLIENT),
        ResourceType("decision", Owner.ORG),
        ResourceType("document", Owner.CLIENT),
        ResourceType("form", Owner.CLIENT),
        ResourceType("grant", Owner.CLIENT),
        ResourceType("invoice", Owner.CLIENT),
        ResourceType("link", Owner.CLIENT),
        ResourceType("message", Owner.CLIENT),
        ResourceType("payment_method", Owner.CLIENT),
        ResourceType("policy", Owner.ORG),
    )
}

# NOTE: alphabetized; a name not listed here is an unknown action and is always denied.
ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        Action("appointment.book", "appointments"),
        Action("appointment.cancel", "appointments"),
        Action("appointment.list", "appointments"),
        Action("appointment.read", "appointments"),
        Action("audit.read"),
        Action("client.read", "profile"),
        Action("client.update", "profile"),
        Action("contact.create"),
        Action("contact.delete"),
        Action("contact.list", "profile"),
        Action("contact.read", "profile"),
        Action("contact.update"),
        Action("decision.read"),
        Action("document.list", "documents"),
        Action("document.read", "documents"),
        Action("document.upload", "documents"),
        Action("form.list", "forms"),
        Action("form.read", "forms"),
        Action("form.submit", "forms"),
        Action("grant.list", "profile"),
        Action("grant.read", "profile"),
        Action("grant.revoke"),
        Action("invoice.list", "billing"),
        Action("invoice.pay", "billing", payment="context"),
        Action("invoice.read", "billing"),
        Action("link.create"),
        Action("link.delete"),
        Action("link.list", "profile"),
        Action("link.read", "profile"),
        Action("link.update"),
        Action("message.list", "messages"),
        Action("message.read", "messages"),
        Action("message.send", "messages"),
        Action("payment_method.charge", "billing", payment="resource"),
        Action("payment_method.list", "billing"),
        Action("payment_method.read", "billing", payment="resource"),
        Action("payment_method.register"),
        Action("payment_method.use", "billing", payment="resource"),
        Action("policy.read"),
    )
}

#: The relations (`g` roles) a subject can hold on an owner; the store-backed role manager
#: answers them. Order is the order a decision prefers when several hold.
RELATIONS = (
    "self",
    "shared_email",
    "caregiver_full",
    "caregiver_billing",
    "caregiver_scheduling",
    "provider",
    "reviewer",
)
CAREGIVER_PREFIX = "caregiver_"
#: Relations of explicit deny lines (`p, <relation>, <action>, deny`): a payment method of
#: another client; a caregiver of a minor in the adolescent band (`adolescent_proxy`, on every
#: resource of the action); the same on a sensitivity-labelled resource the minor has not
#: shared with them (`adolescent_confidential`).
DENY_RELATIONS = ("payment_method_of_another_client", "adolescent_proxy", "adolescent_confidential")
#: Sensitivity labels a resource may carry: HL7 v3 ActCode information-sensitivity codes
#: (code system 2.16.840.1.113883.5.4), with what each covers.
LABELS: dict[str, str] = {
    "ETH": "substance abuse information (42 CFR Part 2)",
    "HIV": "HIV/AIDS information",
    "PSY": "psychiatry information",
    "SDV": "sexual assault, abuse or domestic violence information",
    "SEX": "sexuality and reproductive health information",
    "STD": "sexually transmitted disease information",
    "MH": "mental health information",
    "SUD": "substance use disorder information",
}
#: Client scopes, re-exported so that callers need one import.
SCOPES = CLIENT_SCOPES


def action(name: str) -> Action | None:
    """The catalogued action, or None for anything unknown."""
    return ACTIONS.get(name)


def check_policy_lines(lines: list[tuple[str, str, str]]) -> list[str]:
    """Problems with `(relation, action, effect)` policy lines; empty when they fit."""
    problems: list[str] = []
    decided: set[str] = set()
    for rel, act, eft in lines:
        if act not in ACTIONS:
            problems.append(f"unknown action {act!r} (not in authz/policy/vocabulary.py)")
        if eft not in ("allow", "deny"):
            problems.append(f"effect of {rel}, {act} must be allow or deny, not {eft!r}")
        known = DENY_RELATIONS if eft == "deny" else RELATIONS
        if rel not in known:
            problems.append(f"unknown relation {rel!r} on a {eft} line for {act}")
        if eft == "allow":
            decided.add(act)
    problems.extend(
        f"action {name} is in the vocabulary but no policy line allows it"
        for name in ACTIONS
        if name not in decided
    )
    return problems
