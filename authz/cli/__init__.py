"""The `authz` command line for operators and compliance staff.

Every command but `serve` prints JSON with `--json` and a readable table otherwise, and exits
non-zero with a one-line reason on bad input. Only click and the standard library are imported
up front: `authz --help` must answer at once, so each command imports what it uses.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from authz.base.errors import AuthzError

if TYPE_CHECKING:
    from authz.base.config import Settings
    from authz.service.runtime import Runtime

F = TypeVar("F", bound=Callable[..., Any])
ACTOR = "operator:cli"


def _settings() -> Settings:
    from authz.base.config import Settings

    return Settings.from_env()


def _runtime(create: bool = False) -> Runtime:
    """The store of AUTHZ_DATABASE_URL; only `init` (`create`) may make a new SQLite file."""
    from authz.service.runtime import Runtime

    return Runtime.create(_store_settings(create))


def _store_settings(create: bool = False) -> Settings:
    """Valid settings whose store exists (or, for `init`, may be created)."""
    settings = _settings()
    sqlite_file = _sqlite_file(settings.database_url)
    if sqlite_file is not None:
        if create:
            sqlite_file.parent.mkdir(parents=True, exist_ok=True)
        elif not sqlite_file.is_file():
            fail(
                f"no store at {sqlite_file}: run `authz init` there first, "
                "or set AUTHZ_DATABASE_URL to the service's store"
            )
    return settings


def _sqlite_file(url: str) -> Path | None:
    if not url.startswith("sqlite:///"):
        return None
    return Path(url.removeprefix("sqlite:///").partition("?")[0])


def emit(data: Any, as_json: bool, columns: Iterable[str] | None = None) -> None:
    """JSON for scripts, a plain table for people."""
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    rows = data if isinstance(data, list) else [data]
    if not rows:
        click.echo("(nothing)")
        return
    cols = list(columns or rows[0].keys())
    widths = {c: max(len(c), *(len(_cell(r.get(c))) for r in rows)) for c in cols}
    click.echo("  ".join(c.upper().ljust(widths[c]) for c in cols))
    for r in rows:
        click.echo("  ".join(_cell(r.get(c)).ljust(widths[c]) for c in cols))


def _cell(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return "" if value is None else str(value)


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr, non-zero exit."""
    click.echo(f"authz: {message}", err=True)
    sys.exit(code)


def one_line_errors(func: F) -> F:
    """Bad input and store failures end as one line, never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except AuthzError as exc:
            fail(exc.detail)
        except BrokenPipeError:
            raise  # `authz … | head`: click ends quietly
        except (ValueError, OSError) as exc:
            fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        except Exception as exc:  # the last line of defence for a command line
            from sqlalchemy.exc import SQLAlchemyError

            if isinstance(exc, SQLAlchemyError):
                fail(f"store error: {str(exc).splitlines()[0]}")
            raise

    return wrapper  # type: ignore[return-value]


json_option = click.option("--json", "as_json", is_flag=True, help="print JSON")


class _OneLineGroup(click.Group):
    """Usage errors as one line on stderr (`authz: …`), never click's four-line block."""

    def main(  # type: ignore[override]
        self, args: Any = None, standalone_mode: bool = True, **kwargs: Any
    ) -> Any:
        if not standalone_mode:
            return super().main(args, standalone_mode=False, **kwargs)
        try:
            code = super().main(args, standalone_mode=False, **kwargs)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "authz"
            fail(f"{_sentence(exc.format_message())} (see `{where} --help`)", exc.exit_code)
        except click.ClickException as exc:
            fail(_sentence(exc.format_message()), exc.exit_code)
        except click.Abort:
            fail("aborted", 1)
        sys.exit(code if isinstance(code, int) else 0)


def _sentence(message: str) -> str:
    return " ".join(message.split())


