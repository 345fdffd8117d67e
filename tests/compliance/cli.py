"""Running the `authz` command line as a user would: a subprocess on a given store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def authz(db_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`authz ARGS` against `db_url`, with only the AUTHZ_* settings given here."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("AUTHZ_")}
    return subprocess.run(
        [sys.executable, "-m", "authz.cli", *args],
        cwd=ROOT,
        env={**base, "PYTHONPATH": str(ROOT), "AUTHZ_DATABASE_URL": db_url, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def authz_json(db_url: str, *args: str, **env: str) -> tuple[int, Any]:
    done = authz(db_url, *args, "--json", **env)
    assert done.stdout.strip(), done.stderr
    return done.returncode, json.loads(done.stdout)
