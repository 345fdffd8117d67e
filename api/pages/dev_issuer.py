"""The development issuer's sign-in endpoints (development mode only; 404 otherwise): the
discovery document, an authorization endpoint with a plain "sign in as <email>" form, the
token endpoint and its JWKS. See `authz.oauth.dev_issuer`."""

from __future__ import annotations

import base64
from urllib.parse import urlencode

from flask import Blueprint, Response, abort, jsonify, request

from api.pages import render
from api.runtime import runtime
from authz.base.errors import AuthzError, ValidationFailed
from authz.oauth import dev_issuer
from authz.tokens.keys import KeyRing

bp = Blueprint("dev_issuer", __name__, url_prefix="/dev-issuer")


def _keys() -> KeyRing:
    rt = runtime()
    if not rt.settings.dev_mode or rt.dev_keys is None:
        abort(404)
    keys: KeyRing = rt.dev_keys
    return keys


@bp.get("/.well-known/openid-configuration")
def discovery() -> Response:
    _keys()
    return jsonify(dev_issuer.metadata(runtime().settings))


@bp.get("/jwks.json")
def jwks() -> Response:
    return jsonify(_keys().jwks())


@bp.route("/authorize", methods=["GET", "POST"])
def authorize() -> Response:
    keys = _keys()
    settings = runtime().settings
    source = request.args if request.method == "GET" else request.form
    try:
        params = dev_issuer.check_authorize(settings, dict(source.items()))
    except ValidationFailed as exc:
        return render("message.html", 400, title="Sign-in request refused", message=exc.detail)
    if request.method == "GET":
        return render("dev_signin.html", params=params)
    try:
        code = dev_issuer.issue_code(settings, keys, params, request.form.get("email", ""))
    except ValidationFailed as exc:
        return render("dev_signin.html", 400, params=params, error=exc.detail)
    query = urlencode({"code": code, "state": params["state"]})
    response = Response(status=303)
    response.headers["Location"] = f"{params['redirect_uri']}?{query}"
    return response


@bp.post("/token")
def token() -> tuple[Response, int]:
    keys = _keys()
    form = dict(request.form.items())
    client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("basic "):
        try:
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        except ValueError:
            client_id = secret = ""
    try:
        body = dev_issuer.redeem(runtime().settings, keys, form, client_id, secret)
    except AuthzError as exc:
        error = "invalid_client" if exc.status == 403 else "invalid_grant"
        response = jsonify({"error": error, "error_description": exc.detail})
        response.headers["Cache-Control"] = "no-store"
        return response, 401 if exc.status == 403 else 400
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response, 200
