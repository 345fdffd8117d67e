"""`authz grants export` and `authz policy explain|diff` over a store (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import casbin
import pytest
from casbin import persist

from authz.policy import vocabulary
from authz.policy.engine import MODEL_PATH, POLICY_DIR, Engine, PolicySet
from authz.policy.facts import FactIndex
from tests.compliance.cli import ROOT, authz
from tests.helpers import Api

ACK = "I confirm full access is intended."
BILLING_ACK = "Billing only, as agreed with the family."


@pytest.fixture
def family(api: Api) -> dict[str, str]:
    """Full and billing grants, a pending one, a shared email, payment methods."""
    mia = api.client("Mia", "minor", birth_date="2016-04-01")["id"]
    link, jenna_token = api.grant(mia, "jenna@family.test")
    jenna = link["linked_client_id"]
    gus = api.client("Gus", "adult")["id"]
    body = {
        "client_id": jenna,
        "relationship": "spouse",
        "portal_access": {
            "enabled": True,
            "acknowledgement": BILLING_ACK,
            "access_level": "billing",
        },
    }
    billing = api.ok("POST", f"/v1/clients/{gus}/links", body)
    api.accept(billing["dev_invite_token"], jenna_token)
    omar = api.client("Omar", "adult", "omar@x.test")["id"]
    pat = api.client("Pat", "adult", "pat@x.test")["id"]
    api.link(omar, pat, "spouse", portal=True)  # pending: gives nothing
    kim = api.client("Kim", "adult", "kim@shared.test")["id"]
    kimmy = api.client("Kimmy", "adult", "kim@shared.test")["id"]
    for cid in (kim, kimmy):
        api.sign_in(f"client:{cid}", "kim@shared.test")
    for cid, pm in ((mia, "pm_mia"), (gus, "pm_gus"), (kim, "pm_kim")):
        api.ok("POST", f"/v1/clients/{cid}/payment-methods", {"id": pm, "label": "card"})
    return {
        "mia": mia,
        "jenna": jenna,
        "link": link["id"],
        "gus": gus,
        "billing": billing["id"],
        "omar": omar,
        "pat": pat,
        "kim": kim,
        "kimmy": kimmy,
    }


def enforcer_from(policy_lines: list[str]) -> Any:
    """pycasbin with the policy files and the export alone: its plain default role manager."""

    class Lines(persist.Adapter):  # type: ignore[misc]
        def load_policy(self, model: Any) -> None:
            for path in sorted(POLICY_DIR.glob("*.csv")):
                for line in path.read_text().splitlines():
                    persist.load_policy_line(line.strip(), model)
            for line in policy_lines:
                persist.load_policy_line(line.strip(), model)

    return casbin.Enforcer(str(MODEL_PATH), Lines())


def test_export_alone_reproduces_every_decision(
    api: Api, family: dict[str, str], db_url: str
) -> None:
    done = authz(db_url, "grants", "export", "--format", "casbin")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert f"g, client:{family['jenna']}, caregiver_full, {family['mia']}" in lines
    assert f"g, client:{family['jenna']}, caregiver_billing, {family['gus']}" in lines
    assert f"g, client:{family['kim']}, shared_email, {family['kimmy']}" in lines
    assert f"g2, pm_gus, {family['gus']}" in lines
    assert not any(family["pat"] in ln and family["omar"] in ln for ln in lines)

    enforcer = enforcer_from(lines)
    engine = Engine(PolicySet.load(), FactIndex.load(api.rt.store))
    clients = engine.facts.client_ids()
    subjects = [f"client:{c}" for c in clients] + engine.facts.staff_of(api.org_id)
    owners = [*clients, api.org_id]
    pms = ["", "pm_mia", "pm_gus", "pm_kim", "pm_unknown"]
    seen = {True: 0, False: 0}
    for sub in subjects:
        for owner in owners:
            for act in vocabulary.ACTIONS:
                for pm in pms if vocabulary.ACTIONS[act].payment else [""]:
                    asked = (sub, owner, act, pm, "")
                    expected = engine.evaluate(*asked)[0]
                    assert enforcer.enforce(*asked) == expected, asked
                    seen[expected] += 1
    assert seen[True] > 100 and seen[False] > 100

    table = authz(db_url, "grants", "export")
    assert table.returncode == 0
    assert table.stdout.split()[:5] == ["SUBJECT", "RELATION", "OWNER", "LINK_ID", "WHY"]
    row = next(ln for ln in table.stdout.splitlines() if family["billing"] in ln)
    assert "caregiver_billing" in row and "with billing access, granted by Dr. Lee" in row
    bad = authz(db_url, "grants", "export", "--org", "org_nope")
    assert (bad.returncode, bad.stderr) == (2, "authz: --org org_nope: no such organization\n")


def test_explain_chain_rules_and_bad_input(api: Api, family: dict[str, str], db_url: str) -> None:
    done = authz(
        db_url,
        "policy",
        "explain",
        "--login",
        "jenna@family.test",
        "--as",
        family["gus"],
        "--action",
        "invoice.pay",
        "--resource",
        f"invoice:inv_9@{family['gus']}",
        "--payment-method",
        "pm_gus",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["allowed"] is True and result["via"] == "delegation"
    assert "p, caregiver_billing, invoice.pay, allow" in result["rule"]
    decided = [r for r in result["rules"] if r["matches"] == "yes: decided"]
    assert [r["rule"] for r in decided] == ["p, caregiver_billing, invoice.pay, allow"]
    deny = next(r for r in result["rules"] if r["rule"].endswith("deny"))
    assert deny["matches"] == "no"
    steps = [(s["step"], s["id"]) for s in result["chain"]]
    assert steps == [
        ("login", "jenna@family.test"),
        ("account", family["jenna"]),
        ("grant", family["billing"]),
        ("granted by", api.provider_id),
        ("on account", family["gus"]),
    ]
    [grant] = result["grants"]
    assert grant["acknowledgement"] == BILLING_ACK and grant["acknowledged_by_name"] == "Dr. Lee"
    assert grant["review_by"] and grant["review_by"] > result["at"]  # re-approved by then

    other = authz(
        db_url,
        "policy",
        "explain",
        "--subject",
        f"client:{family['jenna']}",
        "--as",
        family["mia"],
        "--action",
        "invoice.pay",
        "--resource",
        f"invoice:inv_1@{family['mia']}",
        "--payment-method",
        "pm_gus",
    )
    assert other.returncode == 0, other.stderr
    assert other.stdout.startswith("DECISION  DENY")
    assert "payments.csv" in other.stdout and "yes: decided" in other.stdout
    assert f"granted by: Dr. Lee ({api.provider_id}): on " in other.stdout and ACK in other.stdout

    for args, message in (
        (["--subject", "client:cli_nope", "--resource", "client:cli_nope"], "no such client"),
        (
            ["--subject", f"client:{family['jenna']}", "--resource", "not a resource"],
            "must be TYPE:ID[@OWNER]",
        ),
    ):
        bad = authz(db_url, "policy", "explain", "--action", "client.read", *args)
        assert bad.returncode == 2 and bad.stderr.startswith("authz: ")
        assert message in bad.stderr and len(bad.stderr.splitlines()) == 1


def test_diff_counts_what_changes_in_this_store(
    api: Api, family: dict[str, str], db_url: str, tmp_path: Path
) -> None:
    shutil.copy(ROOT / "model.conf", tmp_path / "model.conf")
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    caregivers = tmp_path / "policies" / "caregivers.csv"
    text = caregivers.read_text()
    caregivers.write_text(text.replace("p, caregiver_billing, invoice.pay, allow\n", ""))
    done = authz(db_url, "policy", "diff", str(ROOT), str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:2] == [
        f"decisions that change from {ROOT} to {tmp_path}:",
        "  - caregivers with billing access lose invoice.pay: 1 grants affected in this store",
    ]
