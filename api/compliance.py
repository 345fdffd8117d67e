"""Compliance endpoints for reviewers: the audit trail, the access review page, the policy files."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from api.auth import principal
from api.request import only_args
from api.runtime import runtime
from authz.base import pagination
from authz.compliance import audit_query, report_html, review
from authz.compliance.policy_review import published
from authz.service import access

bp = Blueprint("compliance", __name__, url_prefix="/v1")


@bp.get("/audit")
def read_audit() -> tuple[Response, int]:
    p = principal()
    org = audit_query.require_reviewer_only(p)
    args = only_args("limit", "cursor", *audit_query.FILTERS)
    page = pagination.parse(args.get("limit"), args.get("cursor"))
    result = audit_query.read(runtime().store, p.label, org, audit_query.parse_filter(args), page)
    return jsonify(result), 200


@bp.get("/review")
def access_review() -> Response:
    p = principal()
    org = audit_query.require_reviewer_only(p)
    args = only_args("client")
    rt = runtime()
    service = access.service(rt)
    service.fresh(access.Consistency(None))
    report = review.read(
        rt.store, rt.settings, p.label, org, args.get("client") or None, service.engine
    )
    response = Response(report_html.render(report), mimetype="text/html")
    response.headers["Content-Security-Policy"] = report_html.CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/policy")
def policy_files() -> tuple[Response, int]:
    p = principal()
    only_args()
    service = access.service(runtime())
    revision = service.fresh(access.Consistency(None))
    return jsonify(published.read(service.engine, p, revision)), 200
