"""The policy files fit the one catalogue of actions, and caregiver lines follow the levels."""

from __future__ import annotations

from pathlib import Path

import pytest

from authz.policy import vocabulary
from authz.policy.engine import PM_DENY, PolicyError, PolicySet, read_policy_lines
from authz.policy.grants import LEVEL_SCOPES


def test_policy_lines_fit_the_vocabulary() -> None:
    lines = [(r.rel, r.act, r.eft) for r in read_policy_lines()]
    assert vocabulary.check_policy_lines(lines) == []


def test_caregiver_lines_are_exactly_the_level_scopes() -> None:
    rules = read_policy_lines()
    for level, scopes in LEVEL_SCOPES.items():
        allowed = {r.act for r in rules if r.rel == f"caregiver_{level}"}
        expected = {a.name for a in vocabulary.ACTIONS.values() if a.scope in scopes}
        assert allowed == expected, level


def test_payment_actions_have_a_deny_line() -> None:
    rules = read_policy_lines()
    denied = {r.act for r in rules if r.eft == "deny" and r.rel == PM_DENY}
    assert denied == {a.name for a in vocabulary.ACTIONS.values() if a.payment}


def test_every_policy_line_is_commented() -> None:
    for path in sorted(Path("policies").glob("*.csv")):
        assert path.read_text().startswith("#"), path


def test_a_typo_fails_loudly(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("p, self, invoice.payy, allow\n")
    with pytest.raises(PolicyError, match="unknown action"):
        PolicySet.load(policy_dir=tmp_path)


def test_a_matcher_outside_the_subset_refuses_to_compile(tmp_path: Path) -> None:
    model = Path("model.conf").read_text().replace("r.act == p.act", "r.act == p.act || true")
    (tmp_path / "model.conf").write_text(model)
    with pytest.raises(PolicyError, match="true: bare names are outside the subset"):
        PolicySet.load(model_path=tmp_path / "model.conf")


def test_model_uses_builtin_functions_only() -> None:
    matcher = next(ln for ln in Path("model.conf").read_text().splitlines() if ln.startswith("m ="))
    for name in ("keyMatch", "regexMatch", "eval(", "ipMatch", "globMatch"):
        assert name not in matcher
