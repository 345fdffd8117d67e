"""The access review of a generated organization (200 clients, 50 families) in headless Chromium,
opened from a signed link as a reviewer would: the summary lists exactly the grants in need of
attention, the family graphs have no cut or overlapping label and every edge drawn, the page fits
a phone, and the re-approve and end buttons work and are audited."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from authz.base import clock
from authz.compliance import report_html, review
from authz.service import access
from authz.store.models import AuditEvent
from tests.compliance.cli import ROOT
from tests.compliance.organization import generate
from tests.compliance.test_review import chromium
from tests.helpers import Api

sync_api = pytest.importorskip("playwright.sync_api")

ARTIFACTS = ROOT / "test-artifacts"

#: For every family graph: each label inside the drawing, no two labels overlapping, no edge
#: label over a client's box, each client's text inside its box, and every edge with a line.
#: Read back from the rendered SVG's own coordinates (getBoundingClientRect of its elements).
GEOMETRY = """() => {
  const eps = 0.75, problems = [], counts = [];
  const box = (el) => el.getBoundingClientRect();
  const inside = (a, b) => a.left >= b.left - eps && a.right <= b.right + eps
    && a.top >= b.top - eps && a.bottom <= b.bottom + eps;
  const overlap = (a, b) => a.left < b.right - eps && b.left < a.right - eps
    && a.top < b.bottom - eps && b.top < a.bottom - eps;
  for (const svg of document.querySelectorAll('svg.family-graph')) {
    const name = svg.getAttribute('aria-label');
    const frame = box(svg);
    const labels = [], shapes = [];
    for (const node of svg.querySelectorAll('g.node')) {
      const shape = box(node.querySelector('polygon, path'));
      shapes.push(shape);
      // A client's label is its lines together (name, then id): one box around them.
      let label = null;
      for (const t of node.querySelectorAll('text')) {
        const r = box(t);
        if (!inside(r, shape)) problems.push(name + ': text of ' + node.id + ' leaves its box');
        label = label ? {left: Math.min(label.left, r.left), right: Math.max(label.right, r.right),
          top: Math.min(label.top, r.top), bottom: Math.max(label.bottom, r.bottom)} : r;
      }
      if (label) labels.push([node.id + ' text', label]);
    }
    let edges = 0;
    for (const edge of svg.querySelectorAll('g.edge')) {
      edges += 1;
      const path = edge.querySelector('path');
      if (!path || path.getTotalLength() < 1) problems.push(name + ': ' + edge.id + ' has no line');
      const text = edge.querySelector('text');
      if (!text) { problems.push(name + ': ' + edge.id + ' has no label'); continue; }
      const r = box(text);
      for (const s of shapes)
        if (overlap(r, s)) problems.push(name + ': label of ' + edge.id + ' overlaps a box');
      labels.push([edge.id, r]);
    }
    for (const [id, r] of labels)
      if (!inside(r, frame)) problems.push(name + ': ' + id + ' is cut off');
    for (let i = 0; i < labels.length; i++)
      for (let j = i + 1; j < labels.length; j++)
        if (overlap(labels[i][1], labels[j][1]))
          problems.push(name + ': ' + labels[i][0] + ' overlaps ' + labels[j][0]);
    counts.push([name, svg.querySelectorAll('g.node').length, edges]);
  }
  return {problems, counts};
}"""


@pytest.fixture
def organization(api: Api) -> dict[str, Any]:
    return generate(api, 50)


@pytest.fixture
def page(api: Api) -> Iterator[Any]:
    """A Chromium page whose requests to the service are answered by the app itself."""
    client = api.http

    def answer(route: Any) -> None:
        request = route.request
        url = urlsplit(request.url)
        r = client.open(
            url.path + (f"?{url.query}" if url.query else ""),
            method=request.method,
            data=request.post_data_buffer,
            headers={"Content-Type": request.headers.get("content-type", "")},
        )
        headers = {k: v for k, v in r.headers.items() if k.lower() != "content-length"}
        route.fulfill(status=r.status_code, headers=headers, body=r.get_data())

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        tab = context.new_page()
        errors: list[str] = []
        tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        tab.on("pageerror", lambda e: errors.append(str(e)))
        tab.route("http://authz.test/**", answer)
        tab.errors = errors
        yield tab
        browser.close()


def _link(api: Api) -> str:
    token = api.sign_in(f"reviewer:{api.reviewer_id}", "review@practice.test")
    issued = api.ok("POST", "/v1/review/links", {}, token=token, status=201)
    return str(issued["url"])


def _audit(api: Api, kind: str) -> list[AuditEvent]:
    with api.rt.store.read() as session:
        return list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.kind == kind).order_by(AuditEvent.seq)
            )
        )


def test_the_review_of_200_clients_in_chromium(
    api: Api, organization: dict[str, Any], page: Any
) -> None:
    expected = organization["expected"]
    page.goto(_link(api))
    assert page.title().startswith("Access review")

    # The summary lists exactly the grants the organization was built to need attention.
    listed = page.eval_on_selector_all(
        "[data-attention-item]", "els => els.map(e => [e.dataset.attentionItem, e.dataset.kind])"
    )
    assert dict(listed) == expected and len(listed) == len(expected)
    counts = dict(
        page.eval_on_selector_all(
            "[data-count]",
            "els => els.map(e => [e.dataset.count, +e.querySelector('b').textContent])",
        )
    )
    assert counts["clients"] == 200
    assert counts["lapsed"] == 10 and counts["pending"] == 5 and counts["expiring"] == 5
    assert counts["past_majority"] == 5 and counts["widened"] == 5
    assert counts["disclosures"] == 100  # every spouse: copies of emails and emergency contact
    # Each item links to its grant's row, in the card of its client; cards in order of attention.
    first = page.eval_on_selector("[data-attention-item] a", "a => a.getAttribute('href')")
    assert page.locator(first).count() == 1
    flags = page.eval_on_selector_all(
        "section.client", "els => els.map(e => e.classList.contains('needs-attention'))"
    )
    assert len(flags) == 200 and flags == sorted(flags, reverse=True)
    assert sum(flags) == len(expected)  # each grant listed is on a care receiver of its own

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review-summary-1280.png"))
    page.locator("#family-1").screenshot(path=str(ARTIFACTS / "review-family-1.png"))

    # Every family graph: nothing cut off or overlapping, every edge drawn.
    geometry = page.evaluate(GEOMETRY)
    assert geometry["problems"] == []
    assert len(geometry["counts"]) == 50
    assert all(nodes == 4 and edges >= 3 for _, nodes, edges in geometry["counts"])

    # A phone: the page fits its width (tables scroll inside their cards), the graphs too.
    page.set_viewport_size({"width": 390, "height": 844})
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / "review-summary-390.png"))
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.evaluate(GEOMETRY)["problems"] == []
    assert page.errors == []


def test_reapprove_and_end_from_the_page(api: Api, organization: dict[str, Any], page: Any) -> None:
    expected = organization["expected"]
    lapsed = next(k for k, v in expected.items() if v == "lapsed")
    pending = next(k for k, v in expected.items() if v == "pending")
    page.goto(_link(api))
    row = page.locator(f"#grant-{lapsed}")
    assert row.get_attribute("data-effective") == "lapsed"
    row.locator("input[name=note]").fill("Still caring for them; confirmed by phone")
    row.locator("button[value=still_needed]").click()
    page.wait_for_load_state()
    row = page.locator(f"#grant-{lapsed}")
    assert row.get_attribute("data-effective") == "active"
    assert "confirmed by phone" in row.inner_text()
    assert lapsed not in page.eval_on_selector_all(
        "[data-attention-item]", "els => els.map(e => e.dataset.attentionItem)"
    )

    row = page.locator(f"#grant-{pending}")
    row.locator("input[name=note]").fill("Never accepted; not needed")
    row.locator("button[value=end]").click()
    page.wait_for_load_state()
    row = page.locator(f"#grant-{pending}")
    assert row.get_attribute("data-effective") == "revoked"
    assert "Never accepted; not needed" in row.locator("td.ended").inner_text()

    reviewer = f"reviewer:{api.reviewer_id}"
    [recertified] = _audit(api, "grant.recertified")
    assert recertified.actor == reviewer and recertified.entity_id == lapsed
    ended = [e for e in _audit(api, "grant.revoked") if e.entity_id == pending]
    assert [e.actor for e in ended] == [reviewer]
    assert {e.actor for e in _audit(api, "review.read")} == {reviewer}
    assert page.errors == []

    # A note is required: the browser refuses to send the form without one.
    row = page.locator(f"#grant-{next(k for k, v in expected.items() if v == 'expiring')}")
    row.locator("button[value=still_needed]").click()
    assert len(_audit(api, "grant.recertified")) == 1


def test_the_signed_link_fails_closed(api: Api) -> None:
    url = _link(api)
    path = url.removeprefix("http://authz.test")
    assert api.http.get(path).status_code == 200
    [issued] = _audit(api, "review.link_issued")
    assert issued.actor == f"reviewer:{api.reviewer_id}"
    reads = len(_audit(api, "review.read"))
    own = api.sign_in(f"reviewer:{api.reviewer_id}", "review@practice.test")
    for bad in (path[:-3] + "abc", "/v1/review/open?ticket=" + own, "/v1/review/open"):
        r = api.http.get(bad)
        assert r.status_code == 401 and r.mimetype == "application/problem+json", bad
    form = {"ticket": "x", "link_id": "lnk_x", "decision": "end", "note": "n"}
    assert api.http.post("/v1/review/open/recertify", data=form).status_code == 401
    clock.travel(dt.timedelta(minutes=16))
    assert api.http.get(path).status_code == 401
    assert len(_audit(api, "review.read")) == reads  # nothing was shown
    # Only a reviewer gets a link.
    assert api.call("POST", "/v1/review/links", {}).status_code == 403  # a provider


def test_the_page_and_the_command_agree_byte_for_byte(
    api: Api, organization: dict[str, Any]
) -> None:
    rt = api.rt
    service = access.service(rt)
    service.fresh(access.Consistency(None))
    now = clock.now()
    served = review.build(rt.store, rt.settings, api.org_id, now=now, engine=service.engine)
    command = review.build(rt.store, rt.settings, api.org_id, now=now)
    assert report_html.render(served) == report_html.render(command)
