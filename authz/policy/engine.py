"""Access decisions over `model.conf` + `policies/*.csv`, with reason, rule and decision id.

The files are authoritative. `PolicySet` reads them and compiles the matcher it knows into
per-action tables, so a decision costs a few dictionary lookups whatever the number of grants;
`casbin_enforcer` builds pycasbin's own Enforcer over the same files and the same store-backed
role managers, and tests prove both decide alike. A changed matcher refuses to compile.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import itertools
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from authz.base import clock
from authz.base.errors import AuthzError
from authz.base.principals import VIA, Principal
from authz.policy import delegation, location, vocabulary
from authz.policy.facts import ADOLESCENT_PROXY, FactIndex
from authz.policy.matcher import Decide, Matcher, MatcherError, compile_matcher
from authz.policy.matcher import effect_kind as compile_effect

#: The reviewed files shipped with the package; `AUTHZ_POLICY_DIR` names a deployment's own copy.
MODEL_PATH = location.shipped().model
POLICY_DIR = location.shipped().policies

KNOWN_EFFECT = "some(where (p.eft == allow)) && !some(where (p.eft == deny))"
PM_DENY = "payment_method_of_another_client"
#: What each request field of `model.conf` is filled with (`[request_definition]` may name any
#: of these, in any order): the subject, the resource's owner, the action, the payment method
#: ("" when none), one sensitivity label of the resource ("" when none), its type and id.
REQUEST_FIELDS = ("sub", "owner", "act", "pm", "lbl", "type", "id")
#: The fields every policy line has (the vocabulary and the reasons read them).
POLICY_FIELDS = ("rel", "act", "eft")
#: The role functions the store answers, and their arity: `g(subject, relation, owner)`,
#: `g2(payment method, client)`, `g3(caregiver, label, minor)` (the minor shares that label).
ROLE_ARITY = {"g": 3, "g2": 2, "g3": 3}


def _a(noun: str) -> str:
    """`noun` with its indefinite article (resource types are plain English nouns)."""
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun.replace('_', ' ')}"


class PolicyError(AuthzError):
    """The policy files do not load or do not fit the vocabulary."""

    status = 500
    title = "Policy error"
    slug = "policy"


class Rule(NamedTuple):
    """One policy line, where it lives, and its text."""

    rel: str
    act: str
    eft: str
    source: str

    def __str__(self) -> str:
        return f"{self.source}: p, {self.rel}, {self.act}, {self.eft}"


def read_policy_lines(policy_dir: Path | None = None) -> list[Rule]:
    """Every `p` line of `policies/*.csv` (by default those in force) in file order (comments
    and blank lines skipped)."""
    policy_dir = policy_dir or location.in_force().policies
    rules: list[Rule] = []
    for path in sorted(policy_dir.glob("*.csv")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            parts = [part.strip() for part in text.split(",")]
            if parts[0] != "p" or len(parts) != 4:
                raise PolicyError(f"{path.name}:{number}: expected `p, relation, action, effect`")
            rules.append(Rule(parts[1], parts[2], parts[3], f"policies/{path.name}:{number}"))
    return rules


def files_digest(model_path: Path | None = None, policy_dir: Path | None = None) -> str:
    """The digest of the model and policy files (by default those in force): what every decision
    and change records."""
    if model_path is None or policy_dir is None:
        found = location.in_force()
        model_path, policy_dir = model_path or found.model, policy_dir or found.policies
    digest = hashlib.sha256(model_path.read_bytes())
    for path in location.files_of(policy_dir):
        digest.update(b"\0" + path.name.encode() + b"\0" + path.read_bytes())
    return "sha256:" + digest.hexdigest()


@dataclass(frozen=True)
class PolicySet:
    """The loaded model and policy lines, their digest, and the compiled per-action tables."""

    rules: tuple[Rule, ...]
    digest: str
    model_text: str
    #: The request fields in `model.conf`'s order.
    request_fields: tuple[str, ...]
    matcher: Matcher
    effect: str
    #: Policy lines by the matcher's index value (the whole list under None without an index):
    #: deny lines, then allow lines in the order a decision prefers (vocabulary.RELATIONS).
    deny: dict[str | None, tuple[Rule, ...]]
    allow: dict[str | None, tuple[Rule, ...]]
    #: Where the files were read from (what `GET /v1/policy` serves).
    files: location.Location
    #: Per index value, `deny` and `allow` compiled into one function (`Matcher.decider`):
    #: what a decision runs.
    deciders: dict[str | None, Decide] = field(default_factory=dict)
    #: `build(sub, owner, act, pm, type, id, lbl)` → a Casbin request in `request_fields`' order.
    build_request: Callable[..., tuple[str, ...]] = field(init=False, repr=False, compare=False)

    #: Whether the request is `SHIPPED_REQUEST` (built inline), and where its `pm` is.
    shipped_request: bool = field(init=False, repr=False, compare=False)
    pm_at: int | None = field(init=False, repr=False, compare=False)
    #: The request field the matcher's index reads (`deciders`' keys), if any.
    index_at: int | None = field(init=False, repr=False, compare=False)
    #: `str(rule)` of every line, made once: a decision names the line that decided it.
    rule_text: dict[Rule, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        fields = self.request_fields
        object.__setattr__(self, "build_request", _request_builder(fields))
        object.__setattr__(self, "shipped_request", fields == SHIPPED_REQUEST)
        object.__setattr__(self, "pm_at", fields.index("pm") if "pm" in fields else None)
        index = self.matcher.index
        object.__setattr__(self, "index_at", index[0] if index is not None else None)
        object.__setattr__(self, "rule_text", {rule: str(rule) for rule in self.rules})

    @classmethod
    def load(cls, model_path: Path | None = None, policy_dir: Path | None = None) -> PolicySet:
        """Read and check the files (by default those in force); raise PolicyError with every
        problem found."""
        from casbin.config import Config

        if model_path is None or policy_dir is None:
            found = location.in_force()
            model_path, policy_dir = model_path or found.model, policy_dir or found.policies

        config = Config.new_config(str(model_path))
        problems: list[str] = []
        request = tuple(f.strip() for f in (config.get("request_definition::r") or "").split(","))
        problems += [
            f"request field r.{f} is not one the engine fills ({', '.join(REQUEST_FIELDS)})"
            for f in request
            if f not in REQUEST_FIELDS
        ]
        policy = tuple(f.strip() for f in (config.get("policy_definition::p") or "").split(","))
        if policy != POLICY_FIELDS:
            problems.append(f"the policy definition must be `p = {', '.join(POLICY_FIELDS)}`")
        roles: dict[str, int] = {}
        for name, arity in ROLE_ARITY.items():
            text = config.get(f"role_definition::{name}")
            if text:
                if len(text.split(",")) != arity:
                    problems.append(f"role {name} must take {arity} arguments")
                roles[name] = arity
        matcher = None
        effect = ""
        try:
            effect = compile_effect(config.get("policy_effect::e") or "")
            matcher = compile_matcher(config.get("matchers::m") or "", request, policy, roles)
        except MatcherError as exc:
            problems.append(f"model.conf: {exc.detail}")
        rules = read_policy_lines(policy_dir)
        problems += vocabulary.check_policy_lines([(r.rel, r.act, r.eft) for r in rules])
        if problems or matcher is None:
            raise PolicyError("; ".join(problems))
        rank = {rel: i for i, rel in enumerate(vocabulary.RELATIONS)}
        column = matcher.index[1] if matcher.index is not None else None
        allow: dict[str | None, list[Rule]] = {}
        deny: dict[str | None, list[Rule]] = {}
        for rule in rules:
            key = rule[column] if column is not None else None
            (allow if rule.eft == "allow" else deny).setdefault(key, []).append(rule)
        denies = {k: tuple(v) for k, v in deny.items()}
        allows = {
            k: tuple(sorted(v, key=lambda r: rank.get(r.rel, len(rank)))) for k, v in allow.items()
        }
        return cls(
            tuple(rules),
            files_digest(model_path, policy_dir),
            model_path.read_text(),
            request,
            matcher,
            effect,
            denies,
            allows,
            location.Location(model_path, policy_dir),
            {
                key: matcher.decider(
                    denies.get(key, ()) if effect == "allow_unless_denied" else (),
                    allows.get(key, ()),
                    HELD,
                )
                for key in denies.keys() | allows.keys()
            },
        )


# -- requests and answers -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subject:
    """Who asks: `actor` is the human's account (`client:…`, `provider:…`, `reviewer:…`),
    `account` the client acted as (a delegated token's `sub`), `grant` the delegation's link."""

    actor: str
    org: str
    account: str | None = None
    grant: str | None = None
    via: str = "self"
    scopes: frozenset[str] | None = None

    @classmethod
    def from_principal(cls, principal: Principal) -> Subject:
        """The subject of a verified access token."""
        scopes = frozenset(s for s in principal.scopes if s in vocabulary.SCOPES)
        if principal.kind != "client":
            return cls(f"{principal.kind}:{principal.id}", principal.org_id, via=principal.via)
        # A delegated or toggled token names the login's own account that acts in `act`.
        actor = (
            principal.actor
            if principal.via in ("delegation", "shared_email") and principal.actor
            else (f"client:{principal.id}")
        )
        return cls(
            actor, principal.org_id, principal.id, principal.grant, principal.via, scopes or None
        )

    @classmethod
    def explicit(cls, subject: str, org: str, acting_as: str | None = None) -> Subject:
        """`subject` + `acting_as` from a caller with `authz:check:subjects`."""
        kind, _, ident = subject.partition(":")
        own = ident if kind == "client" else None
        account = acting_as.partition(":")[2] if acting_as else own
        via = "delegation" if account and kind == "client" and account != ident else "self"
        return cls(subject, org, account, None, via)


# Requests and decisions are named tuples: as immutable as frozen dataclasses and built five
# times faster, which counts at a thousand of each per check-batch.


class Resource(NamedTuple):
    type: str
    id: str | None = None
    owner: str | None = None
    #: Sensitivity labels (HL7 confidentiality codes, `vocabulary.LABELS`).
    labels: tuple[str, ...] = ()


class CheckRequest(NamedTuple):
    subject: Subject
    action: str
    resource: Resource
    payment_method: str | None = None


class Decision(NamedTuple):
    """The answer, and what the decision log records (never a token)."""

    allowed: bool
    decision_id: str
    reason: str
    rule: str
    revision: int
    at: dt.datetime
    request: CheckRequest
    owner: str | None
    policy_digest: str
    #: The Casbin request (model.conf's request fields) that decided, when the decision
    #: reached the policy lines.
    enforced: tuple[str, ...] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The contract's JSON answer."""
        return {
            "allowed": self.allowed,
            "decision_id": self.decision_id,
            "reason": self.reason,
            "rule": self.rule,
            "revision": str(self.revision),
        }


@dataclass(frozen=True)
class Account:
    """One entry of the Switch Account list."""

    client_id: str
    name: str
    via: str
    link_id: str | None = None
    access_level: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "name": self.name,
            "via": self.via,
            "link_id": self.link_id,
            "access_level": self.access_level,
        }


