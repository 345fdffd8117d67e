"""`authz demo`: a family's story told through the service's own HTTP API.

It drives the app in-process (Flask's test client) on a throwaway SQLite store in development
mode, so it needs no server, no email and no configuration.
"""

from __future__ import annotations

import base64
import json
import tempfile
from pathlib import Path
from typing import Any

import click
import jwt

from authz.accounts import orgs
from authz.base.config import Settings
from authz.oauth import identity, oauth_clients
from authz.oauth.oauth_clients import SERVICE_SCOPES, TOKEN_EXCHANGE
from authz.policy.grants import CLIENT_SCOPES
from authz.store import migrate
from authz.tokens import keys

AUDIENCE = "https://portal.demo.example"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"


class Story:
    """One walk through the story; each step prints what happened."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.http = app.test_client()
        self.rt = app.extensions["authz"]
        self.step = 0

    @classmethod
    def run(cls, database: str | None) -> None:
        from api.app import create_app

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(database) if database else Path(tmp) / "demo.db"
            settings = Settings(
                database_url=f"sqlite:///{path.resolve()}",
                dev_mode=True,
                issuer="http://127.0.0.1:8000",
            )
            app = create_app(settings)
            rt = app.extensions["authz"]
            migrate.upgrade(rt.store.engine)
            keys.ensure_key(rt.store, "operator:demo", keys.ACCESS_TOKEN)
            keys.ensure_key(rt.store, "operator:demo", keys.DEV_ISSUER)
            cls(app).tell()
            access = rt.extras.get("access")
            if access is not None:
                access.close()
            rt.store.engine.dispose()

    # -- narration -------------------------------------------------------------------------------

    def say(self, text: str, detail: Any = None) -> None:
        self.step += 1
        click.echo(f"{self.step:>2}. {text}")
        if detail is not None:
            rendered = detail if isinstance(detail, str) else json.dumps(detail, default=str)
            click.echo(f"      {rendered}")

    def call(self, method: str, path: str, token: str, body: Any = None) -> dict[str, Any]:
        r = self.http.open(
            path, method=method, json=body, headers={"Authorization": f"Bearer {token}"}
        )
        data: dict[str, Any] = r.get_json()
        if r.status_code >= 300:
            raise click.ClickException(f"{method} {path} failed: {r.status_code} {data}")
        return data

    def token(self, data: dict[str, str]) -> Any:
        raw = f"{self.client_id}:{self.secret}".encode()
        return self.http.post(
            "/oauth/token",
            data=data,
            headers={"Authorization": "Basic " + base64.b64encode(raw).decode()},
        )

    def sign_in(self, resource: str, email: str) -> str:
        id_token = identity.mint_dev_id_token(self.rt.settings, self.rt.dev_keys, email)
        r = self.token(
            {
                "grant_type": TOKEN_EXCHANGE,
                "subject_token": id_token,
                "subject_token_type": ID_TOKEN,
                "resource": resource,
                "audience": AUDIENCE,
            }
        )
        if r.status_code != 200:
            raise click.ClickException(f"sign-in failed: {r.get_json()}")
        return str(r.get_json()["access_token"])

    def exchange(self, subject: str, resource: str) -> Any:
        return self.token(
            {
                "grant_type": TOKEN_EXCHANGE,
                "subject_token": subject,
                "subject_token_type": ACCESS,
                "resource": resource,
                "audience": AUDIENCE,
            }
        )

    # -- the story --------------------------------------------------------------------------------

    def tell(self) -> None:
        store = self.rt.store
        org = orgs.create_org(
            store, "operator:demo", "Sunrise Family Therapy", ["linked_portal_access"]
        )
        prv = orgs.create_provider(
            store, "operator:demo", org["id"], "dr.lee@sunrise.example", "Dr. Lee"
        )
        oc = oauth_clients.create_client(
            store,
            "operator:demo",
            org["id"],
            [AUDIENCE],
            list(SERVICE_SCOPES) + list(CLIENT_SCOPES),
            "portal",
        )
        self.client_id, self.secret = oc["client_id"], oc["client_secret"]
        self.say(
            f"The practice {org['name']} ({org['id']}) has the linked_portal_access "
            f"entitlement; Dr. Lee is a provider; the portal backend is {oc['client_id']}."
        )
        doctor = self.sign_in(f"provider:{prv['id']}", "dr.lee@sunrise.example")
        self.say(
            "Dr. Lee signs in with the development issuer and exchanges the ID token "
            "for a provider token (RFC 8693)."
        )
        sam = self.call(
            "POST",
            "/v1/clients",
            doctor,
            {
                "first_name": "Sam",
                "last_name": "Rivera",
                "client_type": "minor",
                "birth_date": "2014-05-01",
                "email": "jenna@rivera.example",
            },
        )
        jenna = self.call(
            "POST",
            "/v1/clients",
            doctor,
            {
                "first_name": "Jenna",
                "last_name": "Rivera",
                "client_type": "adult",
                "email": "jenna@rivera.example",
            },
        )
        grandpa = self.call(
            "POST",
            "/v1/clients",
            doctor,
            {
                "first_name": "Luis",
                "last_name": "Rivera",
                "client_type": "adult",
                "email": "luis@rivera.example",
            },
        )
        self.say(
            "Dr. Lee adds three clients: Sam (a minor) and Jenna share one email; "
            "Luis has his own.",
            [sam["id"], jenna["id"], grandpa["id"]],
        )
        link = self.call(
            "POST",
            f"/v1/clients/{grandpa['id']}/links",
            doctor,
            {
                "client_id": jenna["id"],
                "relationship": "caregiver",
                "notify": True,
                "portal_access": {
                    "enabled": True,
                    "access_level": "billing",
                    "acknowledgement": "Jenna will have access to Luis's billing.",
                },
            },
        )
        self.say(
            f"Dr. Lee links Luis to Jenna ({link['id']}, relationship caregiver) and "
            "turns on billing-level portal access after acknowledging it.",
            {
                "status": link["portal_access"]["status"],
                "acknowledged_by": link["portal_access"]["acknowledged_by"],
            },
        )
        mails = self.call("GET", "/v1/outbox", doctor)["items"]
        self.say("Two emails wait in the outbox for Jenna:", [m["subject"] for m in mails])
        jenna_token = self.sign_in(f"client:{jenna['id']}", "jenna@rivera.example")
        accepted = self.call(
            "POST", f"/v1/invites/{link['dev_invite_token']}/accept", jenna_token, {}
        )
        self.say(
            "Jenna signs in and accepts the invite: portal access is now "
            f"{accepted['portal_access']['status']}."
        )
        toggled = self.exchange(jenna_token, f"client:{sam['id']}").get_json()
        claims = jwt.decode(toggled["access_token"], options={"verify_signature": False})
        self.say(
            "Jenna toggles to Sam's account (same verified email):",
            {k: claims[k] for k in ("sub", "authz_via", "scope")},
        )
        switched = self.exchange(jenna_token, f"client:{grandpa['id']}").get_json()
        claims = jwt.decode(switched["access_token"], options={"verify_signature": False})
        self.say(
            "Jenna uses Switch Account to act for Luis:",
            {k: claims[k] for k in ("sub", "act", "grant", "authz_via", "scope")},
        )
        self.call(
            "POST",
            f"/v1/clients/{grandpa['id']}/payment-methods",
            doctor,
            {"id": "pm_luis_visa", "label": "Luis's Visa"},
        )
        self.call(
            "POST",
            f"/v1/clients/{jenna['id']}/payment-methods",
            doctor,
            {"id": "pm_jenna_amex", "label": "Jenna's Amex"},
        )
        backend = self.token({"grant_type": "client_credentials", "scope": "authz:check"})
        service = backend.get_json()["access_token"]
        for pm in ("pm_luis_visa", "pm_jenna_amex"):
            decision = self.call(
                "POST",
                "/v1/access/check",
                service,
                {
                    "token": switched["access_token"],
                    "action": "invoice.pay",
                    "resource": {"type": "invoice", "id": "inv_1001", "owner": grandpa["id"]},
                    "context": {"payment_method": pm},
                },
            )
            verdict = "allowed" if decision["allowed"] else "denied"
            self.say(
                f"As Luis, Jenna pays Luis's invoice with {pm}: {verdict}.",
                {"reason": decision["reason"], "rule": decision["rule"]},
            )
        again = self.exchange(switched["access_token"], f"client:{sam['id']}")
        self.say(
            "From Luis's account she cannot hop on to anyone else (no chains):", again.get_json()
        )
        back = self.exchange(switched["access_token"], f"client:{jenna['id']}").get_json()
        claims = jwt.decode(back["access_token"], options={"verify_signature": False})
        self.say(
            "She switches back to her own account:",
            {"sub": claims["sub"], "authz_via": claims["authz_via"]},
        )
        self.call(
            "PATCH",
            f"/v1/clients/{grandpa['id']}/links/{link['id']}",
            doctor,
            {"portal_access": {"enabled": False}},
        )
        refused = self.exchange(jenna_token, f"client:{grandpa['id']}")
        self.say(
            "Dr. Lee turns portal access off; Jenna's next switch is refused:", refused.get_json()
        )
        stale = self.call(
            "POST",
            "/v1/access/check",
            service,
            {
                "token": switched["access_token"],
                "action": "invoice.read",
                "resource": {"type": "invoice", "id": "inv_1001", "owner": grandpa["id"]},
            },
        )
        self.say(
            "Her earlier token for Luis is now denied too, at once:",
            {"allowed": stale["allowed"], "reason": stale["reason"]},
        )
        from authz.compliance import audit_log

        verified = audit_log.verify(store)
        self.say(
            f"The audit trail holds {verified['changes']['verified']} hash-chained changes; "
            f"verification: {'unbroken' if verified['ok'] else 'BROKEN'}."
        )
