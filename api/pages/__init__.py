"""The hosted pages under `/portal/`: the caregiver's invite (proof of relationship, accept,
decline) and "my access" for both sides. Server-rendered Jinja, plain HTML and CSS.

Each view parses the form, calls one use case of the core (the same ones the JSON API calls)
and renders its answer; a refusal of the core is shown in plain words with its status.
"""

from __future__ import annotations

import secrets
from typing import Any

from flask import Blueprint, Flask, Response, redirect, render_template, request, session

from api.pages import page_session
from api.runtime import runtime
from authz.accounts import invites, links
from authz.base import pagination
from authz.base.errors import AuthzError, ValidationFailed
from authz.base.principals import Principal
from authz.oauth import identity, portal_exchange
from authz.service import access, my_access
from authz.tokens.rfc9068 import InvalidToken

bp = Blueprint("pages", __name__, url_prefix="/portal", template_folder="templates")


def init_app(app: Flask) -> None:
    """Register the pages and their sign-in."""
    page_session.init_app(app, runtime_of(app).settings)
    app.register_blueprint(bp)
    from api.pages import dev_issuer

    app.register_blueprint(dev_issuer.bp)


def runtime_of(app: Flask) -> Any:
    return app.extensions["authz"]


def render(template: str, status: int = 200, **context: Any) -> Response:
    """A page, never cached, never framed."""
    body = render_template(
        f"portal/{template}",
        login=page_session.current(),
        csrf_token=page_session.csrf_token() if request.path.startswith("/portal") else "",
        **context,
    )
    response = Response(body, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["Referrer-Policy"] = "no-referrer"  # invite links are secrets
    return response


def problem_page(exc: AuthzError, title: str = "That did not work") -> Response:
    return render("message.html", exc.status, title=title, message=exc.detail)


@bp.before_request
def _csrf() -> Response | None:
    if request.method == "POST" and not page_session.csrf_ok(
        request.form.get(page_session.CSRF_FIELD)
    ):
        return render(
            "message.html",
            400,
            title="This form could not be accepted",
            message="The form was not sent from this page, or your session ended. "
            "Go back, reload the page and try again.",
        )
    return None


def _safe_next(raw: str | None) -> str:
    if raw and raw.startswith("/portal/") and not raw.startswith("//") and "\\" not in raw:
        return raw
    return "/portal/me"


# -- sign-in ------------------------------------------------------------------------------------


@bp.get("/login")
def login() -> Response:
    client = page_session.client()
    if client is None:
        return render(
            "message.html",
            503,
            title="Sign-in is not set up",
            message="This service's pages have no sign-in configured; ask the practice.",
        )
    session["next"] = _safe_next(request.args.get("next"))
    redirect_uri = runtime().settings.issuer.rstrip("/") + "/portal/callback"
    try:
        response: Response = client.authorize_redirect(
            redirect_uri, nonce=secrets.token_urlsafe(16)
        )
    except Exception as exc:  # the issuer's discovery document could not be read
        return render(
            "message.html",
            503,
            title="Sign-in is unavailable",
            message=f"The sign-in service did not answer ({type(exc).__name__}); try again later.",
        )
    return response


@bp.get("/callback")
def callback() -> Response:
    client = page_session.client()
    if client is None:
        return redirect("/portal/login")  # type: ignore[return-value]
    rt = runtime()
    try:
        token = client.authorize_access_token()
        found = identity.verify_id_token(token.get("id_token", ""), rt.settings, rt.dev_keys)
    except (InvalidToken, AuthzError) as exc:
        return render("message.html", 400, title="Sign-in failed", message=str(exc))
    except Exception as exc:  # Authlib's OAuthError, a mismatched state, an unreachable issuer
        return render(
            "message.html",
            400,
            title="Sign-in failed",
            message=f"The sign-in could not be completed ({type(exc).__name__}); try again.",
        )
    if not found.email_verified:
        return render(
            "message.html", 403, title="Sign-in failed", message="Your email is not verified."
        )
    target = _safe_next(session.get("next"))
    page_session.start(page_session.PageLogin(found.iss, found.sub, found.email, token["id_token"]))
    return redirect(target, 303)  # type: ignore[return-value]


@bp.post("/logout")
def logout() -> Response:
    session.clear()
    return redirect("/portal/signed-out", 303)  # type: ignore[return-value]


@bp.get("/signed-out")
def signed_out() -> Response:
    return render("message.html", title="Signed out", message="You are signed out.")


@bp.get("/")
def home() -> Response:
    return redirect("/portal/me", 303)  # type: ignore[return-value]


def _need_login() -> Response | None:
    if page_session.current() is None:
        nxt = request.full_path.rstrip("?")
        return render("signin.html", next=_safe_next(nxt))
    return None


# -- the invite ---------------------------------------------------------------------------------


def _invite_principal(token: str) -> Principal:
    who = page_session.current()
    assert who is not None
    return invites.principal_for_login(runtime().store, token, who.email, who.label)


def _invite_page(
    token: str, status: int = 200, error: str | None = None, notice: str | None = None
) -> Response:
    rt = runtime()
    try:
        principal = _invite_principal(token)
        view = invites.get_invite(rt.store, access.service(rt).policy, principal, token)
    except AuthzError as exc:
        titles = {403: "This invite is not yours", 404: "This invite link is not valid"}
        return problem_page(exc, titles.get(exc.status, "That did not work"))
    return render("invite.html", status, invite=view, token=token, error=error, notice=notice)


@bp.get("/invites/<token>")
def invite(token: str) -> Response:
    return _need_login() or _invite_page(token)


@bp.post("/invites/<token>/proof")
def prove(token: str) -> Response:
    if (needed := _need_login()) is not None:
        return needed
    rt = runtime()
    try:
        principal = _invite_principal(token)
        invites.prove(
            rt.store,
            rt.settings,
            principal,
            token,
            {"birth_date": request.form.get("birth_date", "")},
        )
    except ValidationFailed as exc:
        message = "; ".join(e["message"] for e in exc.errors)
        return _invite_page(token, 400, error=f"The date of birth {message}.")
    except AuthzError as exc:
        if exc.status in (403, 404):
            return problem_page(exc)
        return _invite_page(token, exc.status, error=exc.detail)
    return _invite_page(token, notice="Thank you: the relationship is confirmed.")


@bp.post("/invites/<token>/accept")
def accept(token: str) -> Response:
    if (needed := _need_login()) is not None:
        return needed
    rt = runtime()
    try:
        invites.accept(rt.store, rt.settings, _invite_principal(token), token)
    except AuthzError as exc:
        if exc.status in (403, 404):
            return problem_page(exc)
        return _invite_page(token, exc.status, error=exc.detail)
    return _invite_page(token, notice="You accepted. The access is active now.")


@bp.post("/invites/<token>/decline")
def decline(token: str) -> Response:
    if (needed := _need_login()) is not None:
        return needed
    rt = runtime()
    try:
        invites.decline(
            rt.store,
            rt.settings,
            _invite_principal(token),
            token,
            {"reason": request.form.get("reason") or None},
        )
    except AuthzError as exc:
        if exc.status in (403, 404):
            return problem_page(exc)
        return _invite_page(token, exc.status, error=exc.detail)
    return _invite_page(token, notice="You declined. Nothing was granted.")


# -- my access ----------------------------------------------------------------------------------


def _mine() -> list[tuple[dict[str, str], Principal]]:
    who = page_session.current()
    assert who is not None
    return [
        (acct, Principal(kind="client", id=acct["client_id"], org_id=acct["org_id"]))
        for acct in my_access.login_accounts(runtime().store, who.email)
    ]


def _principal_in(org_id: str) -> Principal | None:
    return next((p for acct, p in _mine() if acct["org_id"] == org_id), None)


@bp.get("/me")
def me() -> Response:
    if (needed := _need_login()) is not None:
        return needed
    rt = runtime()
    svc = access.service(rt)
    wanted, cursor = request.args.get("client"), request.args.get("cursor")
    practices = []
    try:
        for acct, principal in _mine():
            svc.begin(principal)
            overview = my_access.overview(svc, principal)
            for item in overview["accounts"]:
                page = pagination.parse(10, cursor if item["client_id"] == wanted else None)
                item["activity"] = my_access.activity(svc, principal, item["client_id"], page)
            practices.append({**acct, "overview": overview})
    except AuthzError as exc:
        return problem_page(exc)
    return render("me.html", practices=practices, notice=request.args.get("notice"))


@bp.post("/me/switch")
def switch() -> Response:
    if (needed := _need_login()) is not None:
        return needed
    who = page_session.current()
    assert who is not None
    principal = _principal_in(request.form.get("org_id", ""))
    target = request.form.get("client_id", "")
    if principal is None:
        return render("message.html", 404, title="Not found", message="No such practice.")
    try:
        issued = portal_exchange.switch(
            runtime(), who.id_token, principal.org_id, principal.id, target
        )
    except AuthzError as exc:
        return problem_page(exc, "The switch was refused")
    return render("switched.html", issued=issued)


def _grant_principal(link_id: str) -> Principal | None:
    """The login's own account on either side of the grant, in its practice."""
    svc = access.service(runtime())
    for _acct, principal in _mine():
        svc.begin(principal)
        overview = my_access.overview(svc, principal)
        for item in overview["accounts"]:
            for grant in item["grants_on_me"] + item["grants_i_hold"]:
                if grant["link_id"] == link_id:
                    side = Principal(kind="client", id=item["client_id"], org_id=principal.org_id)
                    return side
    return None


@bp.get("/me/grants/<link_id>/end")
def confirm_end(link_id: str) -> Response:
    if (needed := _need_login()) is not None:
        return needed
    principal = _grant_principal(link_id)
    if principal is None:
        return render("message.html", 404, title="Not found", message="No such access.")
    grant = _find_grant(principal, link_id)
    return render("end.html", grant=grant, mine=principal.id)


def _find_grant(principal: Principal, link_id: str) -> dict[str, Any] | None:
    svc = access.service(runtime())
    for item in my_access.overview(svc, principal)["accounts"]:
        for grant in item["grants_on_me"] + item["grants_i_hold"]:
            if grant["link_id"] == link_id:
                return dict(grant)
    return None


@bp.post("/me/grants/<link_id>/end")
def end(link_id: str) -> Response:
    if (needed := _need_login()) is not None:
        return needed
    principal = _grant_principal(link_id)
    if principal is None:
        return render("message.html", 404, title="Not found", message="No such access.")
    if request.form.get("confirm") != "yes":
        grant = _find_grant(principal, link_id)
        return render(
            "end.html",
            400,
            grant=grant,
            mine=principal.id,
            error="Tick the box to confirm that the access should end.",
        )
    rt = runtime()
    try:
        links.end_grant(
            rt.store,
            rt.settings,
            principal,
            link_id,
            {"reason": request.form.get("reason") or None},
        )
    except AuthzError as exc:
        return problem_page(exc)
    return redirect("/portal/me?notice=ended", 303)  # type: ignore[return-value]
