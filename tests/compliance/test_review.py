"""The access review: report data (CLI), the page at GET /v1/review, and the page in Chromium."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from authz.base import clock
from tests.compliance.chains import append_decisions
from tests.compliance.cli import ROOT, authz, authz_json
from tests.helpers import Api

ACK = "I confirm full access is intended."


def reviewer_token(api: Api) -> str:
    return api.sign_in(f"reviewer:{api.reviewer_id}", "review@practice.test")


@pytest.fixture
def scene(api: Api) -> dict[str, Any]:
    """A family with every case the review shows, and one client of another family."""
    mia = api.client("Mia", "minor", birth_date="2015-04-01")
    link, _ = api.grant(mia["id"], "jenna@family.test")
    jenna = link["linked_client_id"]
    teen = api.client("Theo", "minor", birth_date="2012-06-01")
    teen_link = api.link(teen["id"], jenna, "parent", portal=True)
    api.ok(
        "POST",
        f"/v1/invites/{teen_link['dev_invite_token']}/accept",
        {},
        token=api.sign_in(f"client:{jenna}", "jenna@family.test"),
    )
    # A corrected birth date: the minor on record is in fact of age, the grant still recorded.
    api.ok("PATCH", f"/v1/clients/{teen['id']}", {"birth_date": "2000-06-01"})
    soon = (clock.now() + dt.timedelta(days=25)).isoformat()
    gran = api.client("Gran", "adult")
    gran_link = api.link(gran["id"], jenna, "caregiver", portal=True)
    api.ok(
        "POST",
        f"/v1/invites/{gran_link['dev_invite_token']}/accept",
        {},
        token=api.sign_in(f"client:{jenna}", "jenna@family.test"),
    )
    api.ok(
        "PATCH",
        f"/v1/clients/{gran['id']}/links/{gran_link['id']}",
        {"portal_access": {"enabled": True, "expires_at": soon}},
    )
    omar = api.client("Omar", "adult", "omar@x.test")
    pat = api.client("Pat", "adult", "pat@x.test")
    pending = api.link(omar["id"], pat["id"], "spouse", portal=True)
    kim_a = api.client("Kim", "adult", "kim@shared.test")
    kim_b = api.client("Kimmy", "minor", "kim@shared.test")
    for k in (kim_a, kim_b):
        api.sign_in(f"client:{k['id']}", "kim@shared.test")
    append_decisions(
        api.rt.store,
        [
            {
                "org_id": api.org_id,
                "actor": f"client:{jenna}",
                "subject": f"client:{mia['id']}",
                "owner": mia["id"],
                "action": "appointment.book",
            },
            {
                "org_id": api.org_id,
                "actor": f"client:{jenna}",
                "subject": f"client:{mia['id']}",
                "owner": mia["id"],
                "action": "invoice.pay",
                "allowed": False,
            },
            {"org_id": api.org_id, "actor": f"client:{mia['id']}", "owner": mia["id"]},
        ],
    )
    return {
        "mia": mia["id"],
        "jenna": jenna,
        "link": link["id"],
        "teen": teen["id"],
        "teen_link": teen_link["id"],
        "gran": gran["id"],
        "gran_link": gran_link["id"],
        "omar": omar["id"],
        "pat": pat["id"],
        "pending": pending["id"],
        "kim_a": kim_a["id"],
        "kim_b": kim_b["id"],
    }


def by_id(report: dict[str, Any]) -> dict[str, Any]:
    return {c["id"]: c for c in report["clients"]}


def test_report_data(api: Api, scene: dict[str, Any], db_url: str) -> None:
    rt = api.rt
    from authz.compliance import review

    report = review.build(rt.store, rt.settings, api.org_id)
    clients = by_id(report)
    mia = clients[scene["mia"]]
    who = {(w["subject"], w["relation"]): w for w in mia["who_can_act"]}
    assert set(who) == {
        (f"client:{scene['mia']}", "self"),
        (f"client:{scene['jenna']}", "caregiver_full"),
    }
    grant = who[(f"client:{scene['jenna']}", "caregiver_full")]
    assert grant["link_id"] == scene["link"] and grant["acknowledgement"] == ACK
    assert grant["acknowledged_by_name"] == "Dr. Lee" and grant["via"] == "caregiver grant"
    [acted] = mia["acted_for_by"]  # the client's own decision is not "acting for"
    assert (acted["actor"], acted["decisions"], acted["allowed"], acted["denied"]) == (
        f"client:{scene['jenna']}",
        2,
        1,
        1,
    )
    assert sorted(acted["actions"]) == ["appointment.book", "invoice.pay"]

    assert [g["link_id"] for g in clients[scene["omar"]]["grants"]["pending"]] == [scene["pending"]]
    assert [g["link_id"] for g in clients[scene["gran"]]["grants"]["expiring"]] == [
        scene["gran_link"]
    ]
    teen = clients[scene["teen"]]
    assert [g["link_id"] for g in teen["grants"]["past_majority"]] == [scene["teen_link"]]
    # Past the age of majority the engine no longer lets the caregiver act.
    assert [w["relation"] for w in teen["who_can_act"]] == ["self"]

    kim = clients[scene["kim_a"]]
    assert (f"client:{scene['kim_b']}", "shared_email") in {
        (w["subject"], w["relation"]) for w in kim["who_can_act"]
    }
    assert {s["role"] for s in report["staff"]} == {"provider", "reviewer"}

    family = next(f for f in report["families"] if scene["mia"] in [m["id"] for m in f["clients"]])
    assert {m["id"] for m in family["clients"]} == {
        scene["mia"],
        scene["jenna"],
        scene["teen"],
        scene["gran"],
    }
    jenna_links = {(lk["link_id"], lk["direction"]) for lk in clients[scene["jenna"]]["links"]}
    assert (scene["link"], "incoming") in jenna_links
    assert (scene["link"], "outgoing") in {(lk["link_id"], lk["direction"]) for lk in mia["links"]}


def test_cli_report_json_table_and_bad_input(
    app: Any, api: Api, scene: dict[str, Any], db_url: str, tmp_path: Path
) -> None:
    code, data = authz_json(db_url, "report", "access", "--client", scene["mia"])
    assert code == 0
    assert [c["id"] for c in data["clients"]] == [scene["mia"]]
    assert {m["id"] for m in data["families"][0]["clients"]} >= {scene["mia"], scene["jenna"]}
    table = authz(db_url, "report", "access")
    assert table.returncode == 0 and "WHO_CAN_ACT" in table.stdout
    assert "Jenna Rivera (caregiver grant)" in table.stdout
    Api.bootstrap(app, name="Elsewhere")
    for args, message in [
        (("--client", "cli_nope"), "not found"),
        (("--org", "org_nope"), "not found"),
        ((), "pass --org"),
        (("--org", api.org_id, "--html", str(tmp_path / "missing" / "r.html")), "No such file"),
    ]:
        done = authz(db_url, "report", "access", *args)
        assert done.returncode == 2, (args, done.stdout)
        assert done.stderr.startswith("authz: ") and message in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def test_review_page_for_reviewers_only(api: Api, scene: dict[str, Any]) -> None:
    token = reviewer_token(api)
    r = api.call("GET", "/v1/review", token=token)
    assert r.status_code == 200 and r.mimetype == "text/html"
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    page = r.get_data(as_text=True)
    for cid in (scene["mia"], scene["omar"], scene["kim_a"]):
        assert f'data-client="{cid}"' in page
    one = api.call("GET", "/v1/review", token=token, query_string={"client": scene["omar"]})
    sections = re.findall(r'<section class="client" id="([^"]+)"', one.get_data(as_text=True))
    assert sections == [scene["omar"]]
    assert 'data-attention="pending"' in one.get_data(as_text=True)

    audited = api.call(
        "GET",
        "/v1/audit",
        token=token,
        query_string={"kind": "review.read", "client": scene["omar"]},
    )
    assert [e["actor"] for e in audited.get_json()["items"]] == [f"reviewer:{api.reviewer_id}"]

    before = api.snapshot()
    for query, status in [
        ({"client": "bad"}, 400),
        ({"client": "cli_0000"}, 404),
        ({"colour": "red"}, 400),
    ]:
        bad = api.call("GET", "/v1/review", token=token, query_string=query)
        assert bad.status_code == status and bad.mimetype == "application/problem+json"
    assert api.call("GET", "/v1/review").status_code == 403  # a provider
    assert api.snapshot() == before


# -- in a browser ---------------------------------------------------------------------------

PROBE = """<script>
window.__errs = [];
window.addEventListener('error', function (e) {
  window.__errs.push(String(e.message || (e.target && (e.target.src || e.target.href)) || 'error'));
}, true);
window.addEventListener('securitypolicyviolation', function (e) {
  window.__errs.push('csp: ' + e.violatedDirective + ' ' + e.blockedURI);
});
var __ce = console.error;
console.error = function () {
  window.__errs.push([].join.call(arguments, ' '));
  __ce.apply(console, arguments);
};
window.addEventListener('load', function () {
  document.documentElement.setAttribute('data-console-errors', String(window.__errs.length));
  document.documentElement.setAttribute('data-console-messages', window.__errs.join(' | '));
});
</script>"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is required in CI (.ci/run installs it)")
    pytest.skip("chromium is not installed (apt-get install chromium)")


