"""`authz policy check`: the model and policies load, fit the vocabulary, keep payment methods
with their client, and every line can decide something.

The payment and reachability checks evaluate the files with the engine over the probe world
(`probe.py`) instead of reading their text, so a rule is judged by what it decides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from authz.compliance.policy_review.sources import POLICIES_NAME, PolicyFiles, snapshot
from authz.policy import location, probe, recertification, vocabulary
from authz.policy.engine import (
    PM_DENY,
    POLICY_FIELDS,
    REQUEST_FIELDS,
    ROLE_ARITY,
    PolicyError,
    PolicySet,
    casbin_enforcer,
)
from authz.policy.matcher import MatcherError, compile_matcher, effect_kind

VOCABULARY_FILE = Path(vocabulary.__file__)


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return (
            f"{self.file}:{self.line}: {self.reason}"
            if self.line
            else f"{self.file}: {self.reason}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "reason": self.reason}


@dataclass(frozen=True)
class Line:
    """One `p` line as written, and where."""

    file: str
    number: int
    rel: str
    act: str
    eft: str

    @property
    def where(self) -> str:
        return f"{self.file}:{self.number}"

    @property
    def key(self) -> tuple[str, int]:
        return (Path(self.file).name, self.number)


def check(files: PolicyFiles) -> dict[str, Any]:
    """Every problem found, and what was checked."""
    problems: list[Problem] = []
    model_ok = _check_model(files, problems)
    lines, texts = _read_lines(files, problems)
    problems += _check_vocabulary(lines)
    problems += _duplicates(lines)
    digest = None
    good = {ln.key for ln in lines if not _line_problems(ln)}
    if model_ok and files.policies.is_dir():
        # Lines that cannot load are blanked, keeping the numbers, so the rest is still judged.
        kept = {name: _keep(text, name, good) for name, text in texts.items()}
        tables = _tables(files, problems)
        model = files.model.read_text(encoding="utf-8")
        with snapshot({"model.conf": model, **kept, **tables}) as copy:
            try:
                policy = PolicySet.load(copy.model, copy.policies)
            except PolicyError as exc:
                problems.append(Problem(files.display(files.model), 0, exc.detail))
            else:
                digest = policy.digest
                where = {ln.key: ln.where for ln in lines}
                problems += _check_payments(policy, copy, lines, where, files)
                problems += _check_reachable(policy, lines, where)
    unique = sorted(set(problems))
    return {
        "ok": not unique,
        "model": files.display(files.model),
        "policies": files.display(files.policies),
        "rules": len(lines),
        "digest": digest if not unique else None,
        "problems": [p.as_dict() for p in unique],
        "lines": [str(p) for p in unique],
    }


# -- the model --------------------------------------------------------------------------------


def _check_model(files: PolicyFiles, problems: list[Problem]) -> bool:
    from casbin.config import Config

    shown = files.display(files.model)
    if not files.model.is_file():
        problems.append(Problem(shown, 0, "no such model file"))
        return False
    text = files.model.read_text(encoding="utf-8")
    try:
        config = Config.new_config_from_text(text)
    except Exception as exc:  # pycasbin raises bare RuntimeErrors for syntax
        found = re.search(r"line (\d+)", str(exc))
        problems.append(
            Problem(shown, int(found.group(1)) if found else 0, f"does not parse: {exc}")
        )
        return False
    wrong: list[tuple[str, str, str]] = []
    request = [f.strip() for f in (config.get("request_definition::r") or "").split(",")]
    policy = [f.strip() for f in (config.get("policy_definition::p") or "").split(",")]
    wrong += [
        (
            "request_definition",
            "r",
            f"r.{f} is not a field the engine fills ({', '.join(REQUEST_FIELDS)})",
        )
        for f in request
        if f not in REQUEST_FIELDS
    ]
    if tuple(policy) != POLICY_FIELDS:
        wrong.append(("policy_definition", "p", f"must be `p = {', '.join(POLICY_FIELDS)}`"))
    roles = {}
    for name, arity in ROLE_ARITY.items():
        got = config.get(f"role_definition::{name}")
        if got:
            roles[name] = arity
            if len(got.split(",")) != arity:
                wrong.append(("role_definition", name, f"{name} takes {arity} arguments"))
    try:
        effect_kind(config.get("policy_effect::e") or "")
    except MatcherError as exc:
        wrong.append(("policy_effect", "e", exc.detail))
    try:
        compile_matcher(config.get("matchers::m") or "", request, policy, roles)
    except MatcherError as exc:
        wrong.append(("matchers", "m", exc.detail))
    for section, name, why in wrong:
        problems.append(
            Problem(
                shown,
                _line_of(text, rf"^\s*{name}\s*=") or _line_of(text, rf"^\[{section}\]"),
                f"[{section}] {name}: {why}",
            )
        )
    return not wrong


def _line_of(text: str, pattern: str) -> int:
    for number, line in enumerate(text.splitlines(), 1):
        if re.search(pattern, line):
            return number
    return 0


# -- the lines --------------------------------------------------------------------------------


def _read_lines(files: PolicyFiles, problems: list[Problem]) -> tuple[list[Line], dict[str, str]]:
    lines: list[Line] = []
    texts: dict[str, str] = {}
    if not files.policies.is_dir():
        problems.append(Problem(files.display(files.policies), 0, "no such policy folder"))
        return lines, texts
    paths = sorted(files.policies.glob("*.csv"))
    if not paths:
        problems.append(Problem(files.display(files.policies), 0, "no *.csv policy files"))
    for path in paths:
        shown = files.display(path)
        text = texts[f"{POLICIES_NAME}/{path.name}"] = path.read_text(encoding="utf-8")
        for number, raw in enumerate(text.splitlines(), 1):
            stripped = raw.strip()
            if not stripped or stripped.startswith("#"):
                continue
            parts = [part.strip() for part in stripped.split(",")]
            if parts[0] in ("g", "g2"):
                problems.append(
                    Problem(
                        shown,
                        number,
                        f"a {parts[0]} line: relations come from the store (see `authz grants "
                        "export`), never from policies/",
                    )
                )
            elif parts[0] != "p" or len(parts) != 4 or not all(parts):
                problems.append(Problem(shown, number, "expected `p, relation, action, effect`"))
            else:
                lines.append(Line(shown, number, parts[1], parts[2], parts[3]))
    return lines, texts


def _line_problems(line: Line) -> list[str]:
    """The vocabulary's own verdict on one line, without the verdicts about the whole set."""
    whole = set(vocabulary.check_policy_lines([]))
    found = [
        p for p in vocabulary.check_policy_lines([(line.rel, line.act, line.eft)]) if p not in whole
    ]
    act = vocabulary.ACTIONS.get(line.act)
    if act is not None and act.resource_type not in vocabulary.RESOURCE_TYPES:
        found.append(f"resource type {act.resource_type!r} of {line.act} is not in the vocabulary")
    return found


