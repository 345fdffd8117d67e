"""The command line answers at once and exactly: help without loading the service, every usage
error in one line on stderr with a non-zero exit, ports, URLs, paths and database schemes
checked before any work, `--json` on every command but `serve`."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import click
import pytest

from tests.test_cli import ROOT, run

HEAVY = ("sqlalchemy", "flask", "casbin", "authlib", "alembic", "api", "authz.runtime")


def _cpu_seconds(*args: str) -> float:
    """CPU time (user + system) of one `python -m authz.cli …` run, the interpreter included."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [sys.executable, "-m", "authz.cli", *args],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        check=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def test_help_loads_nothing_of_the_service() -> None:
    code = "import sys, authz.cli; print(' '.join(sorted(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert not [m for m in loaded if m.split(".")[0] in HEAVY or m in HEAVY]


@pytest.mark.parametrize("args", [("--help",), ("policy", "check", "--help"), ("serve", "-h")])
def test_help_costs_under_a_third_of_a_second_of_cpu(args: tuple[str, ...]) -> None:
    assert min(_cpu_seconds(*args) for _ in range(3)) <= 0.3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("serve", "--port", "99999"), "'--port': 99999 is not in the range 1<=x<=65535"),
        (("serve", "--host", "not a host"), "is not a host name or IP address"),
        (("provider", "create", "--email", "a@x.test"), "Missing option '--org'"),
        (("nope",), "No such command 'nope'"),
        (("oauth-client", "create", "--org", "o"), "Missing option '--audience'"),
        (("report", "access", "--html", "/no/dir/x.html"), "no such folder /no/dir"),
        (("demo", "--database", "/no/dir/demo.db"), "no such folder /no/dir"),
        (
            ("oauth-client", "create", "--org", "o", "--audience", "https://p.test"),
            "say what the client is for: --for portal",
        ),
        (
            ("oauth-client", "create", "--org", "o", "--audience", "x", "--jwks-file", "/no/f"),
            "'--jwks-file': File '/no/f' does not exist",
        ),
    ],
)
def test_usage_errors_are_one_line(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    proc = run(tmp_path, *args, ok=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("authz: ") and message in lines[0], lines[0]
    assert not proc.stdout


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "AUTHZ_DATABASE_URL",
            "mysql://x",
            "AUTHZ_DATABASE_URL: unsupported database mysql://; use sqlite:///",
        ),
        ("AUTHZ_TOKEN_TTL", "ten", "AUTHZ_TOKEN_TTL=ten: not a whole number"),
        ("AUTHZ_ISSUER", "authz.example", "AUTHZ_ISSUER=authz.example: expected an absolute"),
        ("AUTHZ_PORTAL_URL", "http://x:99999", "AUTHZ_PORTAL_URL=http://x:99999: not a valid"),
        ("AUTHZ_TRUSTED_ISSUERS", "{", "AUTHZ_TRUSTED_ISSUERS: expected a JSON list"),
    ],
)
@pytest.mark.parametrize("command", [("audit", "verify"), ("serve", "--port", "8639")])
def test_bad_settings_are_named_in_one_line(
    tmp_path: Path, command: tuple[str, ...], name: str, value: str, message: str
) -> None:
    run(tmp_path, "init")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AUTHZ_DATABASE_URL": f"sqlite:///{tmp_path}/a"}
    proc = subprocess.run(
        [sys.executable, "-m", "authz.cli", *command],
        cwd=tmp_path,
        env={**env, name: value},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [f"authz: {message}"] or (
        len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr
    ), proc.stderr


def test_a_bad_log_level_stops_the_service_in_one_line(tmp_path: Path) -> None:
    run(tmp_path, "init")
    proc = subprocess.run(
        [sys.executable, "-m", "authz.cli", "serve", "--port", "8639"],
        cwd=tmp_path,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "AUTHZ_DATABASE_URL": f"sqlite:///{tmp_path / 'authz.db'}",
            "AUTHZ_LOG_LEVEL": "loud",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "authz: AUTHZ_LOG_LEVEL=loud: expected DEBUG, INFO, WARNING or ERROR"
    ]


def test_outside_a_store_says_so_and_leaves_nothing_behind(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHZ_")}
    proc = subprocess.run(
        [sys.executable, "-m", "authz.cli", "audit", "verify"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"authz: no store at {tmp_path.resolve() / 'instance' / 'authz.db'}: run `authz init` "
        "there first, or set AUTHZ_DATABASE_URL to the service's store"
    ]
    assert list(tmp_path.iterdir()) == []


def _leaves(group: click.Group, path: str = "authz") -> list[tuple[str, click.Command]]:
    out = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            out += _leaves(command, f"{path} {name}")
        else:
            out.append((f"{path} {name}", command))
    return out


def test_every_command_but_serve_takes_json() -> None:
    from authz.cli import main

    without = [
        path
        for path, command in _leaves(main)
        if not any("--json" in p.opts for p in command.params)
    ]
    assert without == ["authz serve"]
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "Every command but `serve` takes `--json`" in readme


def test_oauth_client_is_a_group_with_create(tmp_path: Path) -> None:
    proc = run(tmp_path, "oauth-client", "--help")
    assert "Usage: authz oauth-client [OPTIONS] COMMAND [ARGS]..." in proc.stdout
    assert "create" in proc.stdout and "{create}" not in proc.stdout
