"""Recertification as a policy invariant: no grant lets a caregiver act at or after its review-by
date, and a token judged good is never trusted past it (the fact index's `ends_at`)."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from authz.policy import grants
from authz.policy.facts import ClientRow, FactIndex, LinkRow, OrgRow

BASE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
offsets = st.integers(min_value=-400 * 86400, max_value=400 * 86400)


@settings(max_examples=300, deadline=None)
@given(review=offsets, expires=st.none() | offsets, at=offsets)
def test_a_grant_is_never_usable_at_or_after_its_review_date(
    review: int, expires: int | None, at: int
) -> None:
    review_by = BASE + dt.timedelta(seconds=review)
    now = BASE + dt.timedelta(seconds=at)
    facts = grants.GrantFacts(
        status="active",
        expires_at=None if expires is None else BASE + dt.timedelta(seconds=expires),
        receiver_type="adult",
        receiver_birth_date=None,
        receiver_active=True,
        caregiver_active=True,
        review_by=review_by,
    )
    state = grants.effective_state(facts, now, 18)
    if now >= review_by:
        assert not state.usable
    if state.usable:
        assert state.ends_at is not None and now < state.ends_at <= review_by
    if not state.usable and now >= review_by and (expires is None or now < facts.expires_at):  # type: ignore[operator]
        assert state.effective == "lapsed"

    # The fact index answers the same, from its own copy of the date.
    index = FactIndex.from_rows(
        orgs=[OrgRow("org_1", "Org", ["linked_portal_access"])],
        clients=[
            ClientRow("cli_r", "org_1", "R", "adult", None, None, False, True),
            ClientRow("cli_c", "org_1", "C", "adult", None, None, False, True),
        ],
        links=[
            LinkRow(
                "lnk_1",
                "cli_r",
                "cli_c",
                "caregiver",
                "active",
                "full",
                facts.expires_at,
                None,
                None,
                BASE,
                review_by,
            )
        ],
    )
    link = index.link_index("lnk_1")
    assert link is not None
    assert index.grant_state(link, now) == state
    assert bool(index.paths("client:cli_c", "cli_r", now)) == state.usable