def run_chromium(tmp_path: Path, page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=3000",
            *args,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_review_page_renders_in_chromium(
    api: Api, scene: dict[str, Any], db_url: str, tmp_path: Path
) -> None:
    html = tmp_path / "review.html"
    done = authz(db_url, "report", "access", "--html", str(html))
    assert done.returncode == 0, done.stderr
    text = html.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text), "external asset"
    probed = tmp_path / "probed.html"
    probed.write_text(text.replace("<head>", "<head>\n" + PROBE, 1))

    dom = run_chromium(tmp_path, probed, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    out = dom.stdout
    errors = re.search(r'data-console-errors="(\d+)"', out)
    assert errors, "the probe did not run: " + out[:300]
    messages = re.search(r'data-console-messages="([^"]*)"', out)
    assert errors.group(1) == "0", messages.group(1) if messages else ""
    console = [ln for ln in dom.stderr.splitlines() if "CONSOLE" in ln]
    assert console == [], console
    # The expected rows are in the rendered page.
    assert out.count('<section class="client"') == 8
    mia = out[out.index(f'id="{scene["mia"]}"') :]
    mia = mia[: mia.index("</section>")]
    assert f'data-subject="client:{scene["jenna"]}" data-relation="caregiver_full"' in mia
    assert ACK in mia and "Dr. Lee" in mia
    assert f'data-actor="client:{scene["jenna"]}"' in mia
    assert f'data-grant="{scene["pending"]}" data-attention="pending"' in out
    assert f'data-grant="{scene["gran_link"]}" data-attention="expiring"' in out
    assert f'data-grant="{scene["teen_link"]}" data-attention="past_majority"' in out
    assert (
        out.count('<g class="node"') >= 6 and f'<g class="edge" data-link="{scene["link"]}"' in out
    )

    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    shot = artifacts / "review.png"
    # The picture: one client's page, with the family's account graph.
    one = tmp_path / "one.html"
    assert (
        authz(db_url, "report", "access", "--client", scene["mia"], "--html", str(one)).returncode
        == 0
    )
    taken = run_chromium(
        tmp_path, one, f"--screenshot={shot}", "--window-size=1100,1700", "--hide-scrollbars"
    )
    assert taken.returncode == 0 and shot.stat().st_size > 10_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
