"""The age bands of a caregiver's grant on a minor, per jurisdiction (`policies/age_bands.yaml`).

A minor is a `child` until the jurisdiction's adolescent age, an `adolescent` until its adult
age, then an `adult` (the grant ends). Bands are computed from the birth date at each check.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from authz.base.errors import AuthzError
from authz.policy.grants import age_on, majority_date

TABLE_NAME = "age_bands.yaml"


def default_path() -> Path:
    """The table beside the policy files in force (the shipped copy or `AUTHZ_POLICY_DIR`)."""
    from authz.policy import location

    return location.in_force().policies / TABLE_NAME


class BandError(AuthzError):
    """The age band table does not load."""

    status = 500
    title = "Policy error"
    slug = "policy"


@dataclass(frozen=True)
class Ages:
    """One jurisdiction's row: the adolescent age and the adult age."""

    jurisdiction: str
    adolescent: int
    adult: int


class Band(NamedTuple):
    """Where a minor stands today, and the next change."""

    name: str
    ages: Ages
    age: int
    #: The day the next band starts, and its name (None once adult).
    next_on: dt.date | None
    next_band: str | None

    def describe(self) -> str:
        """The band in words, as reasons name it."""
        a = self.ages
        span = {
            "child": f"under {a.adolescent}",
            "adolescent": f"{a.adolescent} to {a.adult - 1}",
            "adult": f"{a.adult} and over",
        }[self.name]
        return f"the {self.name} band of {a.jurisdiction} ({span}, policies/{TABLE_NAME})"


@dataclass(frozen=True)
class BandTable:
    """Every jurisdiction's ages, and the default."""

    rows: dict[str, Ages]
    default: str

    @classmethod
    def parse(cls, data: Any) -> BandTable:
        """A table from its YAML data; BandError names the problem."""
        if not isinstance(data, dict) or not isinstance(data.get("jurisdictions"), dict):
            raise BandError(f"{TABLE_NAME}: expected `default` and `jurisdictions`")
        rows: dict[str, Ages] = {}
        for name, ages in data["jurisdictions"].items():
            if not isinstance(ages, dict) or set(ages) != {"adolescent", "adult"}:
                raise BandError(f"{TABLE_NAME}: {name}: expected adolescent and adult ages")
            young, adult = ages["adolescent"], ages["adult"]
            if not (isinstance(young, int) and isinstance(adult, int) and 0 < young < adult <= 21):
                raise BandError(f"{TABLE_NAME}: {name}: need 0 < adolescent < adult <= 21")
            rows[str(name)] = Ages(str(name), young, adult)
        default = str(data.get("default"))
        if default not in rows:
            raise BandError(f"{TABLE_NAME}: default {default!r} is not a listed jurisdiction")
        return cls(rows, default)

    @classmethod
    def load(cls, path: Path | None = None) -> BandTable:
        """The table in `path` (policies/age_bands.yaml)."""
        path = path or default_path()
        if not path.exists():
            raise BandError(f"{path.name} is missing")
        return cls.parse(yaml.safe_load(path.read_text()))

    def ages(self, jurisdiction: str | None) -> Ages:
        """A jurisdiction's row, the default's for one without a row."""
        return self.rows.get(jurisdiction or "", self.rows[self.default])

    def band(self, jurisdiction: str | None, birth: dt.date, day: dt.date) -> Band:
        """The band of a minor born on `birth`, on `day`."""
        ages = self.ages(jurisdiction)
        age = age_on(birth, day)
        name = _name(ages, age)
        if name == "child":
            return Band(name, ages, age, majority_date(birth, ages.adolescent), "adolescent")
        if name == "adolescent":
            return Band(name, ages, age, majority_date(birth, ages.adult), "adult")
        return Band(name, ages, age, None, None)

    def band_name(self, jurisdiction: str | None, birth: dt.date, day: dt.date) -> str:
        """`band(…).name` without the rest of the band (a caregiver's check asks it)."""
        return _name(self.ages(jurisdiction), age_on(birth, day))


def _name(ages: Ages, age: int) -> str:
    """The band an age falls in: the one rule the table's ages are read by."""
    if age < ages.adolescent:
        return "child"
    return "adolescent" if age < ages.adult else "adult"


#: What each band takes from a caregiver, in words (policies/adolescents.csv decides).
NARROWS = {
    "adolescent": "no sensitivity-labelled records the minor has not shared, and no messages",
    "adult": "nothing: the grant ends",
}


def next_transition(band: Band, name: str) -> str | None:
    """'turns 12 on 2027-03-01: access narrows to …' for the review and explain, or None."""
    if band.next_on is None or band.next_band is None:
        return None
    age = band.ages.adolescent if band.next_band == "adolescent" else band.ages.adult
    verb = "access narrows to" if band.next_band == "adolescent" else "caregiver access ends:"
    return f"{name} turns {age} on {band.next_on.isoformat()}: {verb} {NARROWS[band.next_band]}"
