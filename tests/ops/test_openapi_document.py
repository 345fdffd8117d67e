"""The served OpenAPI document describes exactly the endpoints the service has."""

from __future__ import annotations

import re
from typing import Any

from tests.helpers import Api

METHODS = {"get", "post", "put", "patch", "delete"}


def _doc(api: Api) -> dict[str, Any]:
    r = api.http.get("/openapi.json")
    assert r.status_code == 200
    assert r.mimetype == "application/json"
    return dict(r.get_json())


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def test_document_lists_every_route_and_nothing_else(api: Api) -> None:
    doc = _doc(api)
    assert doc["openapi"].startswith("3.1")
    served = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method.lower())
        for rule in api.app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods or ()
        if method.lower() in METHODS
    }
    documented = {
        (path, method)
        for path, item in doc["paths"].items()
        for method in item
        if method in METHODS
    }
    assert served - documented == set(), "endpoints missing from /openapi.json"
    assert documented - served == set(), "documented endpoints that do not exist"


def test_bodies_are_closed_and_errors_are_problems(api: Api) -> None:
    doc = _doc(api)
    schemas = doc["components"]["schemas"]
    assert set(schemas["Problem"]["required"]) == {"type", "title", "status", "detail"}
    assert "errors" in schemas["Problem"]["properties"]
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in METHODS:
                continue
            body = op.get("requestBody", {}).get("content", {})
            if "application/json" in body:
                schema = _resolve(doc, body["application/json"]["schema"])
                assert schema.get("additionalProperties") is False, (method, path)
            if op.get("security") == [{"bearer": []}]:
                unauthorized = op["responses"]["401"]["content"]
                assert "application/problem+json" in unauthorized, (method, path)
                assert "503" in op["responses"], (method, path)
    token = doc["paths"]["/oauth/token"]["post"]
    assert "application/x-www-form-urlencoded" in token["requestBody"]["content"]
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert "/v1/links/{link_id}/portal-access/revoke" in doc["paths"]
