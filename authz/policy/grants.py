"""The rules of a portal-access grant, as pure functions over plain values (no I/O)."""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

#: The organization entitlement without which no portal-access grant is active.
ENTITLEMENT = "linked_portal_access"

#: Scopes each access level allows on the care receiver's account. `full` is everything a
#: client may do for themselves; narrower levels are subsets of it.
CLIENT_SCOPES = (
    "profile",
    "appointments",
    "billing",
    "documents",
    "forms",
    "messages",
)
LEVEL_SCOPES: dict[str, frozenset[str]] = {
    "full": frozenset(CLIENT_SCOPES),
    "billing": frozenset({"profile", "billing"}),
    "scheduling": frozenset({"profile", "appointments"}),
}


def age_on(birth_date: dt.date, day: dt.date) -> int:
    """Whole years from `birth_date` to `day`."""
    years = day.year - birth_date.year
    if (day.month, day.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years


def majority_date(birth_date: dt.date, majority_age: int) -> dt.date:
    """The day a person born on `birth_date` comes of age (29 Feb → 1 Mar)."""
    try:
        return birth_date.replace(year=birth_date.year + majority_age)
    except ValueError:
        return dt.date(birth_date.year + majority_age, 3, 1)


# Named tuples, not frozen dataclasses: a caregiver's every check builds one of each, and a
# frozen dataclass takes a microsecond more to build (it sets each field through `object`).


class GrantFacts(NamedTuple):
    """What decides whether a grant lets the caregiver act now."""

    status: str | None
    expires_at: dt.datetime | None
    receiver_type: str
    receiver_birth_date: dt.date | None
    receiver_active: bool
    caregiver_active: bool
    #: The day the grant must be re-approved by, or it lapses (None: no review due).
    review_by: dt.datetime | None = None


class GrantState(NamedTuple):
    """The effective state of a grant at a moment, with the reason in plain words."""

    effective: str
    usable: bool
    reason: str
    #: When the grant stops letting the caregiver act, whatever the reason (expiry, majority,
    #: lapse): a token judged good stays good on the same facts until then.
    ends_at: dt.datetime | None
    review_by: dt.datetime | None = None


def effective_state(facts: GrantFacts, now: dt.datetime, majority_age: int) -> GrantState:
    """`active` only while recorded active, unexpired, re-approved in time (else `lapsed`),
    before majority and both accounts live."""
    ends_at = facts.expires_at
    review_by = facts.review_by if facts.status == "active" else None
    if review_by is not None:
        ends_at = review_by if ends_at is None else min(ends_at, review_by)
    if facts.receiver_type == "minor" and facts.receiver_birth_date is not None:
        comes_of_age = majority_date(facts.receiver_birth_date, majority_age)
        majority = dt.datetime.combine(comes_of_age, dt.time(), tzinfo=dt.UTC)
        ends_at = majority if ends_at is None else min(ends_at, majority)
        if now >= majority:
            return GrantState(
                "expired",
                False,
                f"the care receiver came of age ({majority_age}) on {comes_of_age.isoformat()}",
                ends_at,
                review_by,
            )
    if facts.status is None:
        return GrantState("none", False, "the link has no portal access", ends_at)
    if facts.status != "active":
        return GrantState(facts.status, False, f"portal access is {facts.status}", ends_at)
    if facts.expires_at is not None and now >= facts.expires_at:
        return GrantState("expired", False, "portal access expired", ends_at, review_by)
    if review_by is not None and now >= review_by:
        return GrantState(
            "lapsed",
            False,
            f"nobody re-approved the grant by its review date {review_by.date().isoformat()}",
            ends_at,
            review_by,
        )
    if not facts.receiver_active or not facts.caregiver_active:
        return GrantState("revoked", False, "one of the accounts was removed", ends_at, review_by)
    return GrantState("active", True, "portal access is active", ends_at, review_by)