@click.group(cls=_OneLineGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """authz: authorization and delegated access for client portals."""


@main.command()
@click.option("--demo", is_flag=True, help="also create a demo organization (development mode)")
@json_option
@one_line_errors
def init(demo: bool, as_json: bool) -> None:
    """Create or migrate the store and the first signing key (a second run changes nothing)."""
    from authz.store import migrate
    from authz.tokens import keys

    rt = _runtime(create=True)
    applied = migrate.upgrade(rt.store.engine)
    kid = keys.ensure_key(rt.store, ACTOR, keys.ACCESS_TOKEN)
    out: dict[str, Any] = {
        "database": _safe_url(rt.settings.database_url),
        "migrations_applied": applied,
        "signing_kid": kid,
    }
    if rt.settings.dev_mode:
        out["dev_issuer_kid"] = keys.ensure_key(rt.store, ACTOR, keys.DEV_ISSUER)
    if demo:
        if not rt.settings.dev_mode:
            fail("--demo needs development mode (AUTHZ_DEV_MODE=1)")
        from authz.cli.demo import ensure_demo_org

        out["demo"] = ensure_demo_org(rt, Path("instance") / "demo.json")
        if not as_json:
            for line in _demo_lines(out["demo"]):
                click.echo(line)
            return
    emit(out, as_json)


def _demo_lines(demo: dict[str, Any]) -> list[str]:
    """What `make run` prints: where the values are, and the ones the README's examples use."""
    family = demo["family"]
    return [
        f"demo practice {demo['org_id']} at {demo['url']}",
        "  values for the README's examples: instance/demo.json; in a shell: . instance/demo.env",
        f"  portal backend  CLIENT_ID={demo['client_id']} (secret in demo.json), "
        f"AUDIENCE={demo['audience']}",
        f"  provider        PROVIDER_ID={demo['provider_id']} ({demo['provider_email']})",
        f"  reviewer        REVIEWER_ID={demo['reviewer_id']} ({demo['reviewer_email']})",
        f"  Jenna           JENNA={family['jenna']} ({family['jenna_email']}), "
        f"card JENNA_CARD={family['jenna_card']}",
        f"  her child Sam   SAM={family['sam']}, portal access SAM_LINK={family['sam_link']} "
        f"(active), card SAM_CARD={family['sam_card']}, "
        f"invoice SAM_INVOICE={family['sam_invoice']}",
        f"  Alex and Casey  ALEX={family['alex']}, CASEY={family['casey']} share "
        f"{family['shared_email']}",
    ]


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, callback=lambda c, p, v: _host(v))
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    default=0,
    type=click.IntRange(0, 64),
    help="N > 0 runs granian with N worker processes (production); 0 the development server",
)
@one_line_errors
def serve(host: str, port: int, workers: int) -> None:
    """Run the HTTP service (no --json: it logs, one JSON object a line)."""
    import os

    _store_settings()  # valid settings and an existing store before anything starts
    level = os.environ.get("AUTHZ_LOG_LEVEL", "INFO")
    if level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        fail(f"AUTHZ_LOG_LEVEL={level}: expected DEBUG, INFO, WARNING or ERROR")

    if workers > 0 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        import tempfile

        # Before prometheus_client is imported: every worker writes its samples here.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="authz-metrics-")
    from api.app import create_app
    from api.observability import configure_logging

    configure_logging(os.environ.get("AUTHZ_LOG_LEVEL", "INFO"))
    app = create_app()
    app.extensions["authz"].check()
    if workers <= 0:
        from api.wsgi_server import settle, start_replication

        start_replication(app)
        settle(app)
        app.run(host=host, port=port, threaded=True)
        return
    from api.wsgi_server import serve_workers

    serve_workers(host, port, workers)


def _host(value: str) -> str:
    """A host name or address to listen on, checked before any import of the service."""
    import ipaddress
    import re

    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?", value):
        raise click.BadParameter(f"{value!r} is not a host name or IP address")
    return value


@main.group()
def org() -> None:
    """Organizations."""


@org.command("create")
@click.option("--name", required=True)
@click.option("--entitlement", "entitlements", multiple=True, help="e.g. linked_portal_access")
@json_option
@one_line_errors
def org_create(name: str, entitlements: tuple[str, ...], as_json: bool) -> None:
    """Create an organization."""
    from authz.accounts import orgs

    emit(orgs.create_org(_runtime().store, ACTOR, name, list(entitlements)), as_json)