@dataclass(frozen=True)
class Access:
    """One path to a client in the compliance view."""

    subject: str
    relation: str
    link_id: str | None = None
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "relation": self.relation,
            "link_id": self.link_id,
            "reason": self.reason,
        }


#: The owner and the Casbin requests to enforce (one per label of the resource, or one).
_Prepared = tuple[str, tuple[tuple[str, ...], ...]]
#: Allowed, reason, rule and the Casbin request that decided.
_Answer = tuple[bool, str, str, tuple[str, ...]]
#: A batch's answers: (subject, prepared requests) → answer. The requests carry the action,
#: which fixes the resource type (`_prepare` refuses any other), so the pair is the question.
Answers = dict[tuple["Subject", _Prepared], _Answer]


#: The relations `g` does not answer from the paths alone (`Engine._decider_roles`): every
#: other `g(a, "rel", b)` in a matcher is `"rel" in g.held(a, b, now)`.
HELD = {"g": frozenset({ADOLESCENT_PROXY})}

#: `model.conf`'s request as shipped: `_prepare` builds it without the compiled builder.
SHIPPED_REQUEST = ("sub", "owner", "act", "pm", "lbl")

#: The label of a request on an unlabelled resource (`r.lbl == ""`).
_NO_LABEL = ("",)


@functools.cache
def _request_builder(fields: tuple[str, ...]) -> Callable[..., tuple[str, ...]]:
    """`build(sub, owner, act, pm, type, id, lbl)` → the Casbin request in `fields`' order,
    compiled once per model: a check builds one for each label, and a loop over the field
    names costs more than the rest of the preparation."""
    assert set(fields) <= set(REQUEST_FIELDS)  # names PolicySet.load accepted, nothing else
    code = compile(
        f"lambda sub, owner, act, pm, type, id, lbl: ({', '.join(fields)},)",
        "<request fields>",
        "eval",
    )
    return eval(code, {"__builtins__": {}})  # type: ignore[no-any-return]  # noqa: S307


