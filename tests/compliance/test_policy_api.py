"""GET /v1/policy: the files in force with their digest and revision (reviewers, providers)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from authz.base.errors import Conflict
from authz.base.principals import Principal
from authz.compliance.policy_review import published
from authz.policy import location
from authz.policy.engine import MODEL_PATH, POLICY_DIR, Engine, PolicySet
from authz.policy.facts import FactIndex
from tests.helpers import Api


def test_reviewers_and_providers_read_the_files_in_force(api: Api) -> None:
    reviewer = api.sign_in(f"reviewer:{api.reviewer_id}", "review@practice.test")
    r = api.call("GET", "/v1/policy", token=reviewer)
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["digest"] == PolicySet.load().digest
    assert body["revision"] == str(api.rt.store.revision())
    assert body["model"] == {"path": "model.conf", "text": MODEL_PATH.read_text()}
    # The policy lines, then the age band table (also under the digest).
    assert [p["path"] for p in body["policies"]] == [
        f"policies/{p.name}" for p in location.files_of(POLICY_DIR)
    ]
    assert body["policies"][0]["text"] == location.files_of(POLICY_DIR)[0].read_text()
    assert api.call("GET", "/v1/policy").status_code == 200  # a provider

    client = api.client("Ann", "adult", "ann@x.test")
    token = api.sign_in(f"client:{client['id']}", "ann@x.test")
    denied = api.call("GET", "/v1/policy", token=token)
    assert denied.status_code == 403
    assert denied.get_json()["detail"].startswith("reading the policy files needs a reviewer")
    assert api.call("GET", "/v1/policy?x=1", token=reviewer).status_code == 400


def test_files_changed_since_loading_are_not_served_as_enforced(tmp_path: Path) -> None:
    shutil.copy(MODEL_PATH, tmp_path / "model.conf")
    shutil.copytree(POLICY_DIR, tmp_path / "policies")
    policy = PolicySet.load(tmp_path / "model.conf", tmp_path / "policies")
    facts = FactIndex.from_rows([("org_1", "Practice", [])], [], [("rev_1", "org_1", "R")])
    caller = Principal("reviewer", "rev_1", "org_1", frozenset())
    assert published.read(Engine(policy, facts), caller, 1)["digest"] == policy.digest
    with (tmp_path / "policies" / "staff.csv").open("a") as f:
        f.write("# an edit after loading\n")
    with pytest.raises(Conflict, match="restart the service"):
        published.read(Engine(policy, facts), caller, 1)