@org.command("jurisdiction")
@click.option("--org", "org_id", required=True)
@click.argument("jurisdiction", required=False)
@json_option
@one_line_errors
def org_jurisdiction(org_id: str, jurisdiction: str | None, as_json: bool) -> None:
    """Set the organization's jurisdiction (a row of policies/age_bands.yaml; none: default)."""
    from authz.accounts import orgs

    orgs.set_jurisdiction(_runtime().store, ACTOR, org_id, jurisdiction)
    if as_json:
        emit({"org_id": org_id, "jurisdiction": jurisdiction}, True)
        return
    click.echo(f"{org_id}: jurisdiction {jurisdiction or '(the age band table default)'}")


def _staff_command(kind: str) -> None:
    @main.group(name=kind)
    def group() -> None:
        pass

    group.help = f"{kind.title()}s of an organization."

    @group.command("create")
    @click.option("--org", "org_id", required=True)
    @click.option("--email", required=True)
    @click.option("--name", default="")
    @json_option
    @one_line_errors
    def create(org_id: str, email: str, name: str, as_json: bool) -> None:
        from authz.accounts import orgs

        make = orgs.create_provider if kind == "provider" else orgs.create_reviewer
        emit(make(_runtime().store, ACTOR, org_id, email, name), as_json)

    create.help = f"Create a {kind} bound to an email identity."


_staff_command("provider")
_staff_command("reviewer")


@main.group("oauth-client")
def oauth_client() -> None:
    """Portal backends and other OAuth clients."""


@oauth_client.command("create")
@click.option("--org", "org_id", required=True)
@click.option(
    "--audience",
    "audiences",
    multiple=True,
    required=True,
    help="the portal's URL, e.g. https://portal.example: every token's aud (repeatable)",
)
@click.option(
    "--for",
    "preset",
    type=click.Choice(["portal", "reviewer"]),
    default=None,
    help="portal: checks, client and provider sign-ins; reviewer: reviewer sign-ins and the "
    "audit and review API",
)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    help="space- or repeat-separated scopes, added to --for's (client sign-ins need one of "
    "profile appointments billing documents forms messages; provider sign-ins authz:admin; "
    "reviewer sign-ins authz:review; checks authz:check)",
)
@click.option("--name", default="")
@click.option(
    "--jwks-file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="public JWKS for private_key_jwt (then no secret is issued)",
)
@json_option
@one_line_errors
def oauth_client_create(
    org_id: str,
    audiences: tuple[str, ...],
    preset: str | None,
    scopes: tuple[str, ...],
    name: str,
    jwks_file: str | None,
    as_json: bool,
) -> None:
    """Register a portal backend; prints client_id, the secret (once) and which sign-ins it can
    exchange."""
    from authz.oauth import oauth_clients

    flat = [s for item in scopes for s in item.split()]
    if preset is None and not flat:
        fail(
            "say what the client is for: --for portal (checks, client and provider sign-ins) "
            "or --for reviewer (reviewer sign-ins), or give --scope"
        )
    wanted = [*oauth_clients.presets().get(preset or "", ()), *flat]
    jwks = _json_file(jwks_file) if jwks_file else None
    created = oauth_clients.create_client(
        _runtime().store,
        ACTOR,
        org_id,
        list(audiences),
        list(dict.fromkeys(wanted)),
        name,
        "private_key_jwt" if jwks else "client_secret_basic",
        jwks,
    )
    created["sign_ins"] = oauth_clients.sign_ins(created["scopes"])
    if as_json:
        emit(created, True)
        return
    emit({k: v for k, v in created.items() if k != "sign_ins"}, False)
    for kind, says in created["sign_ins"].items():
        click.echo(f"{kind} sign-ins: {says}")