class _Denied(NamedTuple):
    reason: str
    rule: str
    owner: str | None


class _Ids:
    """`dec_<process prefix><counter>`: unique across workers without a syscall per decision."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.prefix = "dec_" + secrets.token_hex(6)
        self.counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.counter):010x}"


_new_id = _Ids()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_id.reset)


# -- the engine -----------------------------------------------------------------------------


@dataclass
class Engine:
    """Decides checks over one `PolicySet` and one `FactIndex`; `log` receives every decision."""

    policy: PolicySet
    facts: FactIndex
    log: Callable[[Decision], None] | None = None
    now: Callable[[], dt.datetime] = field(default=clock.now)
    #: `_decider_roles()` and the facts they answer from.
    _roles: tuple[FactIndex, dict[str, Callable[..., Any]]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def check(
        self,
        request: CheckRequest,
        now: dt.datetime | None = None,
        memo: Answers | None = None,
    ) -> Decision:
        """One decision (the facts as they are; call `ensure_fresh` first for consistency).

        `now` and `memo` are a batch's: one moment for all its checks, and the answers to the
        policy questions it already asked (the same subject and Casbin request always get the
        same answer over one view of the facts)."""
        if now is None:
            now = self.now()
        prepared = self._prepare(request)
        enforced: tuple[str, ...] | None = None
        if isinstance(prepared, _Denied):
            allowed, (reason, rule, owner) = False, prepared
        else:
            owner = prepared[0]
            if memo is None:
                allowed, reason, rule, enforced = self._answer(request, prepared, now)
            else:
                key = (request.subject, prepared)
                found = memo.get(key)
                if found is None:
                    found = memo[key] = self._answer(request, prepared, now)
                allowed, reason, rule, enforced = found
        decision = Decision(
            allowed,
            _new_id(),
            reason,
            rule,
            self.facts.revision,
            now,
            request,
            owner,
            self.policy.digest,
            enforced,
        )
        if self.log is not None:
            self.log(decision)
        return decision

    def _answer(self, request: CheckRequest, prepared: _Prepared, now: dt.datetime) -> _Answer:
        """Allowed, reason, rule and the Casbin request that decided, for a request that
        reached the policy lines: one Casbin request per label of the resource, all allowed."""
        owner, asked = prepared
        act = request.action
        found: Rule | None = None
        for enforced in asked:
            allowed, found = self._evaluate(enforced, now)
            if found is None:
                rule = f"model.conf [policy_effect]: no allow line of {act} matches (default deny)"
                return False, self._why_not(request.subject, owner, act, now), rule, enforced
            if not allowed:
                if found.rel == PM_DENY:  # the usual deny line, its reason without detours
                    at = self.policy.pm_at
                    pm = enforced[at] if at is not None else self._pm(request)
                    reason = self._pm_reason(pm, owner, request.resource.type)
                else:
                    reason = self._deny_reason(request, found, owner, enforced, now)
                return False, reason, self.policy.rule_text.get(found) or str(found), enforced
        assert found is not None  # every label's request found an allow line
        text = self.policy.rule_text.get(found) or str(found)
        return True, self._why(request.subject, owner, found, now), text, enforced

    def deny(self, request: CheckRequest, reason: str, rule: str) -> Decision:
        """A logged denial decided before any policy line, for a reason found outside the
        facts (the user's token failed verification or is no longer good): the answer and the
        decision log say why, as for every other decision."""
        res = request.resource
        owner = res.id if res.type == "client" and res.id else res.owner
        decision = Decision(
            False,
            _new_id(),
            reason,
            rule,
            self.facts.revision,
            self.now(),
            request,
            owner,
            self.policy.digest,
        )
        if self.log is not None:
            self.log(decision)
        return decision

    def check_batch(self, requests: Sequence[CheckRequest]) -> list[Decision]:
        """Decisions in the order asked, at one moment, each policy question answered once."""
        now = self.now()
        memo: Answers = {}
        return [self.check(r, now, memo) for r in requests]

    def evaluate(self, *request: str, now: dt.datetime | None = None) -> tuple[bool, Rule | None]:
        """Exactly Casbin's `enforce(*request)` over the compiled matcher: (allowed, the deny
        line that matched, else the allow line that matched, else None)."""
        return self._evaluate(request, now or self.now())

    def _evaluate(self, request: tuple[str, ...], now: dt.datetime) -> tuple[bool, Rule | None]:
        policy = self.policy
        at = policy.index_at
        decide = policy.deciders.get(request[at] if at is not None else None)
        if decide is None:  # no line is filed under the request's index value
            return False, None
        # The same answer as `matcher.test(request, rule, roles)` line by line, deny lines
        # first (allow-unless-denied), without re-deciding each line's constants.
        made = self._roles
        if made is None or made[0] is not self.facts:
            made = self._roles = (self.facts, self._decider_roles())
        return decide(request, made[1], now)

    def _decider_roles(self) -> dict[str, Callable[..., Any]]:
        """The role functions of `PolicySet.deciders` over these facts (`HELD`): made once,
        since the moment is an argument and a decision holds its own sets."""
        facts = self.facts

        def g_given(held: frozenset[str], sub: str, rel: str, owner: str, now: dt.datetime) -> bool:
            # `rel in facts.relations(sub, owner, now)`, given the paths' relations.
            if rel in held:
                return True
            return rel == ADOLESCENT_PROXY and facts.proxy_of_adolescent(held, owner, now)

        def g3(caregiver: str, label: str, minor: str) -> bool:
            return facts.shares(minor, caregiver, label)

        return {
            "g.held": facts.path_relations,
            "g.given": g_given,
            "g2": facts.pm_belongs,
            "g3": g3,
        }

    # -- the decision, step by step ----------------------------------------------------------

    def _prepare(self, req: CheckRequest) -> _Denied | _Prepared:
        """Either a denial before any policy line, or the Casbin request to enforce."""
        facts, subject, res = self.facts, req.subject, req.resource
        action = vocabulary.ACTIONS.get(req.action)
        if action is None:
            return _Denied(f"unknown action {req.action!r}", "vocabulary: unknown action", None)
        rtype = vocabulary.RESOURCE_TYPES.get(res.type)
        if rtype is None:
            return _Denied(f"unknown resource type {res.type!r}", "vocabulary: unknown type", None)
        if action.resource_type != res.type:
            return _Denied(
                f"{req.action} applies to {_a(action.resource_type)}, not {_a(res.type)}",
                "vocabulary: action and resource type differ",
                None,
            )
        kind, _, ident = subject.actor.partition(":")
        if kind not in ("client", "provider", "reviewer"):
            return _Denied(
                f"{kind or 'this subject'} accounts never get access",
                "model.conf: only clients, providers and reviewers hold relations",
                None,
            )
        if subject.via not in VIA:
            return _Denied(f"unknown authz_via {subject.via!r}", "token: authz_via", None)
        owner = self._owner(req, rtype.owner)
        if owner is None:
            return _Denied(f"the {res.type} has no owner to decide on", "request: owner", None)
        if res.type == "client" and res.id is not None and res.owner not in (None, res.id):
            return _Denied(f"client {res.id} is its own owner, not {res.owner}", "request", owner)
        org = facts.orgs.get(subject.org)
        if org is None or facts.org_of(owner) != org:
            return _Denied(
                f"{owner} is not in organization {subject.org}",
                "organization boundary: nothing crosses organizations",
                owner,
            )
        if res.type == "grant" and res.id is not None:
            link = facts.link_index(res.id)
            info = facts.grant(link) if link is not None else None
            if info is None or owner not in (info.receiver, info.caregiver):
                return _Denied(f"{res.id} is not a grant of {owner}", "request: grant", owner)
        if subject.account is not None and owner != subject.account:
            # A client's token acts on its own `sub` account and nothing else: acting for
            # another account takes the token Switch Account issues for it, whose `act` and
            # narrowed scope then apply (API.md, "Access decisions").
            if subject.account != ident:
                return _Denied(
                    f"acting as {facts.name(subject.account)}, only that account is "
                    f"in reach, not {owner}",
                    "delegation: one account",
                    owner,
                )
            return _Denied(
                f"this token acts for {facts.name(subject.account)} only; acting for {owner} "
                "takes the token Switch Account issues for that account",
                "token: one account",
                owner,
            )
        if subject.grant is not None and subject.account != ident:
            link = facts.link_between(ident, owner)
            if link is None or facts.l_id[link] != subject.grant:
                return _Denied(
                    f"the token's grant {subject.grant} no longer links them",
                    "delegation: grant",
                    owner,
                )
        if subject.scopes is not None and action.scope not in subject.scopes:
            return _Denied(
                f"the token's scope does not include {action.scope or req.action}",
                "token: scope",
                owner,
            )
        labels: Sequence[str] = _NO_LABEL
        if res.labels:
            for label in res.labels:
                if label not in vocabulary.LABELS:
                    return _Denied(
                        f"unknown sensitivity label {label!r}", "vocabulary: unknown label", owner
                    )
            labels = sorted(set(res.labels))
        pm = ""
        if action.payment == "resource":
            pm = res.id or ""
        elif action.payment == "context":
            pm = req.payment_method or ""
        if labels is _NO_LABEL:  # most checks: one request, no loop
            if self.policy.shipped_request:
                return owner, ((subject.actor, owner, req.action, pm, ""),)
            build = self.policy.build_request
            return owner, (build(subject.actor, owner, req.action, pm, res.type, res.id or "", ""),)
        build, rid = self.policy.build_request, res.id or ""
        return owner, tuple(
            build(subject.actor, owner, req.action, pm, res.type, rid, label) for label in labels
        )

    @staticmethod
    def _pm(req: CheckRequest) -> str:
        action = vocabulary.ACTIONS[req.action]
        if action.payment == "resource":
            return req.resource.id or ""
        if action.payment == "context":
            return req.payment_method or ""
        return ""

    def _owner(self, req: CheckRequest, kind: vocabulary.Owner) -> str | None:
        res, subject = req.resource, req.subject
        if res.type == "client":
            return res.id or res.owner or subject.account
        if res.owner:
            return res.owner
        if kind is vocabulary.Owner.ORG:
            return subject.org
        if res.type == "grant" and res.id:
            link = self.facts.link_index(res.id)
            return self.facts.grant(link).receiver if link is not None else None
        return subject.account

    def _why(self, subject: Subject, owner: str, rule: Rule, now: dt.datetime) -> str:
        facts = self.facts
        _kind, _, ident = subject.actor.partition(":")
        if rule.rel == "self":
            return f"{facts.name(owner)} ({owner}) acts on their own account"
        if rule.rel == "shared_email":
            return (
                f"{facts.name(ident)}'s login proved the email that "
                f"{facts.name(owner)}'s account ({owner}) is recorded with"
            )
        if rule.rel.startswith(vocabulary.CAREGIVER_PREFIX):
            link = facts.link_between(ident, owner)
            if link is None:  # a lone rule from a model outside the shipped files
                return f"{facts.name(ident)} holds {rule.rel} on {facts.name(owner)}"
            assert link is not None
            link_id, relationship, access, by, day = facts.grant_terms(link)
            level = "" if access == "full" else f" with {access} access"
            granted = f", granted by {facts.staff_name(by)}"
            if day:
                granted += f" on {day.isoformat()}"
            return (
                f"{relationship.replace('_', ' ')} {facts.name(ident)} acts for "
                f"{facts.name(owner)} through link {link_id}{level}{granted}"
            )
        org_name = facts.org_names[facts.orgs[subject.org]]
        if rule.rel == "provider":
            return f"provider {facts.staff_name(ident)} manages the clients of {org_name}"
        return f"reviewer {facts.staff_name(ident)} reads {org_name}'s records (read-only)"

    def _why_not(self, subject: Subject, owner: str, action: str, now: dt.datetime) -> str:
        facts = self.facts
        kind, _, ident = subject.actor.partition(":")
        who = f"{kind} {facts.staff_name(ident) if kind != 'client' else facts.name(ident)}"
        paths = facts.paths(subject.actor, owner, now)
        if paths:
            held = ", ".join(p.rel.replace("_", " ") for p in paths)
            return (
                f"{who} holds {held} on {facts.name(owner)}'s account, which does not "
                f"allow {action}"
            )
        if kind == "client":
            if facts.client_index(ident) is None:
                return f"{subject.actor} is not a known client"
            if not facts.is_active(ident):
                return f"{who}'s account is deactivated"
            if not facts.is_active(owner) and facts.client_index(owner) is not None:
                return f"{facts.name(owner)}'s account ({owner}) is deactivated"
            link = facts.link_between(ident, owner)
            if link is not None:
                state = facts.grant_state(link, now)
                return (
                    f"{who} has no usable grant on {owner}: link {facts.l_id[link]}: {state.reason}"
                )
            return (
                f"{who} is not {facts.name(owner)}, shares no email with that account and holds "
                f"no active grant on it ({owner})"
            )
        return f"{who} holds no relation on {owner}"

    def _deny_reason(
        self,
        request: CheckRequest,
        rule: Rule,
        owner: str,
        enforced: tuple[str, ...],
        now: dt.datetime,
    ) -> str:
        """Why a deny line other than the payment method's matched (`_answer` words that)."""
        band = self.facts.band(owner, now)
        fields = self.policy.request_fields
        label = enforced[fields.index("lbl")] if "lbl" in fields else ""
        who = f"{self.facts.name(owner)} ({owner})"
        if band is not None and rule.rel in ("adolescent_proxy", "adolescent_confidential"):
            where = f"{who} is {band.age}, in {band.describe()}"
            if rule.rel == "adolescent_confidential":
                return (
                    f"{where}: a caregiver does not see {label}-labelled records "
                    f"({vocabulary.LABELS.get(label, label)}) unless the minor shares them"
                )
            return f"{where}: a caregiver has no {request.action} on the minor's account"
        return f"a deny line matched for {who}: {rule}"

    def _pm_reason(self, pm: str, owner: str, rtype: str) -> str:
        if not pm:
            return "no payment method was given; one of the owner's own is needed"
        whose = "invoice" if rtype == "invoice" else "account"
        return (
            f"payment method {pm} does not belong to {self.facts.name(owner)} ({owner}), "
            f"whose {whose} this is: a payment method is only ever used for its own client"
        )

    # -- listings that agree with `check` ------------------------------------------------------

    def accounts(self, subject: Subject) -> list[Account]:
        """Every client account `subject` may act as, and how (the Switch Account list):
        `authz.policy.delegation.reachable` from the login's own account."""
        facts = self.facts
        kind, _, ident = subject.actor.partition(":")
        if kind != "client" or subject.via == "delegation":
            # A delegated token switches back to the caregiver's own account only.
            return (
                [Account(ident, facts.name(ident), "self")]
                if kind == "client" and facts.has_relation(subject.actor, "self", ident)
                else []
            )
        return self._accounts_of(ident)

    def accounts_for_login(self, org_id: str, email: str) -> list[Account]:
        """Every account a login with this verified email may act as: the same list as a
        token of any of its accounts gives, each of its own accounts as `self`."""
        for cid in self.facts.accounts_with_email(org_id, email):
            if self.facts.is_active(cid):
                return [
                    dataclasses.replace(a, via="self") if a.via == "shared_email" else a
                    for a in self._accounts_of(cid)
                ]
        return []

    def _accounts_of(self, cid: str) -> list[Account]:
        facts = self.facts
        out: list[Account] = []
        for found in delegation.reachable(facts, cid, self.now()):
            if found.link < 0:
                out.append(Account(found.client_id, facts.name(found.client_id), found.via))
            else:
                g = facts.grant(found.link)
                out.append(
                    Account(g.receiver, facts.name(g.receiver), "delegation", g.link_id, g.level)
                )
        return out

    def who_can(self, org_id: str, client_id: str) -> list[Access]:
        """Every subject with a relation on `client_id`, and the grant behind each."""
        facts, now = self.facts, self.now()
        org = facts.orgs.get(org_id)
        if org is None or facts.org_of(client_id) != org or facts.client_index(client_id) is None:
            return []
        candidates = [f"client:{client_id}"]
        candidates += [f"client:{c}" for c in facts.shared_email_accounts(client_id)]
        candidates += [
            f"client:{facts.grant(link).caregiver}" for link in facts.grants_as_receiver(client_id)
        ]
        candidates += facts.staff_of(org_id)
        out: list[Access] = []
        for sub in dict.fromkeys(candidates):
            for path in facts.paths(sub, client_id, now):
                link_id = facts.l_id[path.link] if path.link >= 0 else None
                rule = Rule(path.rel, "", "allow", "")
                out.append(
                    Access(
                        sub,
                        path.rel,
                        link_id,
                        self._why(Subject(sub, org_id), client_id, rule, now),
                    )
                )
        return out


