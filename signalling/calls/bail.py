"""A bail or court-order check: is the caller where they must be?

The handler gives the required place and a tolerance; each fix gives a geodesic distance
(``bearing.bearing_to``, the officer page's measure) and the phone's own accuracy. The verdict
honours that accuracy: "within" only when the whole accuracy circle lies inside the tolerance,
"outside" only when it lies wholly beyond it, else "uncertain" (the circle overlaps the
boundary), so a poor fix never condemns or clears anyone.

What is recorded (a ``bail_check`` evidence event and an audit record): the first fix's
result, then each fix whose verdict differs from the last one recorded. Every fix is in the
trail anyway; the events are the changes a court will ask about, not a copy of the trail.
"""

from __future__ import annotations

import re
from typing import Literal

from recorder.events import BailCheck, CheckedFix, RequiredPlace
from signalling.calls.bearing import bearing_to
from signalling.calls.geocoding import GeocodingFailed, ReverseGeocoder
from signalling.calls.location import FixRecord
from signalling.calls.place import grid_reference, parse_place
from signalling.calls.sessions import utcnow

Verdict = Literal["within", "outside", "uncertain"]
# Typed as a position (figures, or a grid square's letters and figures), not as an address.
_POSITION = re.compile(r"[-+\d.,\s°]+|[A-Za-z]{2}[\d\s]+")


async def required_place(
    given: str, tolerance_m: float, geocoder: ReverseGeocoder
) -> RequiredPlace:
    """The place as the handler typed it: "lat, lon", an OS grid reference, or an address
    looked up through the configured geocoder. ``ValueError`` says what is wrong with it."""
    text = given.strip()
    address = None
    if _POSITION.fullmatch(text):
        lat, lon = parse_place(text)
    else:
        try:
            found = await geocoder.locate(text)
        except GeocodingFailed as exc:
            raise ValueError(
                f"not coordinates or a grid reference, and the address cannot be looked up: {exc}"
            ) from None
        if found is None:
            raise ValueError("the geocoder knows no such address")
        lat, lon, address = found
    grid = grid_reference(lat, lon)
    return {
        "given": text,
        "lat": lat,
        "lon": lon,
        "tolerance_m": tolerance_m,
        "grid_ref": grid.ten_figure if grid else None,
        "address": address,
    }


def verdict(distance_m: float, accuracy_m: float, tolerance_m: float) -> Verdict:
    if distance_m + accuracy_m <= tolerance_m:
        return "within"
    if distance_m - accuracy_m > tolerance_m:
        return "outside"
    return "uncertain"


def check(place: RequiredPlace, fix: FixRecord) -> BailCheck:
    """The fix judged against the place (the event's body; the console shows the last one)."""
    distance = bearing_to((place["lat"], place["lon"]), (fix["lat"], fix["lon"])).distance_m
    checked: CheckedFix = {
        "lat": fix["lat"],
        "lon": fix["lon"],
        "accuracy": fix["accuracy"],
        "device_time": fix["device_time"],
        "received_at": fix["received_at"],
    }
    return {
        "event": "bail_check",
        "at": utcnow().isoformat(),
        "required_place": place,
        "tolerance_m": place["tolerance_m"],
        "fix": checked,
        "distance_m": round(distance, 1),
        "accuracy_m": fix["accuracy"],
        "verdict": verdict(distance, fix["accuracy"], place["tolerance_m"]),
    }


def worth_recording(previous: BailCheck | None, result: BailCheck) -> bool:
    """The first result, and each change of verdict."""
    return previous is None or previous["verdict"] != result["verdict"]
