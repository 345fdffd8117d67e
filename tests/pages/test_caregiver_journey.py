"""The caregiver's journey in Debian's Chromium, against `authz init --demo` + `authz serve`
started the way `make run` starts them: from the invite email in the outbox to the adult care
receiver ending the access, with the layout checked at 1280 and 390 px and screenshots saved in
test-artifacts/portal/."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.ops.serving import ROOT, Server, free_port

ARTIFACTS = ROOT / "test-artifacts" / "portal"
CHROMIUM = "/usr/bin/chromium"
WIDTHS = (1280, 390)

#: Every visible box of text or control must sit inside the viewport and overlap no other.
LAYOUT_PROBE = """() => {
  const sel = 'h1,h2,h3,p,li>strong,dt,dd,label,button,a.button,input:not([type=hidden]),' +
              'textarea,th,td,header.site strong';
  const els = [...document.querySelectorAll(sel)].filter(e => {
    const r = e.getBoundingClientRect(); const s = getComputedStyle(e);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && !e.closest('.skip');
  });
  const width = document.documentElement.clientWidth;
  const problems = [];
  if (document.documentElement.scrollWidth > width + 1)
    problems.push(`page scrolls sideways: ${document.documentElement.scrollWidth} > ${width}`);
  const boxes = els.map(e => [e, e.getBoundingClientRect()]);
  for (const [e, r] of boxes) {
    if (r.left < -1 || r.right > width + 1)
      problems.push(`outside the viewport: ${e.tagName} "${e.textContent.trim().slice(0, 40)}"`);
    if (e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX === 'hidden')
      problems.push(`clipped: ${e.tagName} "${e.textContent.trim().slice(0, 40)}"`);
  }
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const [a, ra] = boxes[i], [b, rb] = boxes[j];
    if (a.contains(b) || b.contains(a)) continue;
    const x = Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left);
    const y = Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top);
    if (x > 1 && y > 1)
      problems.push(`overlap: ${a.tagName} "${a.textContent.trim().slice(0, 30)}" / ` +
                    `${b.tagName} "${b.textContent.trim().slice(0, 30)}"`);
  }
  return problems;
}"""

#: Every form control is named by a label (or aria-label), so a screen reader can say it.
LABEL_PROBE = """() => [
  ...document.querySelectorAll('input:not([type=hidden]),textarea,select,button')]
  .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') &&
               !(e.tagName === 'BUTTON' && e.textContent.trim()))
  .map(e => e.outerHTML.slice(0, 80))"""


def chromium() -> str:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is required in CI (.ci/run installs it)")
    pytest.skip("chromium is not installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`authz init --demo` and `authz serve`, as `make run` runs them, in a scratch directory."""
    home = tmp_path_factory.mktemp("portal")
    port = free_port()
    env = {
        "AUTHZ_DEV_MODE": "1",
        "AUTHZ_ISSUER": f"http://127.0.0.1:{port}",
        "AUTHZ_DATABASE_URL": f"sqlite:///{home / 'authz.db'}",
    }
    full = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [sys.executable, "-m", "authz.cli", "init", "--demo"],
        cwd=home,
        env=full,
        check=True,
        capture_output=True,
    )
    creds = json.loads((home / "instance" / "demo.json").read_text())
    server = Server(env, port=port)
    try:
        server.wait_ready()
        yield {"url": server.url, "creds": creds, "home": home, "env": full}
    finally:
        server.stop()


