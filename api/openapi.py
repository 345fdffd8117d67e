"""`GET /openapi.json`: the OpenAPI 3.1 document, assembled from `api/spec/*`."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from api.runtime import runtime
from api.spec import SECTIONS
from api.spec.common import PROBLEM_SCHEMA, SECURITY_SCHEMES

bp = Blueprint("openapi", __name__)


def document(server_url: str | None = None) -> dict[str, Any]:
    """The whole document; section modules may not define a path or schema twice."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {"Problem": PROBLEM_SCHEMA}
    for section in SECTIONS:
        for kind, target in (("PATHS", paths), ("SCHEMAS", schemas)):
            for key, value in getattr(section, kind, {}).items():
                if key in target:
                    raise ValueError(f"{section.__name__} redefines {kind} entry {key}")
                target[key] = value
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "authz",
            "version": "1",
            "description": (
                "Authorization and delegated-access policy service for healthcare client "
                "portals. Errors are RFC 9457 problem+json (OAuth endpoints: RFC 6749 JSON)."
            ),
        },
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": SECURITY_SCHEMES},
        "security": [{"bearer": []}],
    }
    if server_url:
        doc["servers"] = [{"url": server_url.rstrip("/")}]
    return doc


@bp.get("/openapi.json")
def openapi_json() -> Response:
    return jsonify(document(runtime().settings.issuer))