def _check_vocabulary(lines: list[Line]) -> list[Problem]:
    out = [Problem(ln.file, ln.number, reason) for ln in lines for reason in _line_problems(ln)]
    per_line = {reason for ln in lines for reason in _line_problems(ln)}
    vocab_text = VOCABULARY_FILE.read_text(encoding="utf-8")
    shown = "authz/policy/vocabulary.py"
    for reason in vocabulary.check_policy_lines([(ln.rel, ln.act, ln.eft) for ln in lines]):
        if reason in per_line:
            continue
        name = next((a for a in vocabulary.ACTIONS if f"action {a} " in reason), None)
        number = _line_of(vocab_text, rf'Action\("{re.escape(name)}"') if name else 0
        out.append(Problem(shown, number, reason))
    return out


def _duplicates(lines: list[Line]) -> list[Problem]:
    first: dict[tuple[str, str, str], Line] = {}
    out = []
    for ln in lines:
        key = (ln.rel, ln.act, ln.eft)
        if key in first:
            out.append(
                Problem(ln.file, ln.number, f"duplicate of {first[key].where}: it can never decide")
            )
        else:
            first[key] = ln
    return out


def _keep(text: str, name: str, good: set[tuple[str, int]]) -> str:
    base = Path(name).name
    out = []
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if stripped and not stripped.startswith("#") and (base, number) not in good:
            raw = "# (left out by authz policy check)"
        out.append(raw)
    return "\n".join(out) + "\n"


def _source_key(source: str) -> tuple[str, int]:
    name, _, number = source.rpartition(":")
    return (Path(name).name, int(number))


# -- payment isolation ------------------------------------------------------------------------


