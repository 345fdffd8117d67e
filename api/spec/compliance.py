"""OpenAPI paths of `api/compliance.py`: the audit trail, the access review, the policy files."""

from __future__ import annotations

from typing import Any

from api.spec.common import (
    PAGE_PARAMS,
    error_response,
    nullable,
    obj,
    operation,
    query_param,
    ref,
)
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
    "ReviewLink": obj(
        {"url": STR, "expires_at": TIME, "client": nullable(STR)},
        ("url", "expires_at"),
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


def _with_401(op: dict[str, Any]) -> dict[str, Any]:
    """A page opened by a signed link, not a bearer token: a bad link is a 401 all the same."""
    op["responses"]["401"] = error_response(401)
    return op


def _form_operation() -> dict[str, Any]:
    """The review page's re-approve and end buttons: an HTML form post, answered by a redirect
    back to the page (or a problem)."""
    op = operation(
        "recertifyFromReview",
        "Re-approve a grant as still needed or end it, with a note, from a signed review page "
        "(audited as its reviewer); 303 back to the page",
        TAG,
        (303, STR),
        errors=(400, 404, 409),
        public=True,
    )
    op["responses"]["303"] = {
        "description": "Done: back to the review page at that grant",
        "headers": {"Location": {"schema": STR}},
    }
    fields = {
        "ticket": STR,
        "link_id": STR,
        "decision": {"enum": ["still_needed", "end"]},
        "note": {"type": "string", "maxLength": 2000},
    }
    op["requestBody"] = {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": obj(fields, ("ticket", "link_id", "decision", "note"))
            }
        },
    }
    return _with_401(op)


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
            "The access review page: a summary of what needs attention, then per client who "
            "can act and how, every grant with its state and reasons, disclosures, who acted, "
            "and the family graphs (reviewers only; audited)",
            TAG,
            (200, STR, {"text/html": {"schema": STR}}),
            parameters=[CLIENT],
        )
    },
    "/v1/review/links": {
        "post": operation(
            "issueReviewLink",
            "A short-lived signed link (15 minutes) that opens the review in a browser as this "
            "reviewer, with re-approve and end buttons (reviewers only; audited)",
            TAG,
            (201, ref("ReviewLink")),
            body=obj({"client": {"type": "string", "maxLength": 40}}, ()),
            body_required=False,
            errors=(400, 403, 404),
        )
    },
    "/v1/review/open": {
        "get": _with_401(
            operation(
                "openReview",
                "The review page opened from a signed link (audited as its reviewer); a bad, "
                "expired or foreign link opens nothing",
                TAG,
                (200, STR, {"text/html": {"schema": STR}}),
                parameters=[
                    query_param("ticket", {"type": "string"}, "From POST /v1/review/links")
                ],
                errors=(400,),
                public=True,
            )
        )
    },
    "/v1/review/open/recertify": {
        "post": _form_operation(),
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
