"""OpenAPI paths of `api/compliance.py`: the audit trail, the access review, the policy files."""

from __future__ import annotations

from typing import Any

from api.spec.common import PAGE_PARAMS, nullable, obj, operation, query_param, ref
from authz.compliance.audit_query import SOURCES

TAG = "compliance"
STR = {"type": "string"}
TIME = {"type": "string", "format": "date-time"}
REVISION = {"type": "string", "description": "Opaque consistency token; only grows"}
DIGEST = {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"}
CLIENT = query_param("client", {"type": "string", "maxLength": 40}, "A client id (`cli_…`)")

SCHEMAS: dict[str, Any] = {
    "AuditItem": obj(
        {
            "source": {"enum": ["changes", "decisions"]},
            "seq": {"type": "integer"},
            "id": STR,
            "at": TIME,
            "actor": nullable(STR),
            "kind": STR,
            "client_ids": {"type": "array", "items": STR},
            "revision": REVISION,
            "policy_digest": nullable(STR),
        },
        ("source", "seq", "id", "at", "kind"),
        closed=False,
    ),
    "AuditPage": obj(
        {
            "items": {"type": "array", "items": ref("AuditItem")},
            "next_cursor": nullable(STR),
            "revision": REVISION,
        },
        ("items", "next_cursor", "revision"),
        closed=False,
    ),
    "PolicyFile": obj({"path": STR, "text": STR}, ("path", "text"), closed=False),
    "PolicyFiles": obj(
        {
            "digest": DIGEST,
            "revision": REVISION,
            "model": ref("PolicyFile"),
            "policies": {"type": "array", "items": ref("PolicyFile")},
            "rules": {"type": "integer", "minimum": 0},
        },
        ("digest", "revision", "model", "policies"),
        closed=False,
    ),
}

PATHS: dict[str, Any] = {
    "/v1/audit": {
        "get": operation(
            "readAudit",
            "Every change and every decision of the organization, hash-chained, filtered "
            "(reviewers only; each read is itself audited)",
            TAG,
            (200, ref("AuditPage")),
            parameters=[
                CLIENT,
                query_param("actor", {"type": "string", "maxLength": 200}, "Who acted"),
                query_param("kind", {"type": "string", "maxLength": 100}, "e.g. link.created"),
                query_param("since", TIME, "From this time (inclusive)"),
                query_param("until", TIME, "Before this time"),
                query_param("source", {"enum": list(SOURCES)}, "changes, decisions or all"),
                *PAGE_PARAMS,
            ],
        )
    },
    "/v1/review": {
        "get": operation(
            "readAccessReview",
            "The access review page: who can act for each client and how, who did, grants "
            "pending, expiring or past the age of majority (reviewers only; audited)",
            TAG,
            (200, STR, {"text/html": {"schema": STR}}),
            parameters=[CLIENT],
        )
    },
    "/v1/policy": {
        "get": operation(
            "readPolicy",
            "The model and policy files in force, with their digest and the store revision "
            "(reviewers and providers; 409 if the files on disk differ from those enforced)",
            TAG,
            (200, ref("PolicyFiles")),
            errors=(400, 403, 409),
        )
    },
}
