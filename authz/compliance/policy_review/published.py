"""`GET /v1/policy`: the model and policy files in force, with their digest and revision, so a
reviewer can show that the files they reviewed are the ones every decision records."""

from __future__ import annotations

from typing import Any

from authz.base.errors import Conflict, Forbidden
from authz.base.principals import Principal
from authz.compliance.policy_review import sources
from authz.policy.engine import CheckRequest, Engine, Resource, Subject


def read(engine: Engine, caller: Principal, revision: int) -> dict[str, Any]:
    """The files as loaded; the engine decides who may read them (`policy.read`)."""
    decision = engine.check(
        CheckRequest(
            Subject.from_principal(caller),
            "policy.read",
            Resource("policy", None, caller.org_id),
        )
    )
    if not decision.allowed:
        raise Forbidden(f"reading the policy files needs a reviewer or provider: {decision.reason}")
    texts = sources.given(None, None).texts()
    with sources.snapshot(texts) as copy:
        on_disk = sources.load(copy).digest
    if on_disk != engine.policy.digest:
        # NOTE: never serve files other than those enforced under the enforced digest.
        raise Conflict(
            f"the policy files changed on disk ({on_disk}) since this process loaded "
            f"{engine.policy.digest}; restart the service to enforce them"
        )
    model = sources.MODEL_NAME
    return {
        "digest": engine.policy.digest,
        "revision": str(revision),
        "model": {"path": model, "text": texts[model]},
        "policies": [{"path": k, "text": v} for k, v in texts.items() if k != model],
        "rules": len(engine.policy.rules),
    }
