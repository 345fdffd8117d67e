"""Every case of `policies/tests/*.yaml`, through the engine and through pycasbin."""

from __future__ import annotations

import pytest

from authz.policy import cases
from authz.policy.engine import PolicySet

SUITES = cases.load_suites()
POLICY = PolicySet.load()


@pytest.mark.parametrize("suite", SUITES, ids=[s.path.name for s in SUITES])
def test_suite(suite: cases.Suite) -> None:
    results = cases.run_suite(suite, POLICY)
    failed = [
        f"{r.name}: {r.problem} (reason: {r.reason}; rule: {r.rule})"
        for r in results
        if not r.passed
    ]
    assert not failed, "\n".join(failed)


def test_every_rule_is_exercised() -> None:
    """Each allow relation and each deny line decides at least one case."""
    rules = {r.rule for r in cases.run_all()}
    decided = {line for line in (str(r) for r in POLICY.rules) if line in rules}
    relations = {line.split(", ")[1] for line in decided}
    assert relations >= {
        "self",
        "shared_email",
        "caregiver_full",
        "caregiver_billing",
        "caregiver_scheduling",
        "provider",
        "reviewer",
        "payment_method_of_another_client",
    }


def test_suites_cover_allow_and_deny() -> None:
    for suite in SUITES:
        expects = {t["expect"] for t in suite.data["tests"]}
        assert expects == {"allow", "deny"} or suite.path.name == "vocabulary.yaml", suite.path
