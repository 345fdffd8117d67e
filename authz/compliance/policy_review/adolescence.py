"""A minor's age band, its next transition and the categories they share, as explain and the
access review show them (policies/age_bands.yaml, policies/adolescents.csv)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from authz.policy.age_bands import next_transition
from authz.policy.engine import Engine
from authz.store import audit
from authz.store.db import Store
from authz.store.models import CategoryShare


def band_view(engine: Engine, client_id: str, now: dt.datetime) -> dict[str, Any] | None:
    """The client's band today and the next change ("turns 12 on …: access narrows to …"), or
    None for an adult or a minor without a birth date."""
    band = engine.facts.band(client_id, now)
    if band is None:
        return None
    return {
        "band": band.name,
        "age": band.age,
        "jurisdiction": band.ages.jurisdiction,
        "rule": band.describe(),
        "next_transition": next_transition(band, engine.facts.name(client_id)),
        "next_on": band.next_on.isoformat() if band.next_on else None,
    }


def review_view(
    engine: Engine, store: Store, client_id: str, now: dt.datetime
) -> dict[str, Any] | None:
    """`band_view` plus the categories the minor shares, with whom, since when and in whose
    words (the review's `adolescence` field)."""
    view = band_view(engine, client_id, now)
    if view is None:
        return None
    with store.read() as session:
        rows = list(
            session.scalars(
                select(CategoryShare)
                .where(CategoryShare.minor_id == client_id, CategoryShare.withdrawn_at.is_(None))
                .order_by(CategoryShare.caregiver_id, CategoryShare.label)
            )
        )
    view["shares"] = [
        {
            "caregiver_id": r.caregiver_id,
            "caregiver": engine.facts.name(r.caregiver_id),
            "label": r.label,
            "since": audit.jsonable(r.created_at),
            "recorded_by": r.recorded_by,
            "statement": r.statement,
        }
        for r in rows
    ]
    return view
