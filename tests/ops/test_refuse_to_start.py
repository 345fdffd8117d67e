"""`authz serve` refuses to start on policy files that do not load, never serving an empty or
half-read policy: it exits non-zero with one line that names the file and the line. The broken
files are a deployment's own copy, named by `AUTHZ_POLICY_DIR`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _tree(tmp_path: Path) -> Path:
    """A copy of the policy files, to break without touching the real ones."""
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "policies", tree / "policies")
    shutil.copy(ROOT / "model.conf", tree / "model.conf")
    return tree


def _serve(tree: Path, settings_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings_env, "PYTHONPATH": str(ROOT), "AUTHZ_POLICY_DIR": str(tree)}
    return subprocess.run(
        [sys.executable, "-m", "authz.cli", "serve", "--port", "9"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        ("a policy line cut short", "payments.csv:"),
        ("every policy file emptied", "no policy line allows it"),
        ("a model.conf section missing", "model.conf"),
    ],
)
def test_serve_refuses_policy_files_that_do_not_load(
    tmp_path: Path, settings_env: dict[str, str], breakage: str, expected: str
) -> None:
    tree = _tree(tmp_path)
    if breakage == "a policy line cut short":
        with (tree / "policies" / "payments.csv").open("a") as f:
            f.write("p, caregiver_full, invoice.pay\n")
    elif breakage == "every policy file emptied":
        for csv in (tree / "policies").glob("*.csv"):
            csv.write_text("")
    else:
        model = (tree / "model.conf").read_text()
        (tree / "model.conf").write_text(model.replace("[policy_effect]", "[nothing]"))
    done = _serve(tree, settings_env)
    assert done.returncode != 0, done.stdout + done.stderr
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("authz: "), done.stderr
    assert expected in errors[0]
    assert "Traceback" not in done.stderr


def test_serve_refuses_a_port_another_server_listens_on(
    app: object, settings_env: dict[str, str]
) -> None:
    """Workers bind with SO_REUSEPORT; without this check a second server would share the port
    with the first, silently, and take half its connections."""
    import socket

    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "authz.cli", "serve", "--workers", "2", "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, **settings_env, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode != 0, done.stdout + done.stderr
    errors = done.stderr.strip().splitlines()
    assert errors == [f"authz: cannot listen on 127.0.0.1:{port}: Address already in use"]
