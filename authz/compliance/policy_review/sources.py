"""Where a version of the policy files comes from: a folder, or a git revision (`rev:REV`)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from authz.base.errors import ValidationFailed
from authz.policy import location
from authz.policy.age_bands import TABLE_NAME, BandError, BandTable, default_path
from authz.policy.engine import PolicyError, PolicySet

REV_PREFIX = "rev:"
MODEL_NAME = "model.conf"
POLICIES_NAME = "policies"
#: The age band table beside the policy lines (policies/age_bands.yaml).
BANDS = TABLE_NAME


@dataclass(frozen=True)
class PolicyFiles:
    """One version of `model.conf` and `policies/*.csv`; `label` is what a reviewer typed."""

    model: Path
    policies: Path
    label: str

    def display(self, path: Path) -> str:
        """A path as a reviewer recognizes it: relative to where they stand when possible."""
        try:
            return str(path.resolve().relative_to(Path.cwd().resolve()))
        except ValueError:
            return str(path)

    def texts(self) -> dict[str, str]:
        """`model.conf` and every enforced policy file, by the name a reviewer sees
        (`policies/x.csv`, `policies/recertification.yaml`)."""
        out = {MODEL_NAME: self.model.read_text(encoding="utf-8")}
        for path in location.files_of(self.policies):
            out[f"{POLICIES_NAME}/{path.name}"] = path.read_text(encoding="utf-8")
        return out


def bad(message: str) -> ValidationFailed:
    return ValidationFailed([("policies", message)], message)


def given(model: str | None, policies: str | None) -> PolicyFiles:
    """`--model FILE` and `--policies DIR`, defaulting to the files the service loads
    (`AUTHZ_POLICY_DIR`, else the copy shipped with the package)."""
    if policies:
        found = location.folder(Path(policies))
        label = policies
    else:
        found = location.in_force()
        label = str(found.policies)
    model_path = Path(model) if model else _model_or_shipped(found.model)
    return PolicyFiles(model_path, found.policies, label)


def _model_or_shipped(model: Path) -> Path:
    """A folder of CSVs without a model of its own is read with the shipped model."""
    return model if model.is_file() else location.shipped().model


def check_exists(files: PolicyFiles) -> None:
    """Missing files are bad input, said in one line."""
    if not files.policies.is_dir():
        raise bad(f"{files.display(files.policies)}: no such policy folder")
    if not files.model.is_file():
        raise bad(f"{files.display(files.model)}: no such model file")


@contextmanager
def resolve(spec: str) -> Iterator[PolicyFiles]:
    """A folder (a checkout with `model.conf` and `policies/`, or a `policies/` folder itself)
    or `rev:REV`, read with `git show` into a temporary folder removed afterwards."""
    if spec.startswith(REV_PREFIX):
        with _from_git(spec.removeprefix(REV_PREFIX), spec) as files:
            yield files
        return
    folder = Path(spec)
    if not folder.is_dir():
        raise bad(f"{spec}: no such folder (give a folder or rev:<git revision>)")
    found = location.folder(folder)
    if (folder / POLICIES_NAME).is_dir():
        files = PolicyFiles(found.model, found.policies, spec)
    else:
        files = PolicyFiles(_model_or_shipped(found.model), found.policies, spec)
    check_exists(files)
    yield files


def _git(top: Path, *args: str) -> str:
    git = shutil.which("git")
    if git is None:
        raise bad("git is not installed; compare two folders instead")
    # A fixed executable and an argument list, never a shell line.
    done = subprocess.run(  # noqa: S603
        [git, "-C", str(top), *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise bad(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "git failed")
    return done.stdout


@contextmanager
def _from_git(rev: str, label: str) -> Iterator[PolicyFiles]:
    if not rev or rev.startswith("-"):
        raise bad(f"{label}: give a git revision after rev:")
    try:
        top = Path(_git(Path.cwd(), "rev-parse", "--show-toplevel").strip())
    except ValidationFailed:
        top = location.shipped().model.resolve().parent  # a checkout: its own history
    try:
        commit = _git(top, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").strip()
    except ValidationFailed:
        raise bad(f"{label}: unknown git revision") from None
    names = [
        n
        for n in _git(top, "ls-tree", "--name-only", commit, f"{POLICIES_NAME}/").splitlines()
        if n.endswith(location.SUFFIXES)
    ]
    if not any(n.endswith(".csv") for n in names):
        raise bad(f"{label}: no {POLICIES_NAME}/*.csv at that revision")
    with tempfile.TemporaryDirectory(prefix="authz-policy-") as tmp:
        root = Path(tmp)
        (root / POLICIES_NAME).mkdir()
        for name in [MODEL_NAME, *names]:
            (root / name).write_text(_git(top, "show", f"{commit}:{name}"), encoding="utf-8")
        yield PolicyFiles(root / MODEL_NAME, root / POLICIES_NAME, label)


@contextmanager
def snapshot(texts: dict[str, str]) -> Iterator[PolicyFiles]:
    """The given texts as files, so that `PolicySet.load` digests exactly what was read."""
    with tempfile.TemporaryDirectory(prefix="authz-policy-") as tmp:
        root = Path(tmp)
        (root / POLICIES_NAME).mkdir()
        for name, text in texts.items():
            (root / name).write_text(text, encoding="utf-8")
        yield PolicyFiles(root / MODEL_NAME, root / POLICIES_NAME, "snapshot")


def load(files: PolicyFiles) -> PolicySet:
    """The engine's view of one version; a file that does not load names the version."""
    try:
        return PolicySet.load(files.model, files.policies)
    except PolicyError as exc:
        raise bad(f"{files.label}: {exc.detail} (run `authz policy check` on it)") from None
    except RuntimeError as exc:  # pycasbin's model parser
        raise bad(f"{files.label}: model.conf does not parse: {exc}") from None


def bands(files: PolicyFiles) -> BandTable:
    """The version's age band table (the installed one if the version has none)."""
    path = files.policies / BANDS
    try:
        return BandTable.load(path if path.exists() else default_path())
    except BandError as exc:
        raise bad(f"{files.label}: {exc.detail}") from None
