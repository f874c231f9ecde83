"""A bail check's verdict against the required place, allowing for the fix's accuracy, and
the required place as the handler types it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from recorder.events import RequiredPlace
from signalling.calls.bail import check, required_place, verdict, worth_recording
from signalling.calls.geocoding import ReverseGeocoder
from signalling.calls.location import FixRecord

# Nelson's Column, and a point due north of it.
COLUMN = (51.50773, -0.12800)


def place(tolerance_m: float = 50.0) -> RequiredPlace:
    return {
        "given": "51.50773, -0.12800",
        "lat": COLUMN[0],
        "lon": COLUMN[1],
        "tolerance_m": tolerance_m,
        "grid_ref": None,
        "address": None,
    }


def fix(metres_north: float, accuracy: float) -> FixRecord:
    now = datetime.now(UTC).isoformat()
    return {
        "lat": COLUMN[0] + metres_north / 111_254.0,  # metres per degree of latitude here
        "lon": COLUMN[1],
        "accuracy": accuracy,
        "altitude": None,
        "altitude_accuracy": None,
        "heading": None,
        "speed": None,
        "device_time": now,
        "received_at": now,
    }


@pytest.mark.parametrize(
    ("distance", "accuracy", "expected"),
    [
        (10.0, 20.0, "within"),  # the whole circle inside 50 m
        (30.0, 20.0, "within"),  # touching the boundary from inside
        (40.0, 20.0, "uncertain"),  # the circle overlaps the boundary
        (60.0, 20.0, "uncertain"),  # centre outside, but it could be inside
        (70.0, 20.0, "uncertain"),  # touching from outside: not wholly beyond it
        (70.1, 20.0, "outside"),
        (10.0, 500.0, "uncertain"),  # a cell-tower guess clears no one
        (5000.0, 500.0, "outside"),
    ],
)
def test_verdict_honours_accuracy(distance: float, accuracy: float, expected: str) -> None:
    assert verdict(distance, accuracy, 50.0) == expected


def test_check_measures_the_geodesic_and_keeps_the_fix() -> None:
    result = check(place(), fix(100.0, 8.0))
    assert result["event"] == "bail_check"
    assert result["distance_m"] == pytest.approx(100.0, abs=0.5)
    assert result["verdict"] == "outside" and result["accuracy_m"] == 8.0
    assert result["tolerance_m"] == 50.0 and result["required_place"] == place()
    assert result["fix"]["lat"] == fix(100.0, 8.0)["lat"]
    assert check(place(), fix(10.0, 8.0))["verdict"] == "within"


def test_recorded_at_the_first_fix_and_at_each_change() -> None:
    inside = check(place(), fix(5.0, 5.0))
    inside_again = check(place(), fix(8.0, 5.0))
    away = check(place(), fix(300.0, 5.0))
    assert worth_recording(None, inside)
    assert not worth_recording(inside, inside_again)
    assert worth_recording(inside_again, away)


@pytest.fixture
async def nominatim() -> AsyncIterator[str]:
    async def search(request: web.Request) -> web.Response:
        if request.query["q"] == "nowhere at all":
            return web.json_response([])
        assert request.query["format"] == "json"
        return web.json_response(
            [{"lat": "51.50336", "lon": "-0.12762", "display_name": "10 Downing Street, London"}]
        )

    app = web.Application()
    app.router.add_get("/nominatim/search", search)
    server = TestServer(app)
    await server.start_server()
    yield str(server.make_url("/nominatim"))
    await server.close()


async def test_required_place_from_coordinates_grid_reference_or_address(nominatim: str) -> None:
    none = ReverseGeocoder(None, "SceneLink tests", 2.0)
    by_degrees = await required_place(" 51.50336, -0.12762 ", 40.0, none)
    assert (by_degrees["lat"], by_degrees["lon"]) == (51.50336, -0.12762)
    assert by_degrees["grid_ref"] == "TQ 30052 79931" and by_degrees["tolerance_m"] == 40.0
    by_grid = await required_place("TQ 30052 79931", 40.0, none)
    assert by_grid["lat"] == pytest.approx(51.50336, abs=1e-4)
    assert by_grid["given"] == "TQ 30052 79931" and by_grid["address"] is None
    with pytest.raises(ValueError, match="6, 8 or 10 figures"):
        await required_place("TQ 3005 7993 1", 40.0, none)
    with pytest.raises(ValueError, match="no geocoder is configured"):
        await required_place("10 Downing Street", 40.0, none)
    geocoder = ReverseGeocoder(nominatim, "SceneLink tests", 2.0, min_interval_s=0.0)
    by_address = await required_place("10 Downing Street", 40.0, geocoder)
    assert by_address["address"] == "10 Downing Street, London"
    assert by_address["grid_ref"] == "TQ 30052 79931"
    with pytest.raises(ValueError, match="knows no such address"):
        await required_place("nowhere at all", 40.0, geocoder)
    down = ReverseGeocoder("http://127.0.0.1:9/nominatim", "SceneLink tests", 1.0)
    with pytest.raises(ValueError, match="did not answer"):
        await required_place("10 Downing Street", 40.0, down)
