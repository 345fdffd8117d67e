"""OpenAPI paths of the operations endpoints: health, readiness, metrics, this document."""

from __future__ import annotations

from typing import Any

from api.spec.common import EDGE, JSON, error_response, obj

TAG = "operations"
CHECKS = {
    "type": "object",
    "additionalProperties": obj(
        {"ok": {"type": "boolean"}, "detail": {"type": "string"}}, ("ok",), closed=False
    ),
}

SCHEMAS: dict[str, Any] = {
    "Readiness": obj(
        {
            "status": {"const": "ready"},
            "revision": {"type": "string", "description": "The store's newest revision"},
            "facts_revision": {
                "type": "string",
                "description": "The revision this replica's policy facts are at",
            },
            "revision_lag": {
                "type": "integer",
                "minimum": 0,
                "description": "How many revisions the facts are behind the store",
            },
            "checks": CHECKS,
        },
        ("status", "revision", "checks"),
        closed=False,
    ),
}


def _get(op_id: str, summary: str, ok: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "get": {
            "operationId": op_id,
            "summary": summary,
            "tags": [TAG],
            "security": [],
            "responses": {
                "200": ok,
                **{str(code): error_response(code) for code in EDGE},
                **extra,
            },
        }
    }


PATHS: dict[str, Any] = {
    "/healthz": _get(
        "healthz",
        "The process is alive (touches nothing else)",
        {
            "description": "Alive",
            "content": {JSON: {"schema": obj({"status": {"const": "ok"}}, ("status",), False)}},
        },
        {},
    ),
    "/readyz": _get(
        "readyz",
        "Ready to serve: the store answers, signing keys are loaded; with the revision",
        {
            "description": "Ready",
            "content": {JSON: {"schema": {"$ref": "#/components/schemas/Readiness"}}},
        },
        {"503": error_response(503)},
    ),
    "/metrics": _get(
        "metrics",
        "Prometheus metrics (text exposition format)",
        {"description": "Metrics", "content": {"text/plain": {"schema": {"type": "string"}}}},
        {},
    ),
    "/openapi.json": _get(
        "openapi",
        "This OpenAPI 3.1 document",
        {"description": "The document", "content": {JSON: {"schema": {"type": "object"}}}},
        {},
    ),
}
