"""GPS fixes from the caller's phone: validated before anything stores or shows them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NotRequired

from geopy.distance import geodesic
from typing_extensions import TypedDict  # pydantic documents it (Python < 3.12)

from signalling.calls.place import grid_reference

MAX_ACCURACY_M = 20_000.0  # worse than this is a cell-tower guess, useless for finding someone
MAX_SPEED_MS = 350.0  # faster than an airliner: not a person on the ground
MAX_CLOCK_SKEW_S = 24 * 3600.0


class InvalidFix(ValueError):
    """Why a fix was refused; counted per session, never stored."""


FIX_STALE_S = 30  # a last fix older than this is stale: the console and officer pages warn


_DERIVED = ("grid_ref", "grid_ref_6", "w3w", "address")  # from the fix, not measured


class FixRecord(TypedDict):
    """A fix as the trail keeps it (state store, evidence, the feeds): times in ISO 8601."""

    lat: float
    lon: float
    accuracy: float  # metres, the phone's own estimate
    altitude: float | None
    altitude_accuracy: float | None
    heading: float | None
    speed: float | None
    device_time: str  # the phone's clock
    received_at: str  # the server's clock
    # The place as control rooms write it (calls.place): None outside the National Grid.
    grid_ref: NotRequired[str | None]  # 10-figure, "TQ 30079 80065"
    grid_ref_6: NotRequired[str | None]  # 6-figure, "TQ 300 800"
    # Found later (calls.geocoding) and merged in by the trail: a "place" feed message.
    w3w: NotRequired[str | None]
    address: NotRequired[str | None]


class FixReading(TypedDict):
    """A position as a page measured it (the Geolocation API's, in its units)."""

    lat: float
    lon: float
    accuracy: float  # metres
    timestamp: float  # the phone's clock, milliseconds since 1970
    altitude: NotRequired[float | None]
    altitude_accuracy: NotRequired[float | None]
    heading: NotRequired[float | None]  # degrees from true north
    speed: NotRequired[float | None]  # metres a second


class CallerFixMessage(FixReading):
    """A fix from the caller's page (data channel or ``POST /api/caller/fixes``)."""

    type: Literal["fix"]


@dataclass(frozen=True, slots=True)
class GpsFix:
    lat: float
    lon: float
    accuracy: float
    altitude: float | None
    altitude_accuracy: float | None
    heading: float | None
    speed: float | None
    device_time: datetime
    received_at: datetime

    def same_reading(self, other: GpsFix) -> bool:
        """The same measurement received twice (the caller's page re-sends as a keep-alive)."""
        return (self.device_time, self.lat, self.lon) == (other.device_time, other.lat, other.lon)

    def to_json(self) -> FixRecord:
        grid = grid_reference(self.lat, self.lon)
        return {
            "lat": self.lat,
            "lon": self.lon,
            "accuracy": self.accuracy,
            "altitude": self.altitude,
            "altitude_accuracy": self.altitude_accuracy,
            "heading": self.heading,
            "speed": self.speed,
            "device_time": self.device_time.isoformat(),
            "received_at": self.received_at.isoformat(),
            "grid_ref": grid.ten_figure if grid else None,
            "grid_ref_6": grid.six_figure if grid else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GpsFix:
        values = {k: v for k, v in data.items() if k not in _DERIVED}
        values["device_time"] = datetime.fromisoformat(values["device_time"])
        values["received_at"] = datetime.fromisoformat(values["received_at"])
        return cls(**values)


def _number(
    msg: Mapping[str, Any], key: str, low: float, high: float, optional: bool
) -> float | None:
    value = msg.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidFix(f"{key} is not a number")
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise InvalidFix(f"{key} out of range")
    return number


def parse_fix(msg: Mapping[str, Any], received_at: datetime) -> GpsFix:
    """Build a fix from the page's message (a ``FixReading``, unchecked), refusing anything
    a phone could not have measured."""
    lat = _number(msg, "lat", -90.0, 90.0, optional=False)
    lon = _number(msg, "lon", -180.0, 180.0, optional=False)
    accuracy = _number(msg, "accuracy", 0.0, MAX_ACCURACY_M, optional=False)
    if not accuracy:
        raise InvalidFix("accuracy out of range")
    millis = _number(msg, "timestamp", 0.0, 1e14, optional=False)
    assert lat is not None and lon is not None and millis is not None
    device_time = datetime.fromtimestamp(millis / 1000.0, UTC)
    if abs((device_time - received_at).total_seconds()) > MAX_CLOCK_SKEW_S:
        raise InvalidFix("timestamp too far from the server's clock")
    return GpsFix(
        lat=lat,
        lon=lon,
        accuracy=accuracy,
        altitude=_number(msg, "altitude", -500.0, 10_000.0, optional=True),
        altitude_accuracy=_number(msg, "altitude_accuracy", 0.0, MAX_ACCURACY_M, optional=True),
        heading=_number(msg, "heading", 0.0, 360.0, optional=True),
        speed=_number(msg, "speed", 0.0, MAX_SPEED_MS, optional=True),
        device_time=device_time,
        received_at=received_at,
    )


def check_plausible(previous: GpsFix | None, fix: GpsFix) -> None:
    """Refuse a jump no person could make, allowing for both fixes' stated accuracy."""
    if previous is None:
        return
    elapsed = abs((fix.received_at - previous.received_at).total_seconds())
    moved = geodesic((previous.lat, previous.lon), (fix.lat, fix.lon)).meters
    allowance = previous.accuracy + fix.accuracy + MAX_SPEED_MS * (elapsed + 1.0)
    if moved > allowance:
        raise InvalidFix("impossible jump from the previous fix")
