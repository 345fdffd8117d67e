"""Compliance endpoints for reviewers: the audit trail, the access review page, the policy files."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, jsonify, redirect, request

from api.auth import principal
from api.request import json_body, only_args
from api.runtime import runtime
from authz.accounts import recertification
from authz.base import pagination
from authz.base.errors import ValidationFailed
from authz.compliance import audit_query, report_html, review, review_link
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


def _page(html: str, csp: str) -> Response:
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = csp
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


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
    return _page(report_html.render(report), report_html.CSP)


@bp.post("/review/links")
def issue_review_link() -> tuple[Response, int]:
    p = principal()
    audit_query.require_reviewer_only(p)
    if p.kind != "reviewer":
        raise ValidationFailed([("token", "a review link is issued to a reviewer, not a service")])
    body: Any = json_body() if request.content_length else {}
    unknown = [(k, "unknown field") for k in body if k != "client"]
    client = body.get("client")
    if client is not None and not isinstance(client, str):
        unknown.append(("client", "must be a client id (cli_…)"))
    if unknown:
        raise ValidationFailed(unknown)
    rt = runtime()
    # The client must exist, in the reviewer's organization.
    if client is not None and review.org_for(rt.store, None, client) != p.org_id:
        raise ValidationFailed([("client", "is not a client of your organization")])
    issued = review_link.issue(rt.store, rt.keys, rt.settings.issuer, p, client)
    url = review_link.audience(rt.settings.issuer) + "?" + urlencode({"ticket": issued["ticket"]})
    return jsonify({"url": url, "expires_at": issued["expires_at"], "client": client}), 201


def _ticket_reviewer(ticket: Any) -> tuple[Any, Any]:
    rt = runtime()
    service = access.service(rt)
    service.fresh(access.Consistency(None))
    reviewer, client = review_link.verify(rt.keys, rt.settings.issuer, service.facts, ticket)
    return reviewer, client


@bp.get("/review/open")
def open_review() -> Response:
    args = only_args("ticket")
    reviewer, client = _ticket_reviewer(args.get("ticket"))
    rt = runtime()
    report = review.read(
        rt.store, rt.settings, reviewer.label, reviewer.org_id, client, access.service(rt).engine
    )
    actions = {"target": "/v1/review/open/recertify", "ticket": args["ticket"]}
    return _page(report_html.render(report, actions), report_html.ACTION_CSP)


@bp.post("/review/open/recertify")
def recertify_from_review() -> Response:
    only_args()
    form = request.form
    reviewer, _ = _ticket_reviewer(form.get("ticket"))
    unknown = [
        (k, "unknown field") for k in form if k not in ("ticket", "link_id", "decision", "note")
    ]
    if unknown:
        raise ValidationFailed(unknown)
    link_id = form.get("link_id", "")
    rt = runtime()
    recertification.recertify(
        rt.store,
        rt.settings,
        reviewer,
        link_id,
        {"decision": form.get("decision"), "note": form.get("note")},
    )
    # Back to the page, at the grant just decided (303: the browser reloads it with GET).
    target = "/v1/review/open?" + urlencode({"ticket": form.get("ticket", "")})
    return redirect(f"{target}#grant-{link_id}", code=303)  # type: ignore[return-value]


@bp.get("/policy")
def policy_files() -> tuple[Response, int]:
    p = principal()
    only_args()
    service = access.service(runtime())
    revision = service.fresh(access.Consistency(None))
    return jsonify(published.read(service.engine, p, revision)), 200
