"""The `authz` command line, run as a user would (subprocess), on the embedded store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jwt
import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(tmp: Path, *args: str, dev: bool = True, ok: bool = True, db: str | None = None) -> Any:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "AUTHZ_DATABASE_URL": db or f"sqlite:///{tmp / 'authz.db'}",
    }
    env.pop("AUTHZ_DEV_MODE", None)
    if dev:
        env["AUTHZ_DEV_MODE"] = "1"
    proc = subprocess.run(
        [sys.executable, "-m", "authz.cli", *args],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def run_json(tmp: Path, *args: str, **kw: Any) -> Any:
    return json.loads(run(tmp, *args, "--json", **kw).stdout)


def test_init_creates_then_is_a_no_op(tmp_path: Path) -> None:
    first = run_json(tmp_path, "init")
    assert first["migrations_applied"] and first["signing_kid"]
    second = run_json(tmp_path, "init")
    assert second["migrations_applied"] == [] and second["signing_kid"] == first["signing_kid"]


def test_the_setup_story(tmp_path: Path) -> None:
    run(tmp_path, "init")
    org = run_json(
        tmp_path,
        "org",
        "create",
        "--name",
        "Sunrise Therapy",
        "--entitlement",
        "linked_portal_access",
    )
    assert org["entitlements"] == ["linked_portal_access"]
    prv = run_json(tmp_path, "provider", "create", "--org", org["id"], "--email", "Dr.Lee@X.test")
    assert prv["email"] == "dr.lee@x.test" and prv["id"].startswith("prv_")
    rev = run_json(tmp_path, "reviewer", "create", "--org", org["id"], "--email", "r@x.test")
    assert rev["id"].startswith("rev_")
    oc = run_json(
        tmp_path,
        "oauth-client",
        "create",
        "--org",
        org["id"],
        "--audience",
        "https://portal.x.test",
        "--scope",
        "authz:check authz:admin",
    )
    assert oc["client_secret"] and oc["scopes"] == ["authz:admin", "authz:check"]
    table = run(tmp_path, "org", "create", "--name", "Second").stdout
    assert "ENTITLEMENTS" in table.splitlines()[0] and "Second" in table
    token = run(tmp_path, "dev-token", "--email", "dr.lee@x.test").stdout.strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["email"] == "dr.lee@x.test" and claims["email_verified"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("org", "create", "--name", "X", "--entitlement", "free_lunch"), "unknown"),
        (("provider", "create", "--org", "org_missing", "--email", "a@x.test"), "not found"),
        (("provider", "create", "--org", "org_missing", "--email", "nope"), "email"),
        (
            (
                "oauth-client",
                "create",
                "--org",
                "org_missing",
                "--audience",
                "a",
                "--scope",
                "root",
            ),
            "unknown scopes",
        ),
    ],
)
def test_bad_input_is_one_line_and_non_zero(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    run(tmp_path, "init")
    proc = run(tmp_path, *args, ok=False)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("authz: ") and message in lines[0]


def test_dev_token_exists_only_in_development_mode(tmp_path: Path) -> None:
    run(tmp_path, "init", dev=False)
    proc = run(tmp_path, "dev-token", "--email", "a@x.test", dev=False, ok=False)
    assert proc.returncode != 0 and "development mode" in proc.stderr


def test_keys_rotate_keeps_old_key_published(tmp_path: Path) -> None:
    first = run_json(tmp_path, "init")["signing_kid"]
    second = run_json(tmp_path, "keys", "rotate")["signing_kid"]
    assert second != first
    from authz.store.db import Store
    from authz.tokens.keys import KeyRing

    store = Store.from_url(f"sqlite:///{tmp_path / 'authz.db'}")
    ring = KeyRing(store)
    ring.load()
    assert ring.signing_key().kid == second
    assert {k["kid"] for k in ring.jwks()["keys"]} == {first, second}


def test_audit_verify_passes_then_catches_an_edit(tmp_path: Path) -> None:
    run(tmp_path, "init")
    run(tmp_path, "org", "create", "--name", "A")
    assert run_json(tmp_path, "audit", "verify")["ok"] is True
    import sqlite3

    con = sqlite3.connect(tmp_path / "authz.db")
    con.execute("UPDATE audit_events SET actor = 'someone:else' WHERE seq = 2")
    con.commit()
    con.close()
    proc = run(tmp_path, "audit", "verify", "--json", ok=False)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["ok"] is False and report["changes"]["first_break"]["seq"] == 2


def test_demo_tells_the_whole_story(tmp_path: Path) -> None:
    out = run(tmp_path, "demo").stdout
    assert "accepts the invite: portal access is now active" in out
    assert '"authz_via": "delegation"' in out and '"act": {"sub": "client:cli_' in out
    assert '"authz_via": "shared_email"' in out
    assert "a delegated token cannot be exchanged again" in out
    assert "with pm_luis_visa: allowed" in out and "with pm_jenna_amex: denied" in out
    assert "payments.csv" in out and "Her earlier token for Luis is now denied" in out
    assert "portal access is revoked" in out
    assert "verification: unbroken" in out
