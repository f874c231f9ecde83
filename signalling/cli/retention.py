"""``scenelink retention run|queue|check`` (added to signalling.cli.main's parser)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from datetime import UTC, datetime
from typing import Any

from recorder.evidence import EvidenceSettings
from retention.book import RetentionBook
from retention.disposal import run
from retention.schedule import ScheduleError, load_schedule
from retention.state import Clock


def _when(text: str) -> datetime:
    """An ISO date or time for ``--now``; UTC unless it says otherwise."""
    when = datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _clock(args: argparse.Namespace) -> Clock:
    fixed: datetime | None = args.now
    return (lambda: fixed) if fixed else (lambda: datetime.now(UTC))


def _settings() -> Any:
    from signalling.config import load_settings

    return load_settings()


def _book(settings: Any, args: argparse.Namespace) -> RetentionBook:
    evidence = EvidenceSettings.from_settings(settings)
    schedule = load_schedule(evidence.retention_schedule)
    return RetentionBook(evidence.open_store(), schedule, _clock(args))


def run_command(args: argparse.Namespace) -> int:
    from signalling.audit.trail import AuditTrail

    settings = _settings()
    if args.execute and args.now and args.now > datetime.now(UTC) and not settings.retention_drill:
        print(
            "FAILED: --execute with a future --now would dispose of evidence early; "
            "only a drill configuration (SCENELINK_RETENTION_DRILL=true) allows it",
            file=sys.stderr,
        )
        return 2
    book = _book(settings, args)
    outcomes = run(
        book,
        execute=args.execute,
        by=args.by,
        spool_dir=settings.evidence_dir,
        derivatives_dir=settings.layout.derivatives_dir,
    )
    trail = AuditTrail(settings.layout.audit_trail)
    for o in outcomes:
        when = o.disposal_at.date().isoformat() if o.disposal_at else "-"
        print(
            f"{o.action}: {o.session_id} class {o.class_name}, disposal date {when}, "
            f"rule {o.rule}"
            + (f", {o.objects} objects" if o.objects else "")
            + (f" ({o.detail})" if o.detail else "")
        )
        if o.action in ("disposed", "completed"):
            asyncio.run(
                trail.record(
                    args.by,
                    "erasure",
                    o.session_id,
                    None,
                    rule=o.rule,
                    retention_class=o.class_name,
                    objects=o.objects,
                    completed_earlier_run=o.action == "completed",
                    drill=bool(args.now),
                )
            )
    if not outcomes:
        print("nothing to dispose of")
    elif not args.execute:
        print("dry run: nothing was deleted (add --execute)")
    return 1 if any(o.action == "failed" for o in outcomes) else 0


def queue_command(args: argparse.Namespace) -> int:
    book = _book(_settings(), args)
    for item in book.queue():
        s = item.state
        print(
            f"{item.why}: {s.session_id} due {item.due.date().isoformat()} "
            f"class {', '.join(s.class_names)}, holds {len(s.holds)}, rule {s.governing.rule}"
        )
    return 0


def check_command(args: argparse.Namespace) -> int:
    try:
        schedule = load_schedule(args.file or _settings().retention_schedule)
    except (ScheduleError, OSError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    for c in schedule.classes.values():
        review = f", review every {c.review_every}" if c.review_every else ""
        print(f"{c.name}: until {', '.join(str(t) for t in c.until)}{review}  ({c.title})")
    print(f"OK: {len(schedule.classes)} classes in {schedule.source}")
    return 0


def add_commands(commands: Any) -> None:
    """Register ``retention`` and its subcommands on an argparse subparsers object."""
    retention = commands.add_parser("retention", help="MoPI retention: queue and disposal")
    sub = retention.add_subparsers(dest="retention_command", required=True)
    run_cmd = sub.add_parser(
        "run", help="dispose of sessions past their disposal date (dry run unless --execute)"
    )
    run_cmd.add_argument("--execute", action="store_true", help="really delete")
    run_cmd.add_argument("--by", default=getpass.getuser(), help="who authorises the run")
    queue_cmd = sub.add_parser("queue", help="overdue, expiring and due-for-review sessions")
    for cmd in (run_cmd, queue_cmd):
        cmd.add_argument("--now", type=_when, help="ISO date to run as (drills and tests)")
    run_cmd.set_defaults(run=run_command)
    queue_cmd.set_defaults(run=queue_command)
    check = sub.add_parser("check", help="validate a retention schedule file")
    check.add_argument("file", nargs="?", help="schedule file (default: the configured one)")
    check.set_defaults(run=check_command)
