"""The policy-test runner: `policies/tests/*.yaml` (facts, queries, expected decisions).

One loader and one runner serve pytest and `authz policy test`; `schema.json` beside the suites
describes the format. Every query runs through the engine and through pycasbin's Enforcer, and
both must give the expected answer.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from authz.policy import location
from authz.policy.engine import (
    CheckRequest,
    Engine,
    PolicySet,
    Resource,
    Subject,
    casbin_enforcer,
)
from authz.policy.facts import ClientRow, FactIndex, LinkRow, OrgRow, PaymentRow, StaffRow


@dataclass(frozen=True)
class Suite:
    path: Path
    data: dict[str, Any]


@dataclass(frozen=True)
class CaseResult:
    suite: str
    name: str
    passed: bool
    expected: str
    allowed: bool
    reason: str
    rule: str
    problem: str = ""

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _time(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC)
    parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _date(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _jsonable(value: Any) -> Any:
    """YAML turns dates into objects; the schema speaks JSON."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def load_suites(directory: Path | None = None) -> list[Suite]:
    """Every suite (by default `tests/` of the policies in force), validated against
    `schema.json`; raise ValueError naming the bad file."""
    directory = directory or location.in_force().policies / "tests"
    schema = json.loads((directory / "schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    suites = []
    for path in sorted(directory.glob("*.yaml")):
        data = _jsonable(yaml.safe_load(path.read_text()))
        errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
        if errors:
            where = "/".join(str(p) for p in errors[0].path)
            raise ValueError(f"{path.name}: {where}: {errors[0].message}")
        suites.append(Suite(path, data))
    return suites


def facts_of(data: dict[str, Any]) -> FactIndex:
    """The fact index a suite describes."""
    f = data["facts"]
    index = FactIndex.from_rows(
        [
            OrgRow(
                o["id"], o.get("name", o["id"]), o.get("entitlements", []), o.get("jurisdiction")
            )
            for o in f["organizations"]
        ],
        [StaffRow(s["id"], s["org"], s.get("name", "")) for s in f.get("providers", [])],
        [StaffRow(s["id"], s["org"], s.get("name", "")) for s in f.get("reviewers", [])],
        [
            ClientRow(
                c["id"],
                c["org"],
                c["name"],
                c.get("type", "adult"),
                _date(c.get("birth_date")),
                c.get("email"),
                c.get("verified", False),
                c.get("active", True),
            )
            for c in f.get("clients", [])
        ],
        [
            LinkRow(
                k["id"],
                k["receiver"],
                k["caregiver"],
                k.get("relationship", "caregiver"),
                k.get("status"),
                k.get("level", "full"),
                _time(k.get("expires_at")),
                k.get("acknowledged_by"),
                _time(k.get("acknowledged_at")),
            )
            for k in f.get("links", [])
        ],
        [PaymentRow(p["id"], p["client"]) for p in f.get("payment_methods", [])],
        majority_age=data.get("majority_age", 18),
    )
    for share in f.get("shares", []):
        index.put_consent(share["minor"], share["caregiver"], share["labels"])
    return index


def _org_of(data: dict[str, Any], subject: str) -> str:
    ident = subject.partition(":")[2]
    for table in ("clients", "providers", "reviewers"):
        for row in data["facts"].get(table, []):
            if row["id"] == ident:
                return str(row["org"])
    return str(data["facts"]["organizations"][0]["id"])


def request_of(data: dict[str, Any], test: dict[str, Any]) -> CheckRequest:
    """The check request a test case describes."""
    actor = test["subject"]
    kind, _, ident = actor.partition(":")
    account = test.get("acting_as") or (ident if kind == "client" else None)
    via = "delegation" if test.get("acting_as") and test["acting_as"] != ident else "self"
    scopes = frozenset(test["scopes"]) if "scopes" in test else None
    subject = Subject(
        actor, test.get("org") or _org_of(data, actor), account, test.get("grant"), via, scopes
    )
    res = test["resource"]
    return CheckRequest(
        subject,
        test["action"],
        Resource(res["type"], res.get("id"), res.get("owner"), tuple(res.get("labels", ()))),
        test.get("context", {}).get("payment_method"),
    )


def run_suite(
    suite: Suite,
    policy: PolicySet,
    model_path: Path | None = None,
    policy_dir: Path | None = None,
) -> list[CaseResult]:
    """Run every query of one suite through the engine and through pycasbin."""
    data = suite.data
    facts = facts_of(data)
    fixed = _time(data.get("now"))

    def now() -> dt.datetime:
        return fixed or dt.datetime.now(dt.UTC)

    engine = Engine(policy, facts, now=now)
    enforcer = casbin_enforcer(facts, policy_dir, model_path, now)
    results = []
    for test in data["tests"]:
        req = request_of(data, test)
        d = engine.check(req)
        problems = []
        if d.allowed != (test["expect"] == "allow"):
            problems.append(f"expected {test['expect']}, got {'allow' if d.allowed else 'deny'}")
        if test.get("rule") and test["rule"] not in d.rule:
            problems.append(f"rule {d.rule!r} does not contain {test['rule']!r}")
        if test.get("reason") and test["reason"] not in d.reason:
            problems.append(f"reason {d.reason!r} does not contain {test['reason']!r}")
        if d.enforced is not None:
            casbin_says = enforcer.enforce(*d.enforced)
            if casbin_says != d.allowed:
                problems.append(f"pycasbin says {casbin_says}, the engine {d.allowed}")
        results.append(
            CaseResult(
                suite.path.name,
                test["name"],
                not problems,
                test["expect"],
                d.allowed,
                d.reason,
                d.rule,
                "; ".join(problems),
            )
        )
    return results


def run_all(
    directory: Path | None = None, model_path: Path | None = None, policy_dir: Path | None = None
) -> list[CaseResult]:
    """Every case of every suite."""
    policy = PolicySet.load(model_path, policy_dir)
    return [
        r
        for suite in load_suites(directory)
        for r in run_suite(suite, policy, model_path, policy_dir)
    ]
