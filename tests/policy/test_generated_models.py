"""pycasbin is the oracle for the compiled matcher: any model in the documented subset, over
random account graphs, decides in the engine exactly as in pycasbin; a model outside the subset
is refused with the construct named."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authz.policy import vocabulary
from authz.policy.engine import (
    MODEL_PATH,
    POLICY_DIR,
    Engine,
    PolicyError,
    PolicySet,
    casbin_enforcer,
)

from .graphs import LABELS, NOW, graphs, index_of

# Conditions the generated matchers combine: every construct of the subset.
ATOMS = [
    "r.act == p.act",
    'p.eft == "allow"',
    'p.eft == "deny"',
    "g(r.sub, p.rel, r.owner)",
    'g(r.sub, "adolescent_proxy", r.owner)',
    'g(r.sub, "caregiver_full", r.owner)',
    "g2(r.pm, r.owner)",
    "g3(r.sub, r.lbl, r.owner)",
    'r.lbl != ""',
    'p.rel == "self"',
    'p.rel != "provider"',
    'r.pm == ""',
    "r.sub != r.owner",
]
EFFECTS = [
    "some(where (p.eft == allow)) && !some(where (p.eft == deny))",
    "some(where (p.eft == allow))",
]


def matchers() -> st.SearchStrategy[str]:
    leaf = st.sampled_from(ATOMS)

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, st.sampled_from(["&&", "||"]), inner).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"
            ),
            inner.map(lambda t: f"!({t})"),
        )

    tree = st.recursive(leaf, extend, max_leaves=6)
    # Most real models index on the action; half the generated ones do, half do not.
    return st.tuples(st.booleans(), tree).map(
        lambda t: f"r.act == p.act && {t[1]}" if t[0] else t[1]
    )


def model_with(matcher: str, effect: str) -> str:
    text = MODEL_PATH.read_text()
    head, _, _ = text.partition("[policy_effect]")
    return f"{head}[policy_effect]\ne = {effect}\n\n[matchers]\nm = {matcher}\n"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    shutil.copytree(POLICY_DIR, root / "policies")
    return root


@settings(
    max_examples=320,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(matchers(), st.sampled_from(EFFECTS), graphs(), st.data())
def test_any_model_in_the_subset_decides_as_pycasbin(
    workdir: Path, matcher: str, effect: str, g: dict, data: st.DataObject
) -> None:
    model = workdir / "model.conf"
    model.write_text(model_with(matcher, effect))
    policies = workdir / "policies"
    engine = Engine(PolicySet.load(model, policies), index_of(g), now=lambda: NOW)
    enforcer = casbin_enforcer(engine.facts, policies, model, now=lambda: NOW)
    subjects = [f"client:{c.id}" for c in g["clients"]] + ["provider:prv_a", "reviewer:rev_a"]
    owners = [c.id for c in g["clients"]] + ["org_a"]
    pms = ["", *(p.id for p in g["pms"])]
    for _ in range(12):
        request = (
            data.draw(st.sampled_from(subjects)),
            data.draw(st.sampled_from(owners)),
            data.draw(st.sampled_from(sorted(vocabulary.ACTIONS))),
            data.draw(st.sampled_from(pms)),
            data.draw(st.sampled_from(["", *LABELS])),
        )
        assert engine.evaluate(*request, now=NOW)[0] == enforcer.enforce(*request), (
            matcher,
            request,
        )


@pytest.mark.parametrize(
    ("matcher", "named"),
    [
        ('r.act == p.act && keyMatch(r.owner, "cli_*")', "keyMatch"),
        ("r.act == p.act && r.sub.Name == p.rel", "r.sub.Name"),
        ('r.act == p.act && r.pm in ("a", "b")', "in"),
        ("r.act == p.act && r.when > p.rel", ">"),
        ("r.act == p.act && r.nope == p.act", "r.nope"),
        ("r.act == p.act && (g(r.sub, p.rel, r.owner)", "parentheses"),
        ("r.act == p.act && g(r.sub, p.rel)", "3 arguments"),
    ],
)
def test_a_model_outside_the_subset_is_refused_naming_the_construct(
    workdir: Path, matcher: str, named: str
) -> None:
    model = workdir / "bad.conf"
    model.write_text(model_with(matcher, EFFECTS[0]))
    with pytest.raises(PolicyError) as refused:
        PolicySet.load(model, workdir / "policies")
    assert named in str(refused.value)


def test_a_reviewed_new_deny_rule_loads_without_a_code_change(workdir: Path) -> None:
    """A deny on a new request field's value, written only in model.conf and a csv line."""
    model = workdir / "deny.conf"
    shipped = PolicySet.load().matcher.text
    model.write_text(
        model_with(
            f'{shipped} || (r.act == p.act && p.eft == "deny" && p.rel == "adolescent_proxy" '
            '&& r.lbl == "HIV")',
            EFFECTS[0],
        )
    )
    policy = PolicySet.load(model, workdir / "policies")
    assert policy.matcher.text.endswith('r.lbl == "HIV")')
