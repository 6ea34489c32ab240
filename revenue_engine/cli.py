"""The ``revenue-engine`` command line: :func:`build_parser` and :func:`main`.

``--help`` and each command's ``--help`` print plain text (:data:`DESCRIPTION`,
:data:`EXAMPLES`), never this docstring's markup.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO, TypeAlias

from revenue_engine.clock import unix_now
from revenue_engine.dev_secret import (
    DEV_SECRET_FILE,
    wants_development_secret,
    with_development_secret,
)
from revenue_engine.errors import DomainError, ValidationFailed
from revenue_engine.gateway import StripeGateway
from revenue_engine.settings import Settings, SettingsError, get_settings

DESCRIPTION = "revenue-engine: a GraphQL subscription-billing API on Stripe."

#: The epilog of ``--help``: a few commands to start from, as plain text.
EXAMPLES = """\
examples:
  revenue-engine serve --port 8000                  the API (what make run starts)
  revenue-engine token --org org_demo --admin       a bearer token the server accepts
  revenue-engine plans check plans.yaml             list every problem of a plans file
  revenue-engine events replay --failed             dispatch failed webhook events again
  revenue-engine reconcile --dry-run                compare subscriptions with Stripe

Run "revenue-engine COMMAND --help" for a command's options. Settings come from the
environment or a .env file (.env.example lists them)."""


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from revenue_engine.app import create_app
    from revenue_engine.embedded import EMBEDDED_HINT, EmulatorNotInstalled, require_emulator
    from revenue_engine.logs import configure_logging
    from revenue_engine.services.plans_file import read_plans_file

    # The embedded default needs the emulator's distribution (the `embedded` extra).
    if settings.embedded_emulator:
        try:
            require_emulator(EMBEDDED_HINT)
        except EmulatorNotInstalled as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    # The plans file is loaded once the database answers; check it first, so a bad file is a
    # list of problems and an exit status, not a failed start-up.
    try:
        read_plans_file(settings.plans_path)
    except ValidationFailed as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem.field}: {problem.message}", file=sys.stderr)
        return 1
    configure_logging(settings.log_level, settings.log_format)
    if wants_development_secret(settings):
        settings = with_development_secret(settings)
        # Where the secret is, never the secret: `token` in this directory signs with it.
        logging.getLogger("revenue_engine.cli").info(
            "JWTs are verified with the development secret in %s;"
            " run `revenue-engine token --org ORG` in this directory for one",
            DEV_SECRET_FILE,
        )
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_config=None,
        proxy_headers=True,
        server_header=False,
    )
    return 0


def _emulator(args: argparse.Namespace, settings: Settings) -> int:
    from revenue_engine.embedded import EmulatorNotInstalled, require_emulator
    from revenue_engine.logs import configure_logging

    try:
        require_emulator()
    except EmulatorNotInstalled as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from stripe_emulator import run_standalone

    configure_logging(settings.log_level, settings.log_format)
    run_standalone(args.host, args.port)
    return 0


def _export_schema(args: argparse.Namespace, settings: Settings) -> int:
    from revenue_engine.schema import export_sdl

    sys.stdout.write(export_sdl())
    return 0


def _plans(args: argparse.Namespace, settings: Settings) -> int:
    from revenue_engine.services.plans_file import load_plans_file, read_plans_file

    path = Path(args.file) if args.file else settings.plans_path
    try:
        specs = read_plans_file(path)
    except ValidationFailed as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem.field}: {problem.message}", file=sys.stderr)
        return 1
    if args.action == "check":
        per_seat = [s.uid for s in specs if s.per_seat]
        print(
            f"ok: {len(specs)} plans in {path.name}"
            + (f"; priced per seat: {', '.join(per_seat)}" if per_seat else "")
        )
        return 0

    async def load() -> int:
        from revenue_engine.db import connect
        from revenue_engine.gateway import StripeGateway
        from revenue_engine.services.catalog import sync_catalog

        database = await connect(settings)
        try:
            plans = await load_plans_file(path)
            print(f"loaded {len(plans)} plans: {', '.join(p.uid for p in plans)}")
            if args.action == "sync":
                gateway = StripeGateway.from_settings(settings)
                try:
                    synced = await sync_catalog(gateway, settings)
                finally:
                    await gateway.close()
                print(f"synced {len(synced)} plans to Stripe: {', '.join(synced)}")
        finally:
            database.close()
        return 0

    return asyncio.run(load())


def _token(args: argparse.Namespace, settings: Settings) -> int:
    from revenue_engine.auth import issue_token

    settings = with_development_secret(settings)
    if settings.auth_jwt_secret is None:
        print(
            "error: set AUTH_JWT_SECRET to sign tokens (in development without one, the secret"
            f" in {DEV_SECRET_FILE} is used)",
            file=sys.stderr,
        )
        return 1
    roles = ["admin"] if args.admin else []
    print(issue_token(settings, args.org, email=args.email, roles=roles, ttl_seconds=args.ttl))
    return 0


async def replay_events(
    settings: Settings, *, event_id: str | None, out: TextIO = sys.stdout
) -> int:
    """Replay one stored event (``event_id``) or every failed one, printing progress to ``out``.

    Expects the documents to be initialised (``db.connect``). Exit status 1 when anything is
    still not applied (failed, busy, retry, not found), so scripts can tell.
    """
    from revenue_engine.webhooks import ledger
    from revenue_engine.webhooks.context import HandlerContext
    from revenue_engine.webhooks.replay import ReplayProgress, replay_many

    ids = [event_id] if event_id else await ledger.failed_event_ids()
    if not ids:
        print("nothing to replay: no failed events", file=out)
        return 0

    def report(progress: ReplayProgress) -> None:
        print(progress.line(), file=out, flush=True)

    from revenue_engine.gateway import StripeGateway

    gateway = StripeGateway.from_settings(settings)
    try:
        progress = await replay_many(
            ids,
            HandlerContext.from_settings(settings, gateway),
            report=report,
            every=max(1, len(ids) // 20),
        )
    finally:
        await gateway.close()
    if progress.outcomes.get("not_found"):
        print(f"error: webhook event {event_id!r} was not found", file=sys.stderr)
    unresolved = sum(progress.outcomes.get(k, 0) for k in ("failed", "busy", "retry", "not_found"))
    return 1 if unresolved else 0


def _run_with_database(settings: Settings, work: Callable[[StripeGateway], Awaitable[int]]) -> int:
    """Connect, run ``work`` with a gateway, close; store outages and Ctrl-C end cleanly."""

    async def run() -> int:
        from revenue_engine.db import StoreError, connect

        try:
            database = await connect(settings)
        except StoreError as exc:
            print(f"error: database unreachable ({type(exc).__name__})", file=sys.stderr)
            return 1
        gateway = StripeGateway.from_settings(settings)
        try:
            return await work(gateway)
        except StoreError as exc:
            print(f"error: database unavailable ({type(exc).__name__})", file=sys.stderr)
            return 1
        except DomainError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 1
        finally:
            await gateway.close()
            database.close()

    try:
        return asyncio.run(run())
    except KeyboardInterrupt:
        # Every step is idempotent (ledger claims, the reconciler): running again resumes.
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130


def _events(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "replay":

        async def replay(gateway: StripeGateway) -> int:
            return await replay_events(settings, event_id=args.id)

        return _run_with_database(settings, replay)

    async def backfill(gateway: StripeGateway) -> int:
        from revenue_engine.webhooks.backfill import backfill as run_backfill
        from revenue_engine.webhooks.context import HandlerContext

        progress = await run_backfill(
            HandlerContext.from_settings(settings, gateway),
            since=args.since,
            only_undelivered=not args.all,
            report=lambda p: print(p.line(), flush=True),
        )
        failed = progress.outcomes.get("failed", 0) + progress.outcomes.get("retry", 0)
        return 1 if failed else 0

    return _run_with_database(settings, backfill)


def parse_since(value: str) -> int:
    """``7d`` / ``12h`` / ``30m`` ago, an ISO date(-time) in UTC, or a unix timestamp."""
    units = {"d": 86400, "h": 3600, "m": 60}
    if value[:-1].isdigit() and value[-1:] in units:
        return int(unix_now()) - int(value[:-1]) * units[value[-1]]
    if value.isdigit():
        return int(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def _reconcile(args: argparse.Namespace, settings: Settings) -> int:
    async def work(gateway: StripeGateway) -> int:
        from revenue_engine.services.drift import reconcile_subscriptions

        report = await reconcile_subscriptions(
            gateway,
            organization_id=args.organization,
            dry_run=args.dry_run,
            starting_after=args.starting_after,
            report=lambda r: print(r.line(), flush=True),
        )
        for drift in report.drifts:
            print(
                f"drift {drift.kind:<20} {drift.subscription_id} org={drift.organization_id or '-'}"
                f" ours={drift.ours or '-'} stripe={drift.stripe or '-'}"
            )
        if args.dry_run:
            would = len({d.subscription_id for d in report.drifts})
            print(f"{report.checked} checked, {len(report.drifts)} drifts, would apply {would}")
        else:
            print(
                f"{report.checked} checked, {len(report.drifts)} drifts, applied {report.applied}"
            )
        return 0

    return _run_with_database(settings, work)


def _usage(args: argparse.Namespace, settings: Settings) -> int:
    async def report(gateway: StripeGateway) -> int:
        from revenue_engine.services.meter_reports import drain_once

        figures = await drain_once(gateway, settings)
        print(figures.line())
        # Failed reports stay inflight and are retried; the status tells a script to look.
        return 1 if figures.failures else 0

    return _run_with_database(settings, report)


#: What ``add_subparsers`` returns (generic for type checkers only).
_SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def build_parser() -> argparse.ArgumentParser:
    """The command line: the commands in the order ``--help`` lists them, a group at a time."""
    parser = argparse.ArgumentParser(
        prog="revenue-engine",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(title="commands", dest="command", required=True, metavar="COMMAND")
    _add_server_commands(sub)
    _add_schema_and_plans_commands(sub)
    _add_token_command(sub)
    _add_events_commands(sub)
    _add_maintenance_commands(sub)
    return parser


def _command(parent: _SubParsers, name: str, summary: str) -> argparse.ArgumentParser:
    """Add the command ``name``; its one-line help in the list doubles as its own description."""
    return parent.add_parser(
        name,
        help=summary,
        description=summary[:1].upper() + summary[1:] + ".",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _add_server_commands(sub: _SubParsers) -> None:
    """``serve`` (the API) and ``emulator`` (the Stripe emulator on its own)."""
    serve = _command(sub, "serve", "run the API")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to bind (8000)")
    serve.set_defaults(func=_serve)

    emulator = _command(sub, "emulator", "run the Stripe emulator on its own")
    emulator.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    emulator.add_argument("--port", type=int, default=12111, help="port to bind (12111)")
    emulator.set_defaults(func=_emulator)


def _add_schema_and_plans_commands(sub: _SubParsers) -> None:
    """``export-schema`` (the SDL) and ``plans`` (check, load or sync a plans file)."""
    export = _command(sub, "export-schema", "print the GraphQL SDL")
    export.set_defaults(func=_export_schema)

    plans = _command(sub, "plans", "check, load or sync a plans file")
    plans.add_argument(
        "action",
        choices=["check", "load", "sync"],
        help="check: validate; load: upsert into the database; sync: load, then Stripe prices",
    )
    plans.add_argument("file", nargs="?", help="defaults to PLANS_FILE or the demo plans")
    plans.set_defaults(func=_plans)


def _add_token_command(sub: _SubParsers) -> None:
    """``token``: a development bearer token."""
    token = _command(sub, "token", "print a development bearer token (a JWT)")
    token.epilog = (
        "Signed (HS256) with AUTH_JWT_SECRET; in development without one, with the secret in\n"
        f'{DEV_SECRET_FILE} that "revenue-engine serve" in the same directory uses.'
    )
    token.add_argument("--org", required=True, help="the organization (the org_id claim)")
    token.add_argument("--email", help="the customer's email (the email claim)")
    token.add_argument("--admin", action="store_true", help="add the admin role")
    token.add_argument("--ttl", type=int, default=3600, help="seconds until it expires (3600)")
    token.set_defaults(func=_token)


def _add_events_commands(sub: _SubParsers) -> None:
    """``events replay`` and ``events backfill``: the webhook event ledger."""
    events = _command(sub, "events", "the Stripe webhook event ledger")
    events_sub = events.add_subparsers(dest="action", required=True, metavar="ACTION")
    replay = _command(events_sub, "replay", "dispatch stored events again")
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("--failed", action="store_true", help="every event whose status is failed")
    which.add_argument("--id", metavar="EVT", help="one event by its Stripe id (evt_…)")
    replay.set_defaults(func=_events)
    backfill = _command(events_sub, "backfill", "process events Stripe could not deliver")
    backfill.add_argument(
        "--since",
        required=True,
        type=parse_since,
        help="7d, 12h, 30m, an ISO date/time (UTC) or a unix time",
    )
    backfill.add_argument(
        "--all", action="store_true", help="also events Stripe delivered (the ledger dedups)"
    )
    backfill.set_defaults(func=_events)


def _add_maintenance_commands(sub: _SubParsers) -> None:
    """``reconcile`` (subscriptions against Stripe) and ``usage report``."""
    reconcile = _command(sub, "reconcile", "compare subscriptions with Stripe and repair")
    reconcile.add_argument("--organization", metavar="ORG", help="only this organization")
    reconcile.add_argument("--dry-run", action="store_true", help="report, change nothing")
    reconcile.add_argument("--starting-after", metavar="SUB", help="resume after this sub_…")
    reconcile.set_defaults(func=_reconcile)

    usage = _command(sub, "usage", "report usage-based billing to Stripe")
    usage.add_argument("action", choices=["report"], help="report: one pass of usage reports")
    usage.set_defaults(func=_usage)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
    except (SettingsError, ValueError) as exc:
        print(f"error: invalid configuration: {exc}", file=sys.stderr)
        return 2
    result: int = args.func(args, settings)
    return result
