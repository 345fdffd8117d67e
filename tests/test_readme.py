"""The README's examples run as written: `make run`'s seeding on a port of its own, then every
`sh` block of "Try it", "Deciding access" and "Compliance review", in order, in one bash session
(`set -euo pipefail`), in a folder that is not the checkout. A non-zero exit or an answer other
than the one the README shows fails the test. (`sh deploy` blocks are an operator's commands
for their own deployment, not examples against `make run`.)"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ops.serving import Server, free_port

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("## Try it", "## Deciding access", "## Compliance review")
#: What each block must print (from the README's own comments), in order.
EXPECTED = (
    ("/oauth/token", '{"token_type":"Bearer","scope":"authz:admin"}'),
    ("verification: unbroken",),
    (
        '{"name":"Jenna","via":"self"}',
        '{"name":"Sam","via":"delegation"}',
        '{"allowed":true,"reason":"parent Jenna acts for Sam through link lnk_',
        '"rule":"policies/caregivers.csv:24: p, caregiver_full, invoice.pay, allow"}',
        '{"allowed":false,"reason":"payment method pm_demo_jenna_visa does not belong to Sam',
        '"rule":"policies/payments.csv:5: p, payment_method_of_another_client, invoice.pay, deny"',
        '["Alex","Casey"]',
    ),
    (
        '"org.created"\n"provider.created"\n"reviewer.created"',
        '{"digest":"sha256:',
        "audit trail: unbroken",
        "wrote review.html",
        "DECISION  DENY",
    ),
    ('["client","expires_at","url"]',),
)


def shell_blocks(readme: str) -> list[str]:
    """Every ```sh block of the sections the README says run as written, in order."""
    blocks = []
    for title in SECTIONS:
        section = readme.split(title, 1)[1].split("\n## ", 1)[0]
        blocks += re.findall(r"^```sh\n(.*?)^```$", section, re.S | re.M)
    return blocks


def _checkout_free_folder(tmp_path: Path) -> Path:
    """A folder like the checkout as `make run` leaves it: `.venv/bin/activate` puts `authz`
    (this source tree) on PATH."""
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "authz").write_text(f'#!/bin/sh\nexec {sys.executable} -m authz.cli "$@"\n')
    (bin_dir / "authz").chmod(0o755)
    (bin_dir / "activate").write_text(
        f'export PATH="{bin_dir}:$PATH"\nexport PYTHONPATH="{ROOT}"\n'
    )
    return tmp_path


@pytest.mark.slow
def test_the_readme_examples_run_as_written(tmp_path: Path) -> None:
    blocks = shell_blocks((ROOT / "README.md").read_text())
    assert len(blocks) == len(EXPECTED)
    where = _checkout_free_folder(tmp_path)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHZ_")}
    run_env = {
        "AUTHZ_DEV_MODE": "1",
        "AUTHZ_ISSUER": f"http://127.0.0.1:{port}",
        "AUTHZ_PORTAL_URL": f"http://127.0.0.1:{port}/portal",
    }
    seeded = subprocess.run(  # what `make run` does first
        [sys.executable, "-m", "authz.cli", "init", "--demo"],
        cwd=where,
        env={**env, **run_env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert seeded.returncode == 0, seeded.stderr
    assert f"at http://127.0.0.1:{port}" in seeded.stdout
    assert ". instance/demo.env" in seeded.stdout
    store = {"AUTHZ_DATABASE_URL": f"sqlite:///{where / 'instance' / 'authz.db'}"}
    server = Server({**run_env, **store}, port=port)
    try:
        server.wait_ready()
        # One session, as a reader would type them: what a block defines, the next one uses.
        marks = [f"@@ block {n} @@" for n in range(len(blocks))]
        script = "".join(
            f"echo '{mark}'\n{block}" for mark, block in zip(marks, blocks, strict=True)
        )
        done = subprocess.run(
            ["bash", "-c", "set -euo pipefail\n" + script],
            cwd=where,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        started = [mark for mark in marks if mark in done.stdout]
        assert done.returncode == 0, f"{started[-1:]} failed:\n{done.stdout[-2000:]}\n{done.stderr}"
        outputs = re.split(r"^@@ block \d+ @@$", done.stdout, flags=re.M)[1:]
        for number, (output, expected) in enumerate(zip(outputs, EXPECTED, strict=True)):
            for answer in expected:
                assert answer in output, f"block {number}: {answer!r} not in\n{output}"
    finally:
        server.stop()
    assert (where / "review.html").is_file() and (where / "review-sam.html").is_file()


def test_make_run_points_every_url_at_its_port() -> None:
    """`make run PORT=…` serves, issues and links emails on that port (not :8000)."""
    dry = subprocess.run(
        ["make", "-n", "-C", str(ROOT), "run", "PORT=8637", "HOST=127.0.0.1"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for command in ("init --demo", "serve --host 127.0.0.1 --port 8637"):
        (line,) = [x for x in dry.splitlines() if command in x]
        assert "AUTHZ_ISSUER=http://127.0.0.1:8637 " in line
        assert "AUTHZ_PORTAL_URL=http://127.0.0.1:8637/portal " in line


def test_the_readme_says_authz_demo_uses_a_store_of_its_own() -> None:
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert (
        "on a throwaway store of its own, so its ids match nothing on the running server" in readme
    )
