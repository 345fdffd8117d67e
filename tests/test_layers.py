"""The core's architecture holds: imports go one way through the layers named in
`pyproject.toml` (`[tool.importlinter]`), and no package's modules import each other in a ring."""

from __future__ import annotations

import os
from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]


def test_imports_follow_the_layers_and_form_no_ring() -> None:
    here = Path.cwd()
    os.chdir(ROOT)  # grimp finds `authz` and `api` from the checkout under test
    try:
        assert lint_imports(str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True) == 0
    finally:
        os.chdir(here)
