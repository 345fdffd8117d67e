"""Test helpers that drive the service through its public surface (HTTP and the CLI core)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from authz.accounts import orgs
from authz.oauth import identity, oauth_clients
from authz.oauth.oauth_clients import SERVICE_SCOPES, TOKEN_EXCHANGE
from authz.policy.grants import CLIENT_SCOPES
from authz.store.models import AuditEvent, Base

AUDIENCE = "https://portal.test"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"


@dataclass
class Api:
    app: Any
    org_id: str
    provider_id: str
    provider_email: str
    reviewer_id: str
    client_id: str
    client_secret: str
    tokens: dict[str, str] = field(default_factory=dict)

    @classmethod
    def bootstrap(
        cls,
        app: Any,
        entitlements: tuple[str, ...] = ("linked_portal_access",),
        name: str = "Practice",
    ) -> Api:
        rt = app.extensions["authz"]
        org = orgs.create_org(rt.store, "test", name, list(entitlements))
        prv = orgs.create_provider(
            rt.store, "test", org["id"], f"dr.lee@{name.lower()}.test", "Dr. Lee"
        )
        rev = orgs.create_reviewer(rt.store, "test", org["id"], f"review@{name.lower()}.test")
        oc = oauth_clients.create_client(
            rt.store,
            "test",
            org["id"],
            [AUDIENCE],
            list(SERVICE_SCOPES) + list(CLIENT_SCOPES),
            "portal",
        )
        return cls(
            app, org["id"], prv["id"], prv["email"], rev["id"], oc["client_id"], oc["client_secret"]
        )

    @property
    def rt(self) -> Any:
        return self.app.extensions["authz"]

    @property
    def http(self) -> Any:
        return self.app.test_client()

    # -- OAuth ---------------------------------------------------------------------------------

    def basic(self, client_id: str | None = None, secret: str | None = None) -> dict[str, str]:
        raw = f"{client_id or self.client_id}:{secret or self.client_secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}

    def token_request(self, data: dict[str, str], **auth: str) -> Any:
        return self.http.post("/oauth/token", data=data, headers=self.basic(**auth))

    def id_token(self, email: str, verified: bool = True) -> str:
        return identity.mint_dev_id_token(self.rt.settings, self.rt.dev_keys, email, verified)

    def sign_in(self, resource: str, email: str, scope: str | None = None) -> str:
        data = {
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": self.id_token(email),
            "subject_token_type": ID_TOKEN,
            "resource": resource,
            "audience": AUDIENCE,
        }
        if scope:
            data["scope"] = scope
        r = self.token_request(data)
        assert r.status_code == 200, r.get_json()
        return str(r.get_json()["access_token"])

    def exchange(self, subject_token: str, resource: str, **extra: str) -> Any:
        data = {
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": subject_token,
            "subject_token_type": ACCESS,
            "resource": resource,
            "audience": AUDIENCE,
            **extra,
        }
        return self.token_request(data)

    def provider_token(self) -> str:
        if "provider" not in self.tokens:
            self.tokens["provider"] = self.sign_in(
                f"provider:{self.provider_id}", self.provider_email
            )
        return self.tokens["provider"]

    def service_token(self, scope: str) -> str:
        r = self.token_request({"grant_type": "client_credentials", "scope": scope})
        assert r.status_code == 200, r.get_json()
        return str(r.get_json()["access_token"])

    # -- JSON API ------------------------------------------------------------------------------

    def call(
        self, method: str, path: str, body: Any = None, token: str | None = None, **kwargs: Any
    ) -> Any:
        headers = {"Authorization": f"Bearer {token or self.provider_token()}"}
        if body is not None:
            kwargs["json"] = body
        return self.http.open(path, method=method, headers=headers, **kwargs)

    def ok(
        self, method: str, path: str, body: Any = None, status: int | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        r = self.call(method, path, body, **kwargs)
        expected = status or (
            201
            if method == "POST"
            and path.endswith(("/clients", "/contacts", "/links", "/payment-methods"))
            else 200
        )
        assert r.status_code == expected, (r.status_code, r.get_json())
        return dict(r.get_json())

    def client(
        self, first: str = "Sam", kind: str = "adult", email: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        body = {"first_name": first, "last_name": "Rivera", "client_type": kind, **extra}
        if email:
            body["email"] = email
        return self.ok("POST", "/v1/clients", body)

    def link(
        self,
        receiver: str,
        caregiver: str,
        relationship: str = "parent",
        portal: bool = False,
        **extra: Any,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"client_id": caregiver, "relationship": relationship, **extra}
        if portal:
            body["portal_access"] = {
                "enabled": True,
                "acknowledgement": "I confirm full access is intended.",
            }
        return self.ok("POST", f"/v1/clients/{receiver}/links", body)

    def grant(
        self, receiver: str, caregiver_email: str, relationship: str = "parent", **extra: Any
    ) -> tuple[dict[str, Any], str]:
        """A caregiver with active portal access; returns (link, caregiver token)."""
        caregiver = self.client("Jenna", "adult", caregiver_email)
        link = self.link(receiver, caregiver["id"], relationship, portal=True, **extra)
        token = self.sign_in(f"client:{caregiver['id']}", caregiver_email)
        accepted = self.ok(
            "POST", f"/v1/invites/{link['dev_invite_token']}/accept", {}, token=token
        )
        assert accepted["portal_access"]["status"] == "active"
        return link, token

    # -- store snapshots (to prove a refused request changed nothing) ---------------------------

    def assert_only_refusals_since(self, before: dict[str, Any], kinds: list[str]) -> None:
        """Nothing changed but the audit of these refusals (issue 3: refusals are audited)."""
        after = self.snapshot()
        with self.rt.store.read() as session:
            new = list(
                session.scalars(
                    select(AuditEvent.kind)
                    .order_by(AuditEvent.seq)
                    .offset(before["counts"]["audit_events"])
                )
            )
        assert new == kinds
        expected = dict(
            before["counts"], audit_events=before["counts"]["audit_events"] + len(kinds)
        )
        assert after["counts"] == expected

    def snapshot(self) -> dict[str, Any]:
        with self.rt.store.read() as session:
            counts = {
                t.name: session.scalar(select(func.count()).select_from(t))
                for t in Base.metadata.sorted_tables
            }
            last = session.scalar(select(AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1))
        return {"counts": counts, "audit_head": last, "revision": self.rt.store.revision()}
