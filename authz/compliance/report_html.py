"""The access review as one self-contained HTML page: inline CSS and SVG, no script, no links."""

from __future__ import annotations

import itertools
import re
from typing import Any

import graphviz
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from authz.compliance.review import ATTENTION

STATUS_STYLE = {
    "active": ("#1b7f3b", "solid"),
    "pending": ("#b86e00", "dashed"),
    "revoked": ("#8a8a8a", "dotted"),
    "expired": ("#8a8a8a", "dotted"),
    "lapsed": ("#b42318", "dotted"),
    None: ("#5b6b7f", "solid"),
}
SHARED_EMAIL = "#6d28d9"
#: A Content-Security-Policy under which the page renders completely and nothing else runs.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'"
)
#: The signed-in page: its forms post back to the service, and nothing else changes.
ACTION_CSP = CSP.replace("form-action 'none'", "form-action 'self'")


def when(value: str | None) -> str:
    """An ISO time as a reviewer reads it: to the minute, in UTC."""
    return f"{value[:16].replace('T', ' ')} UTC" if value else ""


def css_string(value: object) -> Markup:
    """Text inside a CSS string in the page's <style>: every character that could end the
    string, the rule or the element is written as a CSS escape."""
    out = []
    for ch in str(value):
        if ch.isalnum() or ch in " .,:;·-_@()/+":
            out.append(ch)
        else:
            out.append(f"\\{ord(ch):x} ")
    return Markup("".join(out))  # noqa: S704 - escaped above for a CSS string


def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("authz.compliance", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["css_string"] = css_string
    return env


def _text(value: str) -> str:
    """A label as DOT reads it: backslashes are escapes there, so they are doubled."""
    return value.replace("\\", "\\\\")


def _dot_source(family: dict[str, Any], focus: str | None) -> str:
    """One family's account graph in DOT: clients as boxes, each link an edge from the
    caregiver (linked client) to the care receiver, shared emails as undirected dashed edges."""
    number = family["number"]
    g = graphviz.Digraph(f"family_{number}")
    g.attr(rankdir="LR", nodesep="0.5", ranksep="1.1", pad="0.2", bgcolor="transparent")
    g.attr("node", shape="box", style="rounded,filled", fontname="Helvetica", fontsize="11")
    g.attr("edge", fontname="Helvetica", fontsize="10")
    for m in family["clients"]:
        g.node(
            m["id"],
            _text(f"{m['name']} ({m['client_type']})\n{m['id']}"),
            id=f"f{number}-{m['id']}",
            **{"class": f"client-{m['id']}"},
            fillcolor="#eef6ff" if m["client_type"] == "adult" else "#fff7e6",
            color="#1f3a5f",
            penwidth="2.5" if m["id"] == focus else "1.2",
        )
    for link in family["links"]:
        colour, style = STATUS_STYLE.get(link["portal_status"], STATUS_STYLE[None])
        portal = link["portal_status"]
        g.edge(
            link["caregiver"],
            link["receiver"],
            _text(
                link["relationship"].replace("_", " ") + (f" · portal {portal}" if portal else "")
            ),
            id=f"f{number}-{link['link_id']}",
            **{"class": f"link-{link['link_id']}"},
            color=colour,
            fontcolor="#1d2733",
            style=style,
            penwidth="2",
            arrowhead="normal" if portal else "none",
        )
    for group in family["shared_email"]:
        for a, b in itertools.pairwise(group):
            g.edge(
                a,
                b,
                "same email",
                id=f"f{number}-shared-{a}-{b}",
                **{"class": "shared-email"},
                color=SHARED_EMAIL,
                fontcolor=SHARED_EMAIL,
                style="dashed",
                dir="none",
            )
    return str(g.source)


_SVG = re.compile(r"<svg\b.*?</svg>", re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->\n?", re.DOTALL)


def family_svgs(families: list[dict[str, Any]], focus: str | None = None) -> dict[int, str]:
    """Each family's graph laid out by Graphviz `dot` (one run for all) as inline SVG."""
    if not families:
        return {}
    sources = "\n".join(_dot_source(f, focus) for f in families)
    out = graphviz.pipe("dot", "svg", sources.encode(), quiet=True).decode()
    svgs = _SVG.findall(out)
    if len(svgs) != len(families):
        raise RuntimeError(f"dot drew {len(svgs)} graphs for {len(families)} families")
    pictures = {}
    for family, svg in zip(families, svgs, strict=True):
        svg = _COMMENT.sub("", svg).replace(
            "<svg ",
            f'<svg class="family-graph" role="img" '
            f'aria-label="Account graph of family {family["number"]}" ',
            1,
        )
        # The layout's own first group is `graph0` in every drawing: unique ids on one page.
        svg = re.sub(
            r'<g id="[^"]*graph0"', f'<g id="family-{family["number"]}-graph"', svg, count=1
        )
        pictures[family["number"]] = svg
    return pictures


def render(report: dict[str, Any], actions: dict[str, str] | None = None) -> str:
    """The HTML page for report data from `authz.compliance.review.build`.

    `actions`: on a signed-in page only, the form target and the page's ticket, so that each
    grant gets its re-approve and end buttons; without it the page is read-only."""
    pictures = {
        number: Markup(svg)  # noqa: S704 - dot's own SVG of labels it escaped
        for number, svg in family_svgs(report["families"], report["client_filter"]).items()
    }
    return (
        _env()
        .get_template("access_review.html")
        .render(
            report=report,
            pictures=pictures,
            csp=CSP if actions is None else ACTION_CSP,
            actions=actions,
            attention=ATTENTION,
        )
    )
