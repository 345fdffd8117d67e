"""Shared parts of the OpenAPI document: problem responses, security schemes, helpers.

Each `api/spec/<module>.py` describes the paths of one blueprint with these helpers; adding an
endpoint is a local edit there (and one line in `api/spec/__init__.py` for a new module).
"""

from __future__ import annotations

from typing import Any

PROBLEM = "application/problem+json"
JSON = "application/json"

#: Reason phrases used as the description of the standard error responses.
ERRORS: dict[int, str] = {
    400: "Invalid request: `errors` lists each field and what is wrong",
    401: "Missing, invalid, expired or revoked bearer token",
    403: "The token does not allow this",
    404: "Not found in the caller's organization",
    405: "Method not allowed",
    409: "Conflicts with the current state",
    410: "Gone: used, withdrawn or expired",
    413: "Request body too large",
    414: "Request target over 4,094 bytes",
    415: "Unsupported media type",
    429: "Rate limit exceeded; retry after `Retry-After` seconds",
    431: "A request header over 8,190 bytes",
    500: "Internal error; nothing was changed",
    503: "The store did not answer in time; nothing was changed (fail closed)",
}


#: What the request's edge (`api/edge.py`) may answer on any operation: a control character in
#: the path or query (400), a request line or a header over the limits (414, 431).
EDGE = (400, 414, 431)


def ref(name: str) -> dict[str, str]:
    """A `$ref` to a schema in `components.schemas`."""
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` or null (OpenAPI 3.1 style)."""
    return {"anyOf": [schema, {"type": "null"}]}


def obj(
    properties: dict[str, Any], required: tuple[str, ...] = (), closed: bool = True
) -> dict[str, Any]:
    """An object schema; request bodies are closed (unknown fields are a 400)."""
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    return schema


def error_response(status: int) -> dict[str, Any]:
    """A problem+json response; 401 and 429 carry their headers."""
    response: dict[str, Any] = {
        "description": ERRORS[status],
        "content": {PROBLEM: {"schema": ref("Problem")}},
    }
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    if status == 429:
        response["headers"] = {"Retry-After": {"schema": {"type": "integer", "minimum": 0}}}
    return response


def path_param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
    }


def query_param(
    name: str, schema: dict[str, Any], description: str, required: bool = False
) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }


PAGE_PARAMS = [
    query_param("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "Page size (≤ 500)"),
    query_param("cursor", {"type": "string", "maxLength": 200}, "Opaque cursor from next_cursor"),
]


def operation(
    operation_id: str,
    summary: str,
    tag: str,
    ok: tuple[int, dict[str, Any]] | tuple[int, dict[str, Any], dict[str, Any]],
    *,
    body: dict[str, Any] | None = None,
    parameters: list[dict[str, Any]] | None = None,
    errors: tuple[int, ...] = (400, 401, 403, 404),
    public: bool = False,
    links: dict[str, Any] | None = None,
    body_required: bool = True,
) -> dict[str, Any]:
    """One operation with its success response and the standard problem responses.

    Every bearer-protected operation may also answer 401 (no or bad token), 429 (rate limit),
    500 and 503 (store unavailable, fail closed); those are added here so no one forgets them.
    """
    status, schema = ok[0], ok[1]
    success: dict[str, Any] = {"description": "Success", "content": {JSON: {"schema": schema}}}
    if len(ok) == 3:
        success["content"] = ok[2]
    if links:
        success["links"] = links
    codes = set(errors) | set(EDGE) | {500, 503}
    if not public:
        codes |= {401}
    op: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        "responses": {
            str(status): success,
            **{str(code): error_response(code) for code in sorted(codes)},
        },
    }
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = {"required": body_required, "content": {JSON: {"schema": body}}}
    op["security"] = [] if public else [{"bearer": []}]
    return op


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": obj(
                {"field": {"type": "string"}, "message": {"type": "string"}},
                ("field", "message"),
                closed=False,
            ),
        },
    },
}

SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT (RFC 9068 access token issued by this service)",
    },
    "clientBasic": {
        "type": "http",
        "scheme": "basic",
        "description": "client_secret_basic: the OAuth client's id and secret",
    },
}
