"""`authz policy explain`: one decision, every rule and grant that took part, and the chain from
the login to the provider who granted access (with the acknowledgement they recorded)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from authz.base.emails import normalize_email
from authz.base.errors import NotFound, ValidationFailed
from authz.compliance.policy_review import adolescence
from authz.policy.engine import CheckRequest, Engine, Resource, Subject
from authz.store import audit
from authz.store.db import Store
from authz.store.models import Link

_RESOURCE = re.compile(
    r"(?P<type>[a-z_]+)(?::(?P<id>[^@#\s]+))?(?:@(?P<owner>[^@#\s]+))?(?:#(?P<labels>[A-Z,]+))?"
)


@dataclass(frozen=True)
class Question:
    login: str | None
    subject: str | None
    acting_as: str | None
    action: str
    resource: str
    payment_method: str | None


def parse_resource(text: str) -> Resource:
    found = _RESOURCE.fullmatch(text.strip())
    if not found:
        raise ValidationFailed(
            [("resource", "must be TYPE:ID[@OWNER][#LABEL,…], e.g. document:doc_1@cli_sam#PSY")],
            f"--resource {text!r} must be TYPE:ID[@OWNER][#LABEL,…], e.g. invoice:inv_9@cli_sam",
        )
    labels = tuple(found["labels"].split(",")) if found["labels"] else ()
    return Resource(found["type"], found["id"], found["owner"], labels)


def _subject(engine: Engine, q: Question) -> tuple[Subject, dict[str, Any] | None]:
    """The subject the engine decides for, and the login step of the chain (if a login)."""
    facts = engine.facts
    if (q.login is None) == (q.subject is None):
        raise ValidationFailed(
            [("login", "give --login EMAIL or --subject S")],
            "give --login EMAIL or --subject S (one of them)",
        )
    target = q.acting_as
    if target is not None and facts.client_index(target) is None:
        raise NotFound(f"--as {target}: no such client")
    if q.subject is not None:
        kind, _, ident = q.subject.partition(":")
        table = {"provider": facts.providers, "reviewer": facts.reviewers}.get(kind)
        known = (
            facts.client_index(ident) is not None
            if kind == "client"
            else (table is not None and ident in table)
        )
        if not known:
            raise NotFound(
                f"--subject {q.subject}: no such client, provider or reviewer "
                "(write client:<id>, provider:<id> or reviewer:<id>)"
            )
        org_index = facts.org_of(ident) if kind == "client" else table[ident][0]  # type: ignore[index]
        assert org_index is not None
        org = facts.org_ids[org_index]
        acting = f"client:{target}" if target and kind == "client" else None
        return Subject.explicit(q.subject, org, acting), None
    assert q.login is not None
    email = normalize_email(q.login, "login")
    if target is None:
        raise ValidationFailed(
            [("as", "is required with --login")], "--as CLIENT is required with --login"
        )
    org_index = facts.org_of(target)
    assert org_index is not None
    org = facts.org_ids[org_index]
    own = list(facts.accounts_with_email(org, email))
    login = {
        "step": "login",
        "id": email,
        "name": email,
        "detail": f"accounts recorded with this email: {', '.join(own) or 'none'}",
    }
    for account in engine.accounts_for_login(org, email):
        if account.client_id != target:
            continue
        if account.via == "delegation" and account.link_id:
            link = facts.link_index(account.link_id)
            assert link is not None
            caregiver = facts.grant(link).caregiver
            return Subject(f"client:{caregiver}", org, target, account.link_id, "delegation"), login
        return Subject(f"client:{target}", org, target, None, "self"), login
    live = [c for c in own if facts.is_active(c)]
    if not live:
        raise NotFound(f"no client account of that organization has the email {email}")
    # Not in the login's Switch Account list: let the engine say why from its first account.
    return Subject(f"client:{live[0]}", org, target, None, "delegation"), login


def explain(store: Store, engine: Engine, q: Question) -> dict[str, Any]:
    facts, now = engine.facts, engine.now()
    subject, login_step = _subject(engine, q)
    resource = parse_resource(q.resource)
    decision = engine.check(CheckRequest(subject, q.action, resource, q.payment_method))
    owner = decision.owner
    kind, _, ident = subject.actor.partition(":")
    held = [p.rel for p in facts.paths(subject.actor, owner, now)] if owner else []
    rules = []
    for rule in engine.policy.rules:
        if rule.act != q.action:
            continue
        if decision.enforced is None:
            matched = "not reached"
        elif rule.eft == "deny":
            matched = "yes: decided" if rule.source in decision.rule else "no"
        elif rule.rel in held:
            matched = "yes: decided" if rule.source in decision.rule else "yes"
        else:
            matched = "no"
        rules.append(
            {
                "line": rule.source,
                "rule": f"p, {rule.rel}, {rule.act}, {rule.eft}",
                "matches": matched,
            }
        )
    chain: list[dict[str, Any]] = [login_step] if login_step else []
    if kind == "client":
        chain.append(
            {
                "step": "account",
                "id": ident,
                "name": facts.name(ident),
                "detail": "the login's own account",
            }
        )
    else:
        chain.append(
            {
                "step": kind,
                "id": ident,
                "name": facts.staff_name(ident),
                "detail": f"{kind} of {facts.org_names[facts.orgs[subject.org]]}",
            }
        )
    grants = []
    if kind == "client" and owner and owner != ident and facts.client_index(owner) is not None:
        link = facts.link_between(ident, owner)
        if link is not None:
            grants.append(_grant(store, engine, link))
            g = grants[-1]
            chain.append(
                {
                    "step": "grant",
                    "id": g["link_id"],
                    "name": g["relationship"],
                    "detail": f"{g['status']}, {g['access_level']} access: {g['state']}"
                    + (f"; review by {g['review_by'][:10]}" if g["review_by"] else ""),
                }
            )
            chain.append(
                {
                    "step": "granted by",
                    "id": g["acknowledged_by"],
                    "name": g["acknowledged_by_name"],
                    "detail": f"on {g['acknowledged_at']}: “{g['acknowledgement']}”",
                }
            )
        elif "shared_email" in held:
            chain.append(
                {
                    "step": "shared email",
                    "id": owner,
                    "name": facts.name(owner),
                    "detail": "both accounts have the same verified email",
                }
            )
    if owner:
        name = facts.name(owner) if facts.client_index(owner) is not None else owner
        chain.append(
            {
                "step": "on account",
                "id": owner,
                "name": name,
                "detail": f"{resource.type} {resource.id or ''}".strip(),
            }
        )
    return {
        "allowed": decision.allowed,
        "decision": "allow" if decision.allowed else "deny",
        "reason": decision.reason,
        "rule": decision.rule,
        "subject": subject.actor,
        "acting_as": subject.account,
        "via": subject.via,
        "action": q.action,
        "resource": {"type": resource.type, "id": resource.id, "owner": owner},
        "payment_method": q.payment_method,
        "relations_held": held,
        "age_band": adolescence.band_view(engine, owner, now) if owner else None,
        "rules": rules,
        "grants": grants,
        "chain": chain,
        "policy_digest": decision.policy_digest,
        "revision": str(decision.revision),
        "at": now.isoformat(),
    }


def _grant(store: Store, engine: Engine, link: int) -> dict[str, Any]:
    facts = engine.facts
    info = facts.grant(link)
    state = facts.grant_state(link, engine.now())
    with store.read() as session:
        row = session.get(Link, info.link_id)
        text = row.acknowledgement if row is not None else None
        at = row.acknowledged_at if row is not None else None
    return {
        "link_id": info.link_id,
        "caregiver": info.caregiver,
        "receiver": info.receiver,
        "relationship": info.relationship,
        "status": info.status,
        "access_level": info.level,
        "state": state.reason,
        "usable": state.usable,
        "expires_at": audit.jsonable(info.expires_at),
        # Re-approved by then, or the grant lapses (policies/recertification.yaml).
        "review_by": audit.jsonable(state.review_by),
        "acknowledged_by": info.acknowledged_by,
        "acknowledged_by_name": facts.staff_name(info.acknowledged_by),
        "acknowledged_at": audit.jsonable(at),
        "acknowledgement": text,
    }