def _check_payments(
    policy: PolicySet,
    copy: PolicyFiles,
    lines: list[Line],
    where: dict[tuple[str, int], str],
    files: PolicyFiles,
) -> list[Problem]:
    """For every payment-bearing action: its deny line exists, and no subject holding any
    relation can use another client's payment method (or none) with it."""
    out: list[Problem] = []
    enforcer = casbin_enforcer(probe.FACTS, copy.policies, copy.model, lambda: probe.NOW)
    deny_file = next(
        (ln.file for ln in lines if ln.rel == PM_DENY),
        files.display(files.policies / "payments.csv"),
    )
    for action, act in vocabulary.ACTIONS.items():
        if act.payment is None:
            continue
        if not any(r.rel == PM_DENY and r.act == action and r.eft == "deny" for r in policy.rules):
            out.append(
                Problem(
                    deny_file,
                    0,
                    f"no `p, {PM_DENY}, {action}, deny` line: {action} carries a payment "
                    "method, and nothing stops one of another client",
                )
            )
        for subject in probe.SUBJECTS:
            for pm in (probe.OTHER_PM, ""):
                outcome = probe.decide(policy, subject, action, pm)
                values = {
                    "sub": subject,
                    "owner": probe.owner_for(action),
                    "act": action,
                    "pm": pm,
                    "type": act.resource_type,
                }
                asked = [values.get(f, "") for f in policy.request_fields]
                casbin_allows = enforcer.enforce(*asked)
                if outcome.allowed and outcome.rule is not None:
                    line = where.get(_source_key(outcome.rule.source), outcome.rule.source)
                    file, _, number = line.rpartition(":")
                    out.append(
                        Problem(
                            file,
                            int(number),
                            f"lets a subject holding {outcome.relation} do {action} with a "
                            "payment method of another client (or none): a payment method "
                            "must only serve its own client",
                        )
                    )
                elif casbin_allows:
                    out.append(
                        Problem(
                            files.display(files.model),
                            0,
                            f"pycasbin allows {outcome.relation} {action} with a payment method "
                            "of another client (or none) where the engine denies",
                        )
                    )
    return out


# -- reachability -----------------------------------------------------------------------------


def _check_reachable(
    policy: PolicySet, lines: list[Line], where: dict[tuple[str, int], str]
) -> list[Problem]:
    """Every line decides some request of the probe world; otherwise say why it cannot."""
    decided: set[tuple[str, int]] = set()
    always_denied: dict[str, str] = {}
    for outcome in probe.every(policy):
        if outcome.rule is None:
            continue
        key = _source_key(outcome.rule.source)
        decided.add(key)
        if outcome.rule.eft == "deny":
            # With the owner's own payment method (or none needed) a deny here matches always.
            always_denied.setdefault(outcome.action, where.get(key, outcome.rule.source))
    held_anywhere = {probe.relation_of(s) for s in probe.SUBJECTS}
    out: list[Problem] = []
    seen: set[tuple[str, str, str]] = set()
    for ln in lines:
        rule_key = (ln.rel, ln.act, ln.eft)
        if ln.key in decided or rule_key in seen or _line_problems(ln):
            seen.add(rule_key)
            continue
        seen.add(rule_key)
        if ln.eft == "deny":
            continue  # a deny that never matches is the payment deny doing its job
        out.append(Problem(ln.file, ln.number, _why_unreachable(ln, held_anywhere, always_denied)))
    for action, line in always_denied.items():
        act = vocabulary.ACTIONS[action]
        file, _, number = line.rpartition(":")
        out.append(
            Problem(
                file,
                int(number),
                f"denies every request for {action}: "
                + (
                    f"{action} carries no payment method, so `{PM_DENY}` always matches"
                    if act.payment is None
                    else "it matches even with the owner's own payment method"
                ),
            )
        )
    return out


def _why_unreachable(ln: Line, held: set[str], always_denied: dict[str, str]) -> str:
    if ln.rel not in held:
        return (
            f"unreachable: relation {ln.rel!r} never holds (the store answers "
            f"{', '.join(sorted(held))})"
        )
    if ln.act in always_denied:
        return f"shadowed: the deny line {always_denied[ln.act]} denies every {ln.act}"
    owner = probe.owner_for(ln.act)
    rtype = vocabulary.ACTIONS[ln.act].resource_type
    holders = [s for s in probe.SUBJECTS if ln.rel in probe.relations_of(s, owner)]
    if not holders:
        kind = "organization" if owner == probe.ORG else "client"
        return (
            f"unreachable: {ln.rel} never holds on an {kind}, and a {rtype} belongs to its {kind}"
        )
    return f"shadowed: subjects holding {ln.rel} are decided by another line for {ln.act}"


def _tables(files: PolicyFiles, problems: list[Problem]) -> dict[str, str]:
    """The rule tables beside the rules (`*.yaml`), each loaded as the service would load it."""
    out = {}
    for path in location.files_of(files.policies):
        if path.suffix != ".yaml":
            continue
        out[f"policies/{path.name}"] = path.read_text(encoding="utf-8")
        if path.name == recertification.FILE_NAME:
            try:
                recertification.policy(path)
            except PolicyError as exc:
                problems.append(Problem(files.display(path), 0, exc.detail))
    return out
