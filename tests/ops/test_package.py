"""`pip install` gives a working service: the wheel carries `model.conf` and `policies/`, and
`authz init`, `authz policy check|test` and `authz serve` work from a fresh virtual environment
outside the checkout. `AUTHZ_POLICY_DIR` points a deployment at its own reviewed copy."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.ops.serving import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
NOT_SHIPPED = (".git", ".venv", "build", "dist", "instance", "tests", "bench", "docs", "*.egg-info")


def _not_shipped(folder: str, names: list[str]) -> set[str]:
    top = NOT_SHIPPED if Path(folder) == ROOT else ()
    return set(shutil.ignore_patterns(*top, "__pycache__")(folder, names))


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv with the wheel built from a copy of the checkout (`--no-deps`: the
    dependencies come from this test's own environment through a `.pth` line)."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=_not_shipped)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(tmp), str(source)], check=True)
    wheel = next(tmp.glob("authz-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", str(wheel)], check=True)
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # Only the dependencies: a path from a .pth line is not a site dir, so the checkout's
    # editable-install hook in it never runs and `import authz` finds the wheel.
    (Path(site) / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    yield venv
    shutil.rmtree(tmp, ignore_errors=True)


def _env(where: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHZ_")}
    env.pop("PYTHONPATH", None)
    env["AUTHZ_DATABASE_URL"] = f"sqlite:///{where / 'authz.db'}"
    return {**env, **extra}


def _authz(venv: Path, where: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "authz"), *args],
        cwd=where,
        env=_env(where, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_wheel_carries_the_reviewed_policy_files(installed: Path) -> None:
    wheel = next(installed.parent.glob("authz-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    inside = "authz/policy/shipped"
    expected = {f"{inside}/model.conf", f"{inside}/policies/tests/schema.json"} | {
        f"{inside}/policies/{p.name}" for p in (ROOT / "policies").glob("*.csv")
    }
    assert expected <= names
    shipped = (installed / "lib").glob("python3*/site-packages/authz/policy/shipped/model.conf")
    assert next(shipped).read_bytes() == (ROOT / "model.conf").read_bytes()


def test_an_installed_service_initializes_checks_its_policy_and_serves(
    installed: Path, tmp_path: Path
) -> None:
    where = tmp_path / "elsewhere"
    where.mkdir()
    found = subprocess.run(
        [str(installed / "bin" / "python"), "-c", "import authz; print(authz.__file__)"],
        cwd=where,
        env=_env(where),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert found.startswith(str(installed)), found

    init = _authz(installed, where, "init", "--json")
    assert init.returncode == 0, init.stderr
    assert json.loads(init.stdout)["signing_kid"]
    check = _authz(installed, where, "policy", "check", "--json")
    assert check.returncode == 0, check.stdout + check.stderr
    digest = json.loads(check.stdout)["digest"]
    tested = _authz(installed, where, "policy", "test")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert ", 0 failed" in tested.stdout

    port = free_port()
    server = subprocess.Popen(
        [str(installed / "bin" / "authz"), "serve", "--port", str(port)],
        cwd=where,
        env=_env(where),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = wait_for(
            lambda: requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
            or server.poll() is not None,
            60,
            "the installed service to be ready",
        )
        assert ready and server.poll() is None, server.stderr.read() if server.stderr else ""
        meta = requests.get(
            f"http://127.0.0.1:{port}/.well-known/oauth-authorization-server", timeout=5
        )
        assert meta.status_code == 200
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    assert digest.startswith("sha256:")
    assert not (where / "instance").exists()


def test_a_deployment_points_at_its_own_reviewed_copy(installed: Path, tmp_path: Path) -> None:
    copy = tmp_path / "reviewed"
    shutil.copytree(ROOT / "policies", copy / "policies")
    shutil.copy(ROOT / "model.conf", copy / "model.conf")
    with (copy / "policies" / "staff.csv").open("a") as f:
        f.write("# reviewed by the practice on 2026-01-05\n")
    shipped = json.loads(_authz(installed, tmp_path, "policy", "check", "--json").stdout)
    own = _authz(installed, tmp_path, "policy", "check", "--json", AUTHZ_POLICY_DIR=str(copy))
    assert own.returncode == 0, own.stderr
    assert json.loads(own.stdout)["digest"] != shipped["digest"]
    flag = _authz(installed, tmp_path, "policy", "check", "--json", "--policies", str(copy))
    assert json.loads(flag.stdout)["digest"] == json.loads(own.stdout)["digest"]

    missing = _authz(installed, tmp_path, "init", AUTHZ_POLICY_DIR=str(tmp_path / "nowhere"))
    assert missing.returncode != 0
    assert missing.stderr.strip().splitlines() == [
        f"authz: AUTHZ_POLICY_DIR={tmp_path / 'nowhere'}: no such policy folder"
    ]
