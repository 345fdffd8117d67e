"""`/v1/access/*`: access decisions for portal backends, and the lists that agree with them.

The caller's bearer token is authenticated by the access service against the facts it makes
fresh for the request (`AccessService.begin`: the same answer as `api.auth.principal` without a
store read per token), so a check costs one revision read.
"""

from __future__ import annotations

from typing import Any

import orjson
from flask import Blueprint, Response, g, jsonify

from api import metrics
from api.auth import bearer_token
from api.request import json_body, only_args
from api.runtime import runtime
from authz.base.errors import ValidationFailed
from authz.service import access

bp = Blueprint("access", __name__, url_prefix="/v1/access")


def _caller(consistency: Any = None) -> access.Fresh:
    fresh = access.service(runtime()).begin(bearer_token(), consistency)
    g.principal = fresh.principal  # for the request log line, as `api.auth.principal` does
    return fresh


def _body_and_caller() -> tuple[dict[str, Any], access.Fresh]:
    try:
        body = json_body()
    except ValidationFailed:
        _caller()  # an unauthenticated request hears 401 before any 400
        raise
    return body, _caller(body.get("consistency"))


@bp.post("/check")
def check() -> Response:
    body, caller = _body_and_caller()
    answer = access.service(runtime()).check(caller, body)
    metrics.observe_decisions("check", int(answer["allowed"]), int(not answer["allowed"]))
    return jsonify(answer)


@bp.post("/check-batch")
def check_batch() -> Response:
    body, caller = _body_and_caller()
    answer = access.service(runtime()).check_batch(caller, body)
    allowed = sum(1 for r in answer["results"] if r["allowed"])
    metrics.observe_decisions("check-batch", allowed, len(answer["results"]) - allowed)
    # A thousand answers: orjson writes them several times faster than `json`.
    return Response(
        orjson.dumps(answer, option=orjson.OPT_APPEND_NEWLINE), mimetype="application/json"
    )


@bp.get("/accounts")
def accounts() -> Response:
    args = only_args("login")
    return jsonify(access.service(runtime()).accounts(_caller(), args.get("login")))


@bp.get("/who-can")
def who_can() -> Response:
    args = only_args("client")
    if not args.get("client"):
        raise ValidationFailed([("client", "is required")])
    return jsonify(access.service(runtime()).who_can(_caller(), args["client"]))