class Portal:
    """The demo practice's API, as its provider and its portal backend."""

    def __init__(self, served: dict[str, Any]) -> None:
        self.url, self.creds, self.env = served["url"], served["creds"], served["env"]
        self.auth = (self.creds["client_id"], self.creds["client_secret"])
        dev = subprocess.run(
            [
                sys.executable,
                "-m",
                "authz.cli",
                "dev-token",
                "--email",
                self.creds["provider_email"],
            ],
            cwd=served["home"],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        dev = json.loads(dev)["id_token"] if dev.startswith("{") else dev
        r = requests.post(
            f"{self.url}/oauth/token",
            auth=self.auth,
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                "subject_token": dev,
                "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
                "resource": f"provider:{self.creds['provider_id']}",
                "audience": self.creds["audience"],
            },
            timeout=10,
        )
        assert r.status_code == 200, r.text
        self.provider = {"Authorization": f"Bearer {r.json()['access_token']}"}

    def get(self, path: str) -> Any:
        r = requests.get(f"{self.url}{path}", headers=self.provider, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    def send(self, method: str, path: str, body: dict[str, Any]) -> Any:
        r = requests.request(
            method, f"{self.url}{path}", json=body, headers=self.provider, timeout=10
        )
        assert r.status_code in (200, 201), r.text
        return r.json()

    def invite_link(self, to: str, receiver: str) -> str:
        """The link of the invite email queued for `to` about `receiver`'s account."""
        items = self.get("/v1/outbox?limit=500")["items"]
        (body,) = [
            m["body"]
            for m in items
            if m["to"] == to and m["kind"] == "portal_access.invite" and receiver in m["body"]
        ]
        return str(re.search(r"(http\S+/portal/invites/\S+)", body).group(1))

    def introspect(self, token: str) -> bool:
        r = requests.post(
            f"{self.url}/oauth/introspect", data={"token": token}, auth=self.auth, timeout=10
        )
        return bool(r.json()["active"])


def look(page: Any, name: str) -> None:
    """A screenshot at each width, and no text outside the viewport or overlapping."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
        problems = page.evaluate(LAYOUT_PROBE)
        assert problems == [], (name, width, problems)
    assert page.evaluate(LABEL_PROBE) == [], name
    page.set_viewport_size({"width": 1280, "height": 900})


def sign_in(page: Any, email: str) -> None:
    """Through the development issuer's form."""
    page.get_by_role("link", name="Sign in").click()
    page.wait_for_url(re.compile(r"/dev-issuer/authorize"))
    look(page, "dev-issuer-sign-in")
    page.get_by_label("Sign in as (email)").fill(email)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    path = chromium()
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield launched
        launched.close()


def test_the_caregivers_journey_end_to_end(served: dict[str, Any], browser: Any) -> None:
    api = Portal(served)
    creds = served["creds"]
    carlos_email = creds["caregiver_email"]
    mia_invite = api.invite_link(carlos_email, "Mia Rivera")
    luis_invite = api.invite_link(carlos_email, "Luis Rivera")
    assert mia_invite == creds["invite_url"]

    carlos = browser.new_context()
    page = carlos.new_page()
    page.goto(mia_invite)
    assert page.get_by_role("heading", name="Sign in to continue").is_visible()
    look(page, "invite-signed-out")
    sign_in(page, carlos_email)
    page.wait_for_url(mia_invite)
    assert "Invited by" in page.content() and "Dr. Lee" in page.content()
    assert page.get_by_text("Demo Family Practice").first.is_visible()
    assert "Payment methods" in page.inner_text("section[aria-labelledby=may]")
    look(page, "invite")

    # Keyboard: from the skip link, Tab reaches the date of birth (its day, month and year
    # fields), then Confirm, then the decline reason and its button, in reading order.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    order: list[str] = []
    for _ in range(12):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.id || document.activeElement.textContent")
        if not order or order[-1] != focused:
            order.append(focused)
    start = order.index("birth_date")
    assert order[start : start + 4] == ["birth_date", "check", "reason", "decline"], order

    page.get_by_label("Mia Rivera's date of birth").fill("2016-09-04")
    page.get_by_role("button", name="Confirm").click()
    assert "does not match" in page.inner_text("#error") and "4 tries left" in page.content()
    look(page, "invite-wrong-birth-date")
    page.get_by_label("Mia Rivera's date of birth").fill(creds["invite_birth_date"])
    page.get_by_role("button", name="Confirm").click()
    assert "relationship is confirmed" in page.inner_text("#notice")
    look(page, "invite-proved")
    page.get_by_role("button", name="Accept access").click()
    assert "accepted" in page.inner_text("#notice")
    assert "already used" in page.inner_text("#status")
    look(page, "invite-accepted")

    # The provider's view: the grant is active.
    mia = next(m for m in api.get("/v1/clients?limit=500")["items"] if m["first_name"] == "Mia")
    link = api.get(f"/v1/clients/{mia['id']}/links")["items"][0]
    assert link["portal_access"]["status"] == "active"
    mails = api.get("/v1/outbox?limit=500")["items"]
    assert any(m["kind"] == "invite.accepted" and m["to"] == creds["provider_email"] for m in mails)

    # A used invite says so plainly.
    page.goto(mia_invite)
    assert "already used" in page.inner_text("#status")

    # Luis's invite too (billing), so that an adult care receiver can end it.
    page.goto(luis_invite)
    page.get_by_label("Luis Rivera's date of birth").fill(creds["second_invite_birth_date"])
    page.get_by_role("button", name="Confirm").click()
    page.get_by_role("button", name="Accept access").click()

    # My access: switch into Mia's account and see what the portal would receive.
    page.goto(f"{served['url']}/portal/me")
    look(page, "my-access-caregiver")
    page.get_by_role("button", name="Switch to Mia").click()
    assert page.inner_text("#sub") == f"client:{mia['id']}"
    assert page.inner_text("#via") == "delegation"
    look(page, "switched")
    page.goto(f"{served['url']}/portal/me")
    page.get_by_role("button", name="Switch to Luis").click()
    luis_token = page.input_value("#token")
    assert api.introspect(luis_token)

    # Luis sees who acted for him, and ends Carlos's access with a confirmation.
    luis = browser.new_context().new_page()
    luis.goto(f"{served['url']}/portal/me")
    sign_in(luis, "luis@demo.example")
    luis.wait_for_url(re.compile(r"/portal/me"))
    table = luis.inner_text("table")
    assert "Carlos Rivera" in table and "switched into the account" in table
    look(luis, "my-access-care-receiver")
    luis.get_by_role("link", name="End Carlos Rivera's access").click()
    look(luis, "end-access")
    luis.get_by_role("button", name="End access").click()
    assert "Tick the box" in luis.inner_text("#error")
    assert api.introspect(luis_token)
    luis.get_by_label("Yes, end this access").check()
    luis.get_by_label("Reason (optional)").fill("I manage my bills again")
    luis.get_by_role("button", name="End access").click()
    assert "was ended" in luis.inner_text("#notice")
    assert not api.introspect(luis_token)  # at once


def test_five_wrong_birth_dates_lock_the_invite(served: dict[str, Any], browser: Any) -> None:
    api = Portal(served)
    alex_id = served["creds"]["family"]["alex"]
    api.send("PATCH", f"/v1/clients/{alex_id}", {"birth_date": "1990-01-02"})
    kim = api.send(
        "POST",
        "/v1/clients",
        {
            "first_name": "Kim",
            "last_name": "Lo",
            "client_type": "adult",
            "email": "kim@demo.example",
        },
    )
    api.send(
        "POST",
        f"/v1/clients/{alex_id}/links",
        {
            "client_id": kim["id"],
            "relationship": "spouse",
            "portal_access": {"enabled": True, "acknowledgement": "Kim helps Alex."},
        },
    )
    invite = api.invite_link("kim@demo.example", "Alex Rivera")
    page = browser.new_context().new_page()
    page.goto(invite)
    sign_in(page, "kim@demo.example")
    page.wait_for_url(invite)
    for _ in range(5):
        page.get_by_label("Alex Rivera's date of birth").fill("1990-02-01")
        page.get_by_role("button", name="Confirm").click()
    assert "locked" in page.inner_text("#error")
    assert page.get_by_label("Alex Rivera's date of birth").count() == 0
    look(page, "invite-locked")
    mails = api.get("/v1/outbox?limit=500")["items"]
    assert any(
        m["kind"] == "invite.locked" and m["to"] == served["creds"]["provider_email"] for m in mails
    )


def test_forged_csrf_and_someone_elses_invite_are_refused(
    served: dict[str, Any], browser: Any
) -> None:
    api = Portal(served)
    creds = served["creds"]
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{served['url']}/portal/me")
    sign_in(page, "alex@demo.example")
    page.wait_for_url(re.compile(r"/portal/me"))
    # Carlos's invite, opened by Alex: refused, and said plainly.
    luis_invite = api.invite_link(creds["caregiver_email"], "Luis Rivera")
    page.goto(luis_invite)
    assert page.get_by_role("heading", name="This invite is not yours").is_visible()
    look(page, "invite-foreign")
    token = luis_invite.rsplit("/", 1)[1]
    for sent in (
        {"birth_date": "1948-09-12", "csrf_token": "forged"},
        {"birth_date": "1948-09-12"},
    ):
        r = context.request.post(f"{served['url']}/portal/invites/{token}/proof", form=sent)
        assert r.status == 400 and "could not be accepted" in r.text()
    r = context.request.post(f"{served['url']}/portal/logout", form={"csrf_token": ""})
    assert r.status == 400


@pytest.fixture(autouse=True, scope="module")
def _clean_artifacts() -> None:
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
