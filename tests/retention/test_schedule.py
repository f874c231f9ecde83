"""The schedule file: the shipped one parses; mistakes are refused, naming the entry."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from retention.schedule import Period, ScheduleError, load_schedule, parse_schedule
from signalling.cli.main import main as scenelink

GOOD = """
expiring_within = "14d"
indefinite_lock = "1y"
erasure_record_lock = "7y"
hold_kinds = ["court"]

[classes.unassessed]
title = "Unassessed"
until = ["session_start + 31d"]

[classes.charged]
title = "Charged"
until = ["outcome"]
"""


def test_shipped_schedule_has_every_class() -> None:
    schedule = load_schedule()
    assert set(schedule.classes) >= {
        "unassessed",
        "pre_charge",
        "charged",
        "convicted",
        "mopi_group_1",
        "mopi_group_2",
        "mopi_group_3",
        "non_crime",
    }
    assert str(schedule.unassessed.until[0]) == "session_start + 31d"
    assert schedule.get("convicted").events == ("conviction", "release", "appeals_concluded")
    assert "court" in schedule.hold_kinds and "ccrc" in schedule.hold_kinds


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (('until = ["outcome"]', 'until = ["outcome + 6x"]'), "classes.charged.until[0]"),
        (('until = ["outcome"]', 'until = ["Outcome!"]'), "classes.charged.until[0]"),
        (('until = ["outcome"]', "until = []"), "classes.charged.until"),
        (('until = ["outcome"]', 'until = ["outcome?"]'), "at least one term"),
        (('title = "Charged"', 'title = ""'), "classes.charged.title"),
        (('title = "Charged"', 'title = "C"\nkeep = "1y"'), "classes.charged: unknown key(s) keep"),
        (('"session_start + 31d"', '"linked + 31d"'), "classes.unassessed.until"),
        (("[classes.unassessed]", "[classes.first_look]"), "[classes.unassessed] table"),
        (('expiring_within = "14d"', 'expiring_within = "two weeks"'), "expiring_within"),
        (('hold_kinds = ["court"]', 'hold_kinds = ["Court Order"]'), "hold_kinds"),
        (('hold_kinds = ["court"]', 'hold_kinds = ["court"]\nretain = 3'), "unknown key(s) retain"),
        (("[classes.charged]", "[classes.Charged]"), "classes.Charged"),
        (('until = ["outcome"]', 'until = ["outcome" + 1]'), "not valid TOML"),
    ],
)
def test_mistakes_are_refused_naming_the_entry(change: tuple[str, str], named: str) -> None:
    text = GOOD.replace(*change)
    assert text != GOOD
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(text, "my-schedule.toml")
    assert str(caught.value).startswith("my-schedule.toml: ")
    assert named in str(caught.value)


def test_good_schedule_parses() -> None:
    schedule = parse_schedule(GOOD, "x")
    assert schedule.get("charged").events == ("outcome",)
    with pytest.raises(ScheduleError, match="no retention class 'nfa'"):
        schedule.get("nfa")


def test_periods_count_calendar_months() -> None:
    start = datetime(2024, 1, 31, 9, 0, tzinfo=UTC)
    assert Period(1, "m").after(start) == datetime(2024, 2, 29, 9, 0, tzinfo=UTC)
    assert Period(6, "m").after(start) == datetime(2024, 7, 31, 9, 0, tzinfo=UTC)
    assert Period(99, "y").after(datetime(2024, 2, 29, tzinfo=UTC)).day == 28
    assert Period(31, "d").after(start) == datetime(2024, 3, 2, 9, 0, tzinfo=UTC)


def test_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text(GOOD)
    bad.write_text(GOOD.replace('"outcome"', '"outcome + 3 weeks"'))
    assert scenelink(["retention", "check", str(good)]) == 0
    assert "OK: 2 classes" in capsys.readouterr().out
    assert scenelink(["retention", "check", str(bad)]) == 1
    assert "classes.charged.until[0]" in capsys.readouterr().err
