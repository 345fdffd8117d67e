"""Administration endpoints: parse, call one use case, return its result. Nothing else."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from api.auth import principal
from api.request import json_body, only_args
from api.runtime import runtime
from authz.accounts import (
    category_shares,
    clients,
    contacts,
    invites,
    links,
    notifications,
    outbox,
    payments,
    recertification,
)
from authz.base import pagination
from authz.base.principals import require_admin, require_reader
from authz.service import access

bp = Blueprint("admin", __name__, url_prefix="/v1")


def _ok(body: dict[str, Any], status: int = 200) -> tuple[Response, int]:
    return jsonify(body), status


def _admin() -> tuple[Any, str]:
    p = principal()
    return p, require_admin(p)


def _reader() -> str:
    return require_reader(principal())


# -- clients ------------------------------------------------------------------------------------


@bp.post("/clients")
def create_client() -> tuple[Response, int]:
    p, org = _admin()
    return _ok(clients.create_client(runtime().store, p.label, org, json_body()), 201)


@bp.get("/clients")
def list_clients() -> tuple[Response, int]:
    org = _reader()
    args = only_args("limit", "cursor", "email", "client_group")
    page = pagination.parse(args.get("limit"), args.get("cursor"))
    return _ok(
        clients.list_clients(
            runtime().store, org, page, args.get("email"), args.get("client_group")
        )
    )


@bp.get("/clients/<client_id>")
def get_client(client_id: str) -> tuple[Response, int]:
    return _ok(clients.get_client(runtime().store, _reader(), client_id))


@bp.patch("/clients/<client_id>")
def patch_client(client_id: str) -> tuple[Response, int]:
    p, org = _admin()
    return _ok(clients.patch_client(runtime().store, p.label, org, client_id, json_body()))


# -- contacts -----------------------------------------------------------------------------------


@bp.post("/clients/<client_id>/contacts")
def create_contact(client_id: str) -> tuple[Response, int]:
    p, org = _admin()
    return _ok(contacts.create_contact(runtime().store, p.label, org, client_id, json_body()), 201)


@bp.get("/clients/<client_id>/contacts")
def list_contacts(client_id: str) -> tuple[Response, int]:
    return _ok(contacts.list_contacts(runtime().store, _reader(), client_id))


@bp.get("/clients/<client_id>/contacts/<contact_id>")
def get_contact(client_id: str, contact_id: str) -> tuple[Response, int]:
    return _ok(contacts.get_contact(runtime().store, _reader(), client_id, contact_id))


@bp.patch("/clients/<client_id>/contacts/<contact_id>")
def patch_contact(client_id: str, contact_id: str) -> tuple[Response, int]:
    p, org = _admin()
    return _ok(
        contacts.patch_contact(runtime().store, p.label, org, client_id, contact_id, json_body())
    )


@bp.delete("/clients/<client_id>/contacts/<contact_id>")
def delete_contact(client_id: str, contact_id: str) -> tuple[Response, int]:
    p, org = _admin()
    return _ok(contacts.delete_contact(runtime().store, p.label, org, client_id, contact_id))


# -- links and portal access --------------------------------------------------------------------


@bp.post("/clients/<client_id>/links")
def create_link(client_id: str) -> tuple[Response, int]:
    p, org = _admin()
    rt = runtime()
    return _ok(links.create_link(rt.store, rt.settings, p, org, client_id, json_body()), 201)


@bp.get("/clients/<client_id>/links")
def list_links(client_id: str) -> tuple[Response, int]:
    rt = runtime()
    return _ok(links.list_links(rt.store, rt.settings, _reader(), client_id))


@bp.get("/clients/<client_id>/links/<link_id>")
def get_link(client_id: str, link_id: str) -> tuple[Response, int]:
    rt = runtime()
    return _ok(links.get_link(rt.store, rt.settings, _reader(), client_id, link_id))


@bp.patch("/clients/<client_id>/links/<link_id>")
def patch_link(client_id: str, link_id: str) -> tuple[Response, int]:
    p, org = _admin()
    rt = runtime()
    return _ok(links.patch_link(rt.store, rt.settings, p, org, client_id, link_id, json_body()))


@bp.delete("/clients/<client_id>/links/<link_id>")
def delete_link(client_id: str, link_id: str) -> tuple[Response, int]:
    p, org = _admin()
    return _ok(links.delete_link(runtime().store, p, org, client_id, link_id))


@bp.get("/invites/<token>")
def get_invite(token: str) -> tuple[Response, int]:
    rt = runtime()
    policy = access.service(rt).policy
    return _ok(invites.get_invite(rt.store, policy, principal(), token))


@bp.post("/invites/<token>/proof")
def prove_invite(token: str) -> tuple[Response, int]:
    rt = runtime()
    return _ok(invites.prove(rt.store, rt.settings, principal(), token, json_body()))


@bp.post("/invites/<token>/accept")
def accept_invite(token: str) -> tuple[Response, int]:
    rt = runtime()
    return _ok(invites.accept(rt.store, rt.settings, principal(), token))


@bp.post("/invites/<token>/decline")
def decline_invite(token: str) -> tuple[Response, int]:
    rt = runtime()
    body = json_body() if request.content_length else {}
    return _ok(invites.decline(rt.store, rt.settings, principal(), token, body))


@bp.post("/links/<link_id>/portal-access/revoke")
def revoke_portal_access(link_id: str) -> tuple[Response, int]:
    rt = runtime()
    body = json_body() if request.content_length else {}
    return _ok(links.end_grant(rt.store, rt.settings, principal(), link_id, body))


@bp.post("/links/<link_id>/portal-access/recertify")
def recertify_portal_access(link_id: str) -> tuple[Response, int]:
    rt = runtime()
    return _ok(recertification.recertify(rt.store, rt.settings, principal(), link_id, json_body()))
# -- an adolescent's shared categories ---------------------------------------------------------


def _share_args(client_id: str) -> tuple[Any, str, str, Any, str]:
    """The actor (the minor's own token, or a provider) and the body of a share or withdrawal."""
    p = principal()
    actor = f"{p.kind}:{p.id}"
    if p.kind == "client" and p.via != "self":
        # A caregiver's switched token speaks for the caregiver, never for the minor: the use
        # case refuses any client but the minor.
        actor = f"client:{p.actor or p.id} ({p.via})"
    body = json_body()
    only_args()
    return (
        p.org_id,
        actor,
        str(body.get("caregiver_id", "")),
        body.get("labels"),
        body.get("statement", "") if isinstance(body.get("statement", ""), str) else "",
    )


@bp.post("/clients/<client_id>/shares")
def share_categories(client_id: str) -> tuple[Response, int]:
    org, actor, caregiver, labels, statement = _share_args(client_id)
    rt = runtime()
    return _ok(category_shares.share(rt.store, actor, org, client_id, caregiver, labels, statement))


@bp.post("/clients/<client_id>/shares/withdraw")
def withdraw_categories(client_id: str) -> tuple[Response, int]:
    org, actor, caregiver, labels, statement = _share_args(client_id)
    rt = runtime()
    return _ok(
        category_shares.withdraw(rt.store, actor, org, client_id, caregiver, labels, statement)
    )


# -- payment methods, notifications, outbox -----------------------------------------------------


@bp.post("/clients/<client_id>/payment-methods")
def register_payment_method(client_id: str) -> tuple[Response, int]:
    p, org = _admin()
    return _ok(payments.register(runtime().store, p.label, org, client_id, json_body()), 201)


@bp.get("/clients/<client_id>/payment-methods")
def list_payment_methods(client_id: str) -> tuple[Response, int]:
    return _ok(payments.list_for_client(runtime().store, _reader(), client_id))


@bp.get("/clients/<client_id>/notification-recipients")
def notification_recipients(client_id: str) -> tuple[Response, int]:
    org = _reader()
    args = only_args("event")
    return _ok(notifications.recipients(runtime().store, org, client_id, args.get("event", "")))


@bp.get("/outbox")
def list_outbox() -> tuple[Response, int]:
    _p, org = _admin()
    args = only_args("limit", "cursor", "status")
    page = pagination.parse(args.get("limit"), args.get("cursor"))
    return _ok(outbox.list_messages(runtime().store, org, page, args.get("status")))


@bp.before_request
def _no_body_on_reads() -> None:
    # Bodies on GET/DELETE are ignored by many proxies; refuse them rather than guess.
    if request.method in ("GET", "DELETE") and request.content_length:
        from authz.base.errors import ValidationFailed

        raise ValidationFailed([("body", f"{request.method} takes no body")])