# -- pycasbin over the same files and facts ----------------------------------------------------


class StoreRoleManager:
    """pycasbin role manager for `g`: relations from the `FactIndex`, never copied."""

    def __init__(self, facts: FactIndex, now: Callable[[], dt.datetime] = clock.now) -> None:
        self.facts, self.now = facts, now

    def has_link(self, name1: str, name2: str, *domain: str) -> bool:
        return bool(domain) and self.facts.has_relation(name1, name2, domain[0], self.now())

    def clear(self) -> None:
        """Nothing to clear: the facts live in the store."""

    def add_link(self, *args: str) -> None:
        raise PolicyError("relations come from the store, not from g lines")

    delete_link = add_link

    def get_roles(self, name: str, *domain: str) -> list[str]:
        return [p.rel for p in self.facts.paths(name, domain[0], self.now())] if domain else []

    def get_users(self, name: str, *domain: str) -> list[str]:
        return []

    def print_roles(self) -> None:
        """Nothing to print."""


class OwnershipRoleManager(StoreRoleManager):
    """pycasbin role manager for `g2`: payment-method ownership from the `FactIndex`."""

    def has_link(self, name1: str, name2: str, *domain: str) -> bool:
        return self.facts.pm_belongs(name1, name2)


class ConsentRoleManager(StoreRoleManager):
    """pycasbin role manager for `g3`: the labels a minor shares with a caregiver."""

    def has_link(self, name1: str, name2: str, *domain: str) -> bool:
        return bool(domain) and self.facts.shares(domain[0], name1, name2)


def casbin_enforcer(
    facts: FactIndex,
    policy_dir: Path | None = None,
    model_path: Path | None = None,
    now: Callable[[], dt.datetime] = clock.now,
) -> Any:
    """pycasbin's Enforcer over the same files (by default those in force), with the
    store-backed role managers."""
    import casbin
    from casbin import persist

    if model_path is None or policy_dir is None:
        found = location.in_force()
        model_path, policy_dir = model_path or found.model, policy_dir or found.policies
    folder: Path = policy_dir

    class FilesAdapter(persist.Adapter):  # type: ignore[misc]
        def load_policy(self, model: Any) -> None:
            for path in sorted(folder.glob("*.csv")):
                for line in path.read_text().splitlines():
                    persist.load_policy_line(line.strip(), model)

    enforcer = casbin.Enforcer(str(model_path), FilesAdapter())
    managers = {
        "g": StoreRoleManager(facts, now),
        "g2": OwnershipRoleManager(facts, now),
        "g3": ConsentRoleManager(facts, now),
    }
    for name, rm in managers.items():
        if name in enforcer.get_model()["g"]:
            enforcer.set_named_role_manager(name, rm)
            enforcer.get_model()["g"][name].rm = rm
    return enforcer