def _json_file(path: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        fail(f"{path}: not a JSON file")


@main.command("dev-token")
@click.option("--email", required=True)
@click.option("--unverified", is_flag=True, help="mark the email as not verified")
@json_option
@one_line_errors
def dev_token(email: str, unverified: bool, as_json: bool) -> None:
    """An ID token from the built-in development issuer (development mode only)."""
    from authz.oauth import identity

    rt = _runtime()
    if not rt.settings.dev_mode or rt.dev_keys is None:
        fail("dev-token exists only in development mode (AUTHZ_DEV_MODE=1)")
    assert rt.dev_keys is not None
    token = identity.mint_dev_id_token(rt.settings, rt.dev_keys, email, not unverified)
    if as_json:
        emit({"id_token": token, "issuer": rt.settings.dev_issuer}, True)
    else:
        click.echo(token)


@main.group()
def keys() -> None:
    """Signing keys."""


@keys.command("rotate")
@click.option("--alg", type=click.Choice(["ES256", "EdDSA"]), default="ES256", show_default=True)
@json_option
@one_line_errors
def keys_rotate(alg: str, as_json: bool) -> None:
    """Start signing with a new key; the old one verifies until its tokens expire."""
    from authz.tokens import keys as keymod

    kid = keymod.create_key(_runtime().store, ACTOR, alg)
    emit({"signing_kid": kid, "alg": alg}, as_json)


@main.group()
def audit() -> None:
    """The audit trail."""


@audit.command("verify")
@click.option(
    "--against",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="a signed checkpoint file (`authz audit checkpoint`): prove nothing before it changed",
)
@json_option
@one_line_errors
def audit_verify(against: str | None, as_json: bool) -> None:
    """Prove the hash chain is unbroken and ends at its head; exit 1 at the first broken link."""
    from pathlib import Path

    from authz.compliance import audit_checkpoint, audit_log

    pinned = audit_checkpoint.load(Path(against).read_text()) if against else None
    result = audit_log.verify(_runtime().store, pinned)
    if as_json:
        emit(result, True)
    else:
        for line in _verify_lines(result):
            click.echo(line)
    if not result["ok"]:
        sys.exit(1)


@audit.command("checkpoint")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="write the signed checkpoint to this file (default: standard output)",
)
@json_option
@one_line_errors
def audit_checkpoint(out: str | None, as_json: bool) -> None:
    """Sign the chains' heads now; keep the file outside the database (see README)."""
    import json
    from pathlib import Path

    from authz.compliance import audit_checkpoint as checkpoint

    rt = _runtime()
    text = json.dumps(checkpoint.make(rt.store, rt.keys), indent=2, sort_keys=True) + "\n"
    if out is None:
        click.echo(text, nl=False)
        return
    Path(out).write_text(text)
    claims = json.loads(text)["claims"]
    if as_json:
        emit({"written": out, "claims": claims}, True)
        return
    click.echo(
        f"checkpoint written to {out}: changes up to seq {claims['changes']['seq']}, "
        f"decisions up to seq {claims['decisions']['seq']}, store revision {claims['revision']}"
    )


def _verify_lines(result: dict[str, Any]) -> list[str]:
    lines = [f"audit trail: {'unbroken' if result['ok'] else 'BROKEN'}"]
    for name in ("changes", "decisions"):
        chain = result[name]
        start = chain.get("checkpoint")
        origin = f"from checkpoint after seq {start['seq']}" if start else "from the start"
        line = f"{name}: {chain['verified']} rows verified {origin}"
        broken = chain["first_break"]
        if broken:
            line += (
                f"; first broken link at seq {broken['seq']} ({broken['id']}): {broken['reason']}"
            )
        signed = chain.get("signed_checkpoint")
        if signed and signed["held"]:
            line += f"; signed checkpoint at seq {signed['seq']} holds"
        lines.append(line)
    return lines


@audit.command("purge")
@click.option("--dry-run", is_flag=True, help="count what would be removed; remove nothing")
@json_option
@one_line_errors
def audit_purge(dry_run: bool, as_json: bool) -> None:
    """Remove audit rows older than the retention period, keeping both chains verifiable."""
    import os

    from authz.base import clock
    from authz.compliance import retention

    days = retention.configured_days(os.environ)
    rt = _runtime()
    result = retention.purge(rt.store, ACTOR, days, clock.now(), dry_run)
    if as_json:
        emit(result, True)
        return
    verb = "would remove" if dry_run else "removed"
    purged = result["purged"]
    click.echo(
        f"retention {days} days (before {result['cutoff']}): {verb} "
        f"{purged['changes']} changes and {purged['decisions']} decisions"
    )
    for name, point in sorted(result.get("checkpoints", {}).items()):
        click.echo(f"{name} now verifies from checkpoint after seq {point['seq']}")


