"""The retention schedule: MoPI classes as data that a records manager reads and changes.

The default ships beside this module as ``schedule.toml``; the ``retention_schedule`` setting
names another file. Parsing turns it into frozen dataclasses and refuses anything it does not
understand, naming the entry, so a typo cannot quietly shorten or lengthen retention.
"""

from __future__ import annotations

import calendar
import re
import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Literal

UNASSESSED = "unassessed"
SESSION_START = "session_start"
LINKED = "linked"
ANCHORS = (SESSION_START, LINKED)

_PERIOD = re.compile(r"^(\d+)\s*([dmy])$")
_TERM = re.compile(r"^([a-z][a-z0-9_]*)(\?)?\s*(?:\+\s*(\S.*))?$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class ScheduleError(ValueError):
    """The schedule file is wrong; the message names the entry."""


def add_months(start: datetime, months: int) -> datetime:
    """Calendar months, clamped to the month's last day (31 Jan + 1m = 28/29 Feb)."""
    year, month = divmod(start.month - 1 + months, 12)
    year += start.year
    day = min(start.day, calendar.monthrange(year, month + 1)[1])
    return start.replace(year=year, month=month + 1, day=day)


@dataclass(frozen=True, slots=True)
class Period:
    amount: int
    unit: Literal["d", "m", "y"]

    def after(self, start: datetime) -> datetime:
        if self.unit == "d":
            return start + timedelta(days=self.amount)
        return add_months(start, self.amount * (12 if self.unit == "y" else 1))

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"


@dataclass(frozen=True, slots=True)
class Term:
    """``<anchor> + <period>``: the anchor is a date the session or its link supplies."""

    anchor: str
    period: Period
    optional: bool = False

    def __str__(self) -> str:
        after = f" + {self.period}" if self.period.amount else ""
        return f"{self.anchor}{'?' if self.optional else ''}{after}"


@dataclass(frozen=True, slots=True)
class RetentionClass:
    name: str
    title: str
    until: tuple[Term, ...]
    review_every: Period | None = None

    @property
    def events(self) -> tuple[str, ...]:
        """Event dates this class waits for (recorded on a link)."""
        return tuple(t.anchor for t in self.until if t.anchor not in ANCHORS)


@dataclass(frozen=True, slots=True)
class Schedule:
    classes: dict[str, RetentionClass]
    hold_kinds: tuple[str, ...]
    expiring_within: Period
    indefinite_lock: Period
    erasure_record_lock: Period
    source: str

    @property
    def unassessed(self) -> RetentionClass:
        return self.classes[UNASSESSED]

    def get(self, name: str) -> RetentionClass:
        try:
            return self.classes[name]
        except KeyError:
            raise ScheduleError(f"no retention class {name!r} in {self.source}") from None


def parse_period(text: object, where: str) -> Period:
    match = _PERIOD.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ScheduleError(f"{where}: {text!r} is not a period like '31d', '6m' or '10y'")
    unit: Literal["d", "m", "y"] = match.group(2)  # type: ignore[assignment]
    return Period(int(match.group(1)), unit)


def parse_term(text: object, where: str) -> Term:
    match = _TERM.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ScheduleError(f"{where}: {text!r} is not a term like 'conviction + 6m'")
    anchor, optional, period = match.groups()
    parsed = parse_period(period, where) if period else Period(0, "d")
    if optional and anchor in ANCHORS:
        raise ScheduleError(f"{where}: {anchor} is always known; it cannot be optional")
    return Term(anchor, parsed, optional=bool(optional))


def _only(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ScheduleError(f"{where}: unknown key(s) {', '.join(unknown)}")


def parse_class(name: str, table: object) -> RetentionClass:
    where = f"classes.{name}"
    if not _NAME.match(name):
        raise ScheduleError(f"{where}: class names are lower_case_with_underscores")
    if not isinstance(table, dict):
        raise ScheduleError(f"{where}: expected a table")
    _only(table, {"title", "until", "review_every"}, where)
    title, until = table.get("title"), table.get("until")
    if not isinstance(title, str) or not title.strip():
        raise ScheduleError(f"{where}.title: a title is required")
    if not isinstance(until, list) or not until:
        raise ScheduleError(f"{where}.until: a list of one or more terms is required")
    terms = tuple(parse_term(t, f"{where}.until[{i}]") for i, t in enumerate(until))
    if all(t.optional for t in terms):
        raise ScheduleError(f"{where}.until: at least one term must not be optional")
    if name == UNASSESSED and any(t.anchor != SESSION_START for t in terms):
        raise ScheduleError(f"{where}.until: unassessed material can only count from session_start")
    review = table.get("review_every")
    return RetentionClass(
        name,
        title.strip(),
        terms,
        None if review is None else parse_period(review, f"{where}.review_every"),
    )


def parse_schedule(text: str, source: str = "schedule") -> Schedule:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScheduleError(f"{source}: not valid TOML: {exc}") from None
    try:
        _only(
            data,
            {"classes", "hold_kinds", "expiring_within", "indefinite_lock", "erasure_record_lock"},
            "top level",
        )
        classes = data.get("classes")
        if not isinstance(classes, dict) or UNASSESSED not in classes:
            raise ScheduleError(f"classes: a [classes.{UNASSESSED}] table is required")
        kinds = data.get("hold_kinds")
        if (
            not isinstance(kinds, list)
            or not kinds
            or not all(isinstance(k, str) and _NAME.match(k) for k in kinds)
        ):
            raise ScheduleError("hold_kinds: a list of lower_case names is required")
        return Schedule(
            classes={name: parse_class(name, table) for name, table in classes.items()},
            hold_kinds=tuple(kinds),
            expiring_within=parse_period(data.get("expiring_within"), "expiring_within"),
            indefinite_lock=parse_period(data.get("indefinite_lock"), "indefinite_lock"),
            erasure_record_lock=parse_period(
                data.get("erasure_record_lock"), "erasure_record_lock"
            ),
            source=source,
        )
    except ScheduleError as exc:
        raise ScheduleError(f"{source}: {exc}") from None


def load_schedule(path: Path | None = None) -> Schedule:
    """The file at ``path``, else the schedule shipped with SceneLink."""
    if path is None:
        shipped = resources.files("retention") / "schedule.toml"
        return parse_schedule(shipped.read_text(encoding="utf-8"), "retention/schedule.toml")
    return parse_schedule(Path(path).read_text(encoding="utf-8"), str(path))
