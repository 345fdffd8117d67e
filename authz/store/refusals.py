"""Refused requests in the audit trail: who asked, what, and why; never the token itself.

A refusal is recorded in its own write, after the refused work has been abandoned, so that the
record survives the refusal and the refusal changes nothing else.
"""

from __future__ import annotations

import logging
from typing import Any

from authz.base.errors import StoreUnavailable
from authz.store.db import Store

log = logging.getLogger(__name__)
MAX_TEXT = 200


def _short(value: Any) -> Any:
    # Request values are the caller's; bound them so that a refusal cannot bloat the trail.
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return value[:MAX_TEXT] + "…"
    return value


def record(
    store: Store,
    kind: str,
    actor: str,
    org_id: str | None,
    details: dict[str, Any],
    client_ids: list[str] | None = None,
    entity_id: str | None = None,
) -> None:
    """Append one `*.refused` audit event; a store outage is logged, not raised (already denied)."""
    try:
        with store.append_audit(_short(actor), org_id) as txn:
            txn.record(
                kind,
                _short(entity_id),
                None,
                {k: _short(v) for k, v in details.items() if v is not None},
                client_ids,
            )
    except StoreUnavailable:
        log.warning("could not audit %s by %s: store unavailable", kind, actor)