@main.group()
def outbox() -> None:
    """The email outbox."""


@outbox.command("deliver")
@click.option("--loop", is_flag=True, help="keep delivering every few seconds")
@json_option
@one_line_errors
def outbox_deliver(loop: bool, as_json: bool) -> None:
    """Send queued emails over AUTHZ_SMTP_URL; failures stay queued and are retried."""
    from authz.accounts import outbox as outbox_mod

    rt = _runtime()
    if not rt.settings.smtp_url:
        fail("set AUTHZ_SMTP_URL (smtp://host:port) to deliver email")
    assert rt.settings.smtp_url is not None
    sender = outbox_mod.SmtpSender(rt.settings.smtp_url, rt.settings.mail_from)
    if loop:
        worker = outbox_mod.DeliveryLoop(rt.store, sender)
        worker._run()
        return
    emit(outbox_mod.deliver_due(rt.store, sender), as_json)


@main.group()
def report() -> None:
    """Reports for compliance reviews."""


@report.command("access")
@click.option(
    "--org", "org_id", default=None, help="organization (default: the client's, or the only one)"
)
@click.option("--client", "client_id", default=None, help="one client and that client's family")
@click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False),
    callback=lambda c, p, v: _in_existing_folder(v),
    default=None,
    help="write the self-contained HTML page to this file",
)
@click.option(
    "--pdf",
    "pdf_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="print the page to this PDF file (headless Chromium), for the reviewer's files",
)
@json_option
@one_line_errors
def report_access(
    org_id: str | None,
    client_id: str | None,
    html_file: str | None,
    pdf_file: str | None,
    as_json: bool,
) -> None:
    """A summary of what needs attention, then per client who can act and how, every grant,
    disclosures and who acted."""
    from authz.compliance import report_html, report_pdf, review

    rt = _runtime()
    org_id = review.org_for(rt.store, org_id, client_id)
    if pdf_file:
        report_pdf.chromium()  # before the read is audited: a print that cannot happen is no read
    data = review.read(rt.store, rt.settings, ACTOR, org_id, client_id)
    page = report_html.render(data) if html_file or pdf_file else ""
    if html_file:
        Path(html_file).write_text(page, encoding="utf-8")
    if pdf_file:
        report_pdf.print_pdf(page, Path(pdf_file))
    if as_json:
        emit(data, True)
        return
    rows = [
        {
            "client": c["id"],
            "name": c["name"],
            "who_can_act": "; ".join(f"{w['name']} ({w['via']})" for w in c["who_can_act"]),
            "acted_for_by": ", ".join(a["name"] for a in c["acted_for_by"]),
            "attention": ", ".join(c["attention"]),
            "grants": len(c["grants"]),
            "disclosures": len(c["disclosures"]["email_copies"])
            + len(c["disclosures"]["emergency_contacts"]),
        }
        for c in data["clients"]
    ]
    emit(rows, False)
    for written in (html_file, pdf_file):
        if written:
            click.echo(f"wrote {written}")


@main.group()
def policy() -> None:
    """The policy files: check, test, explain, diff."""


model_option = click.option(
    "--model", "model", default=None, help="model file (default: the one the service loads)"
)
policies_option = click.option(
    "--policies",
    "policies",
    default=None,
    help="policy folder (default: AUTHZ_POLICY_DIR, else the copy installed with authz)",
)


@policy.command("check")
@model_option
@policies_option
@json_option
@one_line_errors
def policy_check(model: str | None, policies: str | None, as_json: bool) -> None:
    """The files load and fit the vocabulary; payments stay with their client; no dead rule."""
    from authz.compliance.policy_review import check, sources

    result = check.check(sources.given(model, policies))
    if as_json:
        emit(result, True)
    elif result["ok"]:
        click.echo(
            f"policy check: ok: {result['rules']} rules in {result['policies']}, "
            f"model {result['model']} ({result['digest']})"
        )
    else:
        for line in result["lines"]:
            click.echo(line)
    if not result["ok"]:
        fail(f"{len(result['problems'])} problem(s) in the policy files", 1)


