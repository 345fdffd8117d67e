"""`authz policy check|test|diff` on policy files, as a reviewer runs them (no store needed)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from authz.policy.engine import PolicySet
from tests.compliance.cli import ROOT


def run(*args: str, cwd: Path = ROOT, db: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`authz ARGS` from `cwd`, on a store that is never needed unless `db` is given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHZ_")}
    if db is not None:
        env["AUTHZ_DATABASE_URL"] = f"sqlite:///{db}"
    return subprocess.run(
        [sys.executable, "-m", "authz.cli", *args],
        cwd=cwd,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A checkout-like folder with the service's model.conf and policies/ (tests included)."""
    shutil.copy(ROOT / "model.conf", tmp_path / "model.conf")
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if line == text)


def test_check_passes_on_the_service_files() -> None:
    done = run("policy", "check", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["ok"] and result["problems"] == []
    assert result["digest"] == PolicySet.load().digest
    table = run("policy", "check")
    assert table.returncode == 0 and table.stdout.startswith("policy check: ok:")


def test_check_names_file_line_and_reason_for_each_problem(copy: Path) -> None:
    staff, payments = copy / "policies" / "staff.csv", copy / "policies" / "payments.csv"
    edit(payments, "p, payment_method_of_another_client, invoice.pay, deny\n", "")
    with staff.open("a") as f:
        f.write(
            "p, reviewer, invoice.refund, allow\n"  # unknown action
            "p, reviewer, grant.read, allow\n"  # duplicate
            "p, self, policy.read, allow\n"  # a client never holds self on an organization
            "g, client:cli_1, self, cli_1\n"  # relations come from the store
            "p, self\n"  # syntax
        )
    done = run("policy", "check", "--policies", "policies", cwd=copy)
    assert done.returncode == 1
    assert done.stderr.startswith("authz: ") and "problem(s) in the policy files" in done.stderr
    lines = done.stdout.splitlines()
    n = len(staff.read_text().splitlines())
    caregivers = copy / "policies" / "caregivers.csv"
    billing_pay = line_of(caregivers, "p, caregiver_billing, invoice.pay, allow")
    expected = [
        f"policies/staff.csv:{n - 4}: unknown action 'invoice.refund'",
        f"policies/staff.csv:{n - 3}: duplicate of policies/staff.csv:",
        f"policies/staff.csv:{n - 2}: unreachable: self never holds on an organization",
        f"policies/staff.csv:{n - 1}: a g line: relations come from the store",
        f"policies/staff.csv:{n}: expected `p, relation, action, effect`",
        "policies/payments.csv: no `p, payment_method_of_another_client, invoice.pay, deny` line",
        f"policies/caregivers.csv:{billing_pay}: lets a subject holding caregiver_billing do "
        "invoice.pay with a payment method of another client",
    ]
    for want in expected:
        assert any(line.startswith(want) for line in lines), (want, lines)


def test_check_bad_input_missing_files_and_a_model_syntax_error(copy: Path) -> None:
    missing = run("policy", "check", "--policies", str(copy / "nowhere"))
    assert missing.returncode == 1
    assert "nowhere: no such policy folder" in missing.stdout
    model = copy / "model.conf"
    edit(model, "[matchers]", "this is not casbin\n[matchers]")
    broken = run("policy", "check", "--model", "model.conf", "--policies", "policies", cwd=copy)
    number = line_of(model, "this is not casbin")
    assert broken.returncode == 1
    assert broken.stdout.startswith(f"model.conf:{number}: does not parse"), broken.stdout


def test_policy_test_table_and_failures(copy: Path) -> None:
    ok = run("policy", "test")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[0].split()[:3] == ["SUITE", "CASE", "RESULT"]
    assert " 0 failed" in ok.stdout and "FAIL" not in ok.stdout

    suite = copy / "policies" / "tests" / "payments.yaml"
    text = suite.read_text()
    first = text.index("expect: deny")
    suite.write_text(text[:first] + "expect: allow" + text[first + len("expect: deny") :])
    failed = run("policy", "test", "--policies", "policies", "--json", cwd=copy)
    assert failed.returncode == 1
    assert failed.stderr.strip() == "authz: 1 policy test case(s) failed"
    report = json.loads(failed.stdout)
    [bad] = [c for c in report["cases"] if c["result"] == "FAIL"]
    assert bad["suite"] == "payments.yaml" and bad["problem"] == "expected allow, got deny"

    suite.write_text("tests: [unclosed\n")
    syntax = run("policy", "test", "--policies", "policies", cwd=copy)
    assert syntax.returncode != 0 and syntax.stdout == ""
    assert syntax.stderr.startswith("authz: a test file is not valid YAML at line")
    missing = run("policy", "test", "--policies", str(copy / "nowhere"))
    assert missing.returncode != 0 and "no such policy folder" in missing.stderr


def test_diff_identical_reordered_changed_and_bad_versions(copy: Path) -> None:
    same = run("policy", "diff", str(ROOT), "rev:HEAD", "--no-store")
    folder_same = same.returncode == 0 and "identical:" in same.stdout
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "model.conf", "policies"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert folder_same or dirty, same.stdout + same.stderr
    revs = run("policy", "diff", "rev:HEAD", "rev:HEAD", "--no-store", "--json")
    assert revs.returncode == 0
    assert json.loads(revs.stdout)["identical"] is True

    accounts = copy / "policies" / "accounts.csv"
    lines = accounts.read_text().splitlines()
    accounts.write_text("\n".join(reversed(lines)) + "\n")
    reordered = run("policy", "diff", str(ROOT / "policies"), str(copy / "policies"), "--no-store")
    assert reordered.returncode == 0
    assert reordered.stdout.startswith("the files differ, but no decision changes")

    caregivers = copy / "policies" / "caregivers.csv"
    edit(caregivers, "p, caregiver_billing, invoice.pay, allow\n", "")
    edit(
        copy / "policies" / "payments.csv",
        "p, payment_method_of_another_client, payment_method.use, deny\n",
        "",
    )
    changed = run("policy", "diff", str(ROOT), str(copy), "--no-store", "--json")
    assert changed.returncode == 0, changed.stderr
    summaries = [g["summary"] for g in json.loads(changed.stdout)["changes"]]
    assert "caregivers with billing access lose invoice.pay" in summaries
    assert "providers gain payment_method.use with another client's payment method" in summaries

    bad_rev = run("policy", "diff", "rev:no-such-revision", str(copy), "--no-store")
    assert (bad_rev.returncode, bad_rev.stderr) == (
        2,
        "authz: rev:no-such-revision: unknown git revision\n",
    )
    (copy / "policies" / "staff.csv").write_text("p, provider, client.read\n")
    broken = run("policy", "diff", str(ROOT), str(copy), "--no-store")
    assert broken.returncode == 2 and broken.stderr.startswith(f"authz: {copy}: staff.csv:1:")
    assert len(broken.stderr.splitlines()) == 1


def test_readme_vocabulary_table_is_what_the_engine_decides() -> None:
    from authz.compliance.policy_review import vocabulary_doc

    text = vocabulary_doc.README.read_text()
    assert vocabulary_doc.render(text) == text, (
        "policies/README.md is stale: run python -m authz.compliance.policy_review.vocabulary_doc"
    )
    for path in sorted((ROOT / "policies").glob("*.csv")):
        assert f"**`{path.name}`**" in text, f"README does not explain {path.name}"
