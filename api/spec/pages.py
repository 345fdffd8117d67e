"""OpenAPI paths of the hosted pages (`api/pages/`): HTML for people, not JSON for programs.

They are listed so that the document names every route; a portal that renders its own pages
calls the JSON API instead (`/v1/invites/…`, `/v1/access/my-access`, `/v1/access/activity`).
Every form is CSRF-protected: a POST without the session's token answers 400. The development
issuer's endpoints exist only in development mode (404 otherwise).
"""

from __future__ import annotations

from typing import Any

from api.spec.common import JSON, PROBLEM, obj, ref

TAG = "pages"
HTML = "text/html"
STR = {"type": "string"}
_TEXT = {"type": "string"}


def _html(status: str, description: str) -> dict[str, Any]:
    content: dict[str, Any] = {HTML: {"schema": _TEXT}}
    if status >= "400":
        # Refused before any page runs (the request's edge: control characters, sizes), or by
        # the service's problem handler: RFC 9457 problem JSON, like every other route.
        content[PROBLEM] = {"schema": ref("Problem")}
    return {"description": description, "content": content}


def _redirect(description: str) -> dict[str, Any]:
    return {"description": description, "headers": {"Location": {"schema": STR}}}


PAGE_ERRORS = {
    "400": _html(
        "400",
        "A form that could not be accepted (a missing or forged CSRF token, "
        "a wrong date of birth), said in plain words",
    ),
    "403": _html("403", "Not yours: someone else's invite or account"),
    "404": _html("404", "Not found"),
    "409": _html("409", "Conflicts with the current state"),
    "410": _html("410", "Gone: the invite was used, declined, withdrawn, locked or expired"),
    "503": _html("503", "Sign-in for pages is not configured or its issuer did not answer"),
}


def _page(
    op_id: str,
    summary: str,
    *,
    params: tuple[str, ...] | list[str] = (),
    ok: str = "200",
    form: dict[str, Any] | None = None,
    statuses: tuple[str, ...] = (),
) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": _html("200", "The page"),
        **{k: v for k, v in PAGE_ERRORS.items() if k in ("400", "403", "404", "409", "410", "503")},
    }
    if ok == "303":
        responses["303"] = _redirect("Done: on to the next page")
    for status in statuses:
        responses[status] = (
            _redirect("Redirected")
            if status.startswith("3")
            else responses.get(status, _html(status, "The page"))
        )
    op: dict[str, Any] = {
        "operationId": op_id,
        "summary": summary,
        "tags": [TAG],
        "security": [],
        "responses": responses,
    }
    if params:
        op["parameters"] = [
            {"name": p, "in": "query", "required": False, "schema": STR} for p in params
        ]
    if form is not None:
        op["requestBody"] = {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": obj({"csrf_token": STR, **form}, closed=False)
                }
            },
        }
    return op


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": STR}


PATHS: dict[str, Any] = {
    "/portal/": {"get": _page("portalHome", "On to my access", statuses=("303",))},
    "/portal/login": {
        "get": _page(
            "portalLogin",
            "Sign in: OpenID Connect authorization code flow with PKCE at the pages' issuer",
            params=["next"],
            statuses=("302",),
        )
    },
    "/portal/callback": {
        "get": _page(
            "portalCallback",
            "The issuer's answer: a page session bound to the verified login",
            params=["code", "state"],
            statuses=("302", "303"),
        )
    },
    "/portal/logout": {"post": _page("portalLogout", "Sign out", ok="303", form={})},
    "/portal/signed-out": {"get": _page("portalSignedOut", "Signed out")},
    "/portal/invites/{token}": {
        "parameters": [_path("token")],
        "get": _page(
            "invitePage",
            "The invite: who invited, for whom, the access level and what it allows (from the "
            "policy files); sign-in first",
        ),
    },
    "/portal/invites/{token}/proof": {
        "parameters": [_path("token")],
        "post": _page(
            "invitePageProof", "Proof of relationship (date of birth)", form={"birth_date": STR}
        ),
    },
    "/portal/invites/{token}/accept": {
        "parameters": [_path("token")],
        "post": _page("invitePageAccept", "Accept (after the proof)", form={}),
    },
    "/portal/invites/{token}/decline": {
        "parameters": [_path("token")],
        "post": _page("invitePageDecline", "Decline", form={"reason": STR}),
    },
    "/portal/me": {
        "get": _page(
            "myAccessPage",
            "My access: accounts I can act as, who can act for mine, who acted for me",
            params=["client", "cursor", "notice"],
        )
    },
    "/portal/me/switch": {
        "post": _page(
            "myAccessSwitch",
            "Switch Account: the token exchange, and what the portal would receive",
            form={"org_id": STR, "client_id": STR},
        )
    },
    "/portal/me/grants/{link_id}/end": {
        "parameters": [_path("link_id")],
        "get": _page("endAccessPage", "Confirm ending a grant (on me, or one I hold)"),
        "post": _page(
            "endAccess",
            "End the grant (asks for confirmation; audited)",
            ok="303",
            form={"confirm": STR, "reason": STR},
        ),
    },
    "/dev-issuer/.well-known/openid-configuration": {
        "get": {
            "operationId": "devIssuerDiscovery",
            "summary": "The development issuer's OpenID Provider metadata (development mode)",
            "tags": [TAG],
            "security": [],
            "responses": {
                "200": {
                    "description": "Metadata",
                    "content": {JSON: {"schema": {"type": "object"}}},
                },
                "404": {"description": "Not in development mode"},
            },
        }
    },
    "/dev-issuer/jwks.json": {
        "get": {
            "operationId": "devIssuerJwks",
            "summary": "The development issuer's public keys (development mode)",
            "tags": [TAG],
            "security": [],
            "responses": {
                "200": {"description": "JWKS", "content": {JSON: {"schema": {"type": "object"}}}},
                "404": {"description": "Not in development mode"},
            },
        }
    },
    "/dev-issuer/authorize": {
        "get": _page(
            "devIssuerAuthorize",
            "The development issuer's 'sign in as <email>' form (development mode)",
            params=[
                "response_type",
                "client_id",
                "redirect_uri",
                "scope",
                "state",
                "nonce",
                "code_challenge",
                "code_challenge_method",
            ],
        ),
        "post": _page(
            "devIssuerSignIn",
            "Sign in as that email: back to the pages with a code",
            form={"email": STR},
            statuses=("303",),
        ),
    },
    "/dev-issuer/token": {
        "post": {
            "operationId": "devIssuerToken",
            "summary": "Redeem a code (PKCE S256, the pages' client only; development mode)",
            "tags": [TAG],
            "security": [],
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": obj(
                            {
                                "grant_type": STR,
                                "code": STR,
                                "redirect_uri": STR,
                                "code_verifier": STR,
                            },
                            closed=False,
                        )
                    }
                },
            },
            "responses": {
                "200": {"description": "Tokens", "content": {JSON: {"schema": {"type": "object"}}}},
                "400": {
                    "description": "invalid_grant; or refused at the request's edge (problem JSON)",
                    "content": {
                        JSON: {"schema": {"type": "object"}},
                        PROBLEM: {"schema": ref("Problem")},
                    },
                },
                "401": {
                    "description": "invalid_client",
                    "content": {JSON: {"schema": {"type": "object"}}},
                },
                "404": {"description": "Not in development mode"},
            },
        }
    },
}