@policy.command("test")
@model_option
@policies_option
@click.option("--cases", "cases_dir", default=None, help="test folder (default: POLICIES/tests)")
@json_option
@one_line_errors
def policy_test(
    model: str | None, policies: str | None, cases_dir: str | None, as_json: bool
) -> None:
    """Run the YAML test cases: facts, queries and the decision each must get."""
    import yaml

    from authz.compliance.policy_review import sources
    from authz.policy import cases

    files = sources.given(model, policies)
    sources.check_exists(files)
    folder = Path(cases_dir) if cases_dir else files.policies / "tests"
    if not (folder / "schema.json").is_file():
        fail(f"{files.display(folder)}: no test folder with schema.json")
    try:
        results = cases.run_all(folder, files.model, files.policies)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        fail(f"a test file is not valid YAML{where}: {getattr(exc, 'problem', exc)}")
    if not results:
        fail(f"{files.display(folder)}: no *.yaml test suites")
    failed = [r for r in results if not r.passed]
    rows = [
        {
            "suite": r.suite,
            "case": r.name,
            "result": "pass" if r.passed else "FAIL",
            "expected": r.expected,
            "got": "allow" if r.allowed else "deny",
            "problem": r.problem,
        }
        for r in results
    ]
    if as_json:
        emit({"passed": len(results) - len(failed), "failed": len(failed), "cases": rows}, True)
    else:
        emit(rows, False, ["suite", "case", "result", "expected", "got", "problem"])
        click.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed:
        fail(f"{len(failed)} policy test case(s) failed", 1)


@policy.command("explain")
@click.option("--login", default=None, help="the login's verified email")
@click.option("--subject", default=None, help="client:<id>, provider:<id> or reviewer:<id>")
@click.option("--as", "acting_as", default=None, help="the client account acted as (cli_…)")
@click.option("--action", required=True, help="<resource type>.<verb>, e.g. invoice.pay")
@click.option("--resource", required=True, help="TYPE:ID[@OWNER], e.g. invoice:inv_9@cli_sam")
@click.option("--payment-method", default=None, help="pm_… used to pay, for invoice.pay")
@json_option
@one_line_errors
def policy_explain(
    login: str | None,
    subject: str | None,
    acting_as: str | None,
    action: str,
    resource: str,
    payment_method: str | None,
    as_json: bool,
) -> None:
    """One decision with every rule and grant that took part, and who granted access."""
    from authz.compliance.policy_review import explain, live

    rt = _runtime()
    engine = live.engine_for(rt.store, rt.settings.majority_age)
    question = explain.Question(login, subject, acting_as, action, resource, payment_method)
    result = explain.explain(rt.store, engine, question)
    if as_json:
        emit(result, True)
        return
    click.echo(f"DECISION  {result['decision'].upper()}")
    click.echo(f"REASON    {result['reason']}")
    click.echo(f"RULE      {result['rule']}")
    click.echo(f"POLICY    {result['policy_digest']} (store revision {result['revision']})")
    band = result.get("age_band")
    if band:
        click.echo(f"AGE BAND  {band['age']}, {band['rule']}")
        if band["next_transition"]:
            click.echo(f"NEXT      {band['next_transition']}")
    click.echo("")
    click.echo(f"Policy lines for {action}:")
    emit(result["rules"], False, ["line", "rule", "matches"])
    click.echo("")
    click.echo("Chain:")
    for step in result["chain"]:
        click.echo(f"  {step['step']}: {step['name']} ({step['id']}): {step['detail']}")


