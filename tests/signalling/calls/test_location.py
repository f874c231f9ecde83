from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from signalling.calls.location import GpsFix, InvalidFix, check_plausible, parse_fix

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def message(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "fix",
        "lat": 51.501,
        "lon": -0.142,
        "accuracy": 12.0,
        "altitude": None,
        "heading": 90.0,
        "speed": 1.2,
        "timestamp": NOW.timestamp() * 1000,
    }
    return base | changes


def test_good_fix_is_parsed() -> None:
    fix = parse_fix(message(), NOW)
    assert (fix.lat, fix.lon, fix.accuracy, fix.heading) == (51.501, -0.142, 12.0, 90.0)
    assert fix.device_time == NOW
    assert GpsFix.from_json(fix.to_json()) == fix


@pytest.mark.parametrize(
    "bad",
    [
        {"lat": 91.0},
        {"lat": -90.5},
        {"lon": 180.1},
        {"lat": float("nan")},
        {"lon": float("inf")},
        {"lat": "51.5"},
        {"lat": None},
        {"lat": True},
        {"accuracy": 0},
        {"accuracy": -5},
        {"accuracy": 1e6},
        {"accuracy": float("nan")},
        {"speed": 1000.0},
        {"heading": 400.0},
        {"altitude": 50_000.0},
        {"timestamp": (NOW - timedelta(days=3)).timestamp() * 1000},
        {"timestamp": "now"},
    ],
)
def test_impossible_fixes_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidFix):
        parse_fix(message(**bad), NOW)


def test_missing_field_is_refused() -> None:
    msg = message()
    del msg["accuracy"]
    with pytest.raises(InvalidFix):
        parse_fix(msg, NOW)


def test_walking_pace_is_plausible_and_teleport_is_not() -> None:
    first = parse_fix(message(), NOW)
    later = NOW + timedelta(seconds=10)
    walked = parse_fix(message(lat=51.5011, timestamp=later.timestamp() * 1000), later)
    check_plausible(first, walked)
    teleported = parse_fix(message(lat=55.95, lon=-3.19, timestamp=later.timestamp() * 1000), later)
    with pytest.raises(InvalidFix, match="impossible jump"):
        check_plausible(first, teleported)
