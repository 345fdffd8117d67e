"""Where the policy files in force live: the reviewed copy shipped inside the package, or a
deployment's own copy named by `AUTHZ_POLICY_DIR`.

`model.conf` and `policies/` stay at the repository root, where reviewers read them; the package
carries them as `authz/policy/shipped/` (links to the root in a checkout, copies in a wheel),
so an installed service never looks for a working copy.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from authz.base.errors import AuthzError

ENV = "AUTHZ_POLICY_DIR"
MODEL_NAME = "model.conf"
POLICIES_NAME = "policies"
SHIPPED = Path(__file__).resolve().parent / "shipped"


class PolicyFilesMissing(AuthzError):
    """The configured policy files are not there: the service refuses to start without them."""

    status = 500
    title = "Policy files missing"
    slug = "policy"


@dataclass(frozen=True)
class Location:
    """One `model.conf` and the folder of `policies/*.csv` (with `tests/` inside)."""

    model: Path
    policies: Path


#: What a policy folder holds that the service enforces and digests: the rules (`*.csv`) and
#: the rule tables beside them (`*.yaml`: recertification, …). `tests/` holds their cases.
SUFFIXES = (".csv", ".yaml")


def files_of(policies: Path) -> list[Path]:
    """The enforced files of a policy folder, in the order they are digested."""
    return sorted(p for p in policies.iterdir() if p.suffix in SUFFIXES and p.is_file())


def shipped() -> Location:
    """The files installed with the package (in a checkout, the root's, which reviewers know)."""
    return Location((SHIPPED / MODEL_NAME).resolve(), (SHIPPED / POLICIES_NAME).resolve())


def in_force(env: Mapping[str, str] | None = None) -> Location:
    """`AUTHZ_POLICY_DIR` when set (checked, one-line error when missing), else the shipped copy."""
    chosen = (os.environ if env is None else env).get(ENV, "").strip()
    if not chosen:
        return shipped()
    found = folder(Path(chosen))
    if not found.policies.is_dir():
        raise PolicyFilesMissing(f"{ENV}={chosen}: no such policy folder")
    if not found.model.is_file():
        raise PolicyFilesMissing(f"{ENV}={chosen}: no {MODEL_NAME} in it or beside its policies")
    return found


def folder(path: Path) -> Location:
    """A copy of the files: a folder holding `model.conf` and `policies/`, or a `policies/` folder
    with `model.conf` inside it or one level up (where a copied checkout keeps it)."""
    if (path / POLICIES_NAME).is_dir():
        return Location(path / MODEL_NAME, path / POLICIES_NAME)
    for candidate in (path / MODEL_NAME, path.parent / MODEL_NAME):
        if candidate.is_file():
            return Location(candidate, path)
    return Location(path / MODEL_NAME, path)