@policy.command("diff")
@click.argument("old")
@click.argument("new")
@click.option("--no-store", is_flag=True, help="do not count the holders in the store")
@json_option
@one_line_errors
def policy_diff(old: str, new: str, no_store: bool, as_json: bool) -> None:
    """The decisions that change from OLD to NEW (folders, or rev:<git revision>)."""
    from authz.compliance.policy_review import diff, live, sources

    with sources.resolve(old) as a, sources.resolve(new) as b:
        before, after = sources.load(a), sources.load(b)
        same_text = a.texts() == b.texts()
        old_bands, new_bands = sources.bands(a), sources.bands(b)
    counts = None
    bands: list[dict[str, Any]] = []
    if not no_store:
        rt = _runtime()
        engine = live.engine_for(rt.store, rt.settings.majority_age)
        counts = diff.store_counts(engine)
        bands = diff.band_changes(old_bands, new_bands, engine)
    groups = diff.summarize(diff.changes(before, after), counts)
    result = {
        "old": {"source": old, "digest": before.digest},
        "new": {"source": new, "digest": after.digest},
        "identical": same_text,
        "changes": groups,
        "age_bands": bands,
    }
    if as_json:
        emit(result, True)
        return
    if same_text:
        click.echo(f"identical: {old} and {new} are the same files ({before.digest})")
    elif not groups and not bands:
        click.echo(f"the files differ, but no decision changes ({old} → {new})")
    else:
        click.echo(f"decisions that change from {old} to {new}:")
        for group in groups:
            click.echo(f"  - {group['summary']}")
            for line in group["lines"]:
                click.echo(f"      {line}")
        if bands:
            click.echo("live grants whose age band changes (policies/age_bands.yaml):")
            for change in bands:
                click.echo(f"  - {change['summary']}")


@main.group()
def grants() -> None:
    """Live grants and relations."""


@grants.command("export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["casbin", "table", "json"]),
    default="table",
    show_default=True,
)
@click.option("--org", "org_id", default=None, help="one organization (default: all)")
@click.option("--json", "as_json", is_flag=True, help="print JSON (same as --format json)")
@one_line_errors
def grants_export(fmt: str, org_id: str | None, as_json: bool) -> None:
    """Every relation the store holds now, as Casbin g/g2 lines or a readable table."""
    from authz.compliance.policy_review import live

    rt = _runtime()
    engine = live.engine_for(rt.store, rt.settings.majority_age)
    if org_id is not None and org_id not in engine.facts.orgs:
        fail(f"--org {org_id}: no such organization")
    if fmt == "casbin" and not as_json:
        click.echo("\n".join(live.casbin_lines(engine, org_id)))
        return
    rows = [
        {
            "subject": r.subject,
            "relation": r.relation,
            "owner": r.owner,
            "link_id": r.link_id,
            "why": r.reason,
        }
        for r in live.relations(engine, org_id)
    ]
    pms = [
        {"payment_method": pm, "client": owner}
        for pm, owner in live.payment_methods(engine, org_id)
    ]
    if as_json or fmt == "json":
        emit(
            {
                "revision": str(engine.facts.revision),
                "policy_digest": engine.policy.digest,
                "at": engine.now().isoformat(),
                "relations": rows,
                "payment_methods": pms,
            },
            True,
        )
        return
    emit(rows, False, ["subject", "relation", "owner", "link_id", "why"])
    click.echo("")
    emit(pms, False, ["payment_method", "client"])


@grants.command("recertification-sweep")
@json_option
@one_line_errors
def grants_recertification_sweep(as_json: bool) -> None:
    """Email the reminders due before review-by dates and audit each lapse (run daily)."""
    from authz.accounts import recertification

    rt = _runtime()
    emit(recertification.sweep(rt.store, rt.settings), as_json)


@main.command()
@click.option(
    "--database",
    default=None,
    type=click.Path(dir_okay=False),
    callback=lambda c, p, v: _in_existing_folder(v),
    help="SQLite file to use (default: a temporary one)",
)
@json_option
@one_line_errors
def demo(database: str | None, as_json: bool) -> None:
    """Walk through the whole story on a throwaway store of its own (not the running
    server's: its ids match nothing there) and print what happened."""
    from authz.cli.demo import run_demo

    run_demo(database, as_json)


def _in_existing_folder(path: str | None) -> str | None:
    """A file to write: its folder must exist (said before any work is done)."""
    if path is not None and not Path(path).resolve().parent.is_dir():
        raise click.BadParameter(f"{path}: no such folder {Path(path).parent}")
    return path


