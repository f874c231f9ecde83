"""Grid references against published OS National Grid points."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from signalling.calls.location import GpsFix, parse_fix
from signalling.calls.place import (
    format_grid,
    grid_reference,
    parse_grid,
    parse_place,
    square_letters,
)

# Without OS's OSTN15 grid installed PROJ falls back to the EPSG Helmert fit, within about 5 m.
TOLERANCE_M = 6.0


@pytest.mark.parametrize(
    ("lat", "lon", "easting", "northing", "ten", "six"),
    [
        # OSTN15 developer pack test point TP01 (St Mary's, Isles of Scilly), ETRS89 in.
        (49.92226393730, -6.29977752014, 91492.146, 11318.804, "SV 914", "SV 914 113"),
        # OSTN02 worked example (Toby Thurston's Geo::Coordinates::OSGB): TR 143 599.
        (51.297880, 1.072628, 614300.0, 159900.0, "TR 1430", "TR 143 599"),
    ],
)
def test_published_points(
    lat: float, lon: float, easting: float, northing: float, ten: str, six: str
) -> None:
    grid = grid_reference(lat, lon)
    assert grid is not None
    assert abs(grid.easting - easting) < TOLERANCE_M
    assert abs(grid.northing - northing) < TOLERANCE_M
    assert grid.ten_figure.startswith(ten) and len(grid.ten_figure) == len("SV 91492 11318")
    assert grid.six_figure.startswith(six) and len(grid.six_figure) == len("SV 914 113")
    assert grid.letters == ten[:2]


def test_letter_forms_of_exact_coordinates() -> None:
    # "A guide to coordinate systems in Great Britain" (OS), worked example: E 651409.903,
    # N 313177.270 is TG 51409 13177.
    assert format_grid(651409.903, 313177.270) == ("TG 51409 13177", "TG 514 131")
    assert format_grid(530079.0, 180065.0) == ("TQ 30079 80065", "TQ 300 800")
    assert format_grid(0.0, 0.0) == ("SV 00000 00000", "SV 000 000")
    # The corners of the grid's 500 km squares: S, T, N, O, H; no I anywhere.
    assert square_letters(500_000, 0) == "TV"
    assert square_letters(0, 500_000) == "NV"
    assert square_letters(400_000, 1_100_000) == "HU"  # Shetland
    assert square_letters(258_000, 665_000) == "NS"  # Glasgow
    assert square_letters(200_000, 800_000) == "NH" and "I" not in square_letters(100_000, 500_000)


def test_outside_the_grid_has_no_reference() -> None:
    assert grid_reference(40.4168, -3.7038) is None  # Madrid
    assert grid_reference(-33.86, 151.21) is None


def test_an_accepted_fix_carries_its_grid_reference() -> None:
    now = datetime.now(UTC)
    fix = parse_fix(
        {"lat": 51.5007, "lon": -0.1246, "accuracy": 8, "timestamp": now.timestamp() * 1000}, now
    )
    record = fix.to_json()
    assert record["grid_ref"] == "TQ 30269 79640" and record["grid_ref_6"] == "TQ 302 796"
    record["w3w"] = "filled.count.soap"
    assert GpsFix.from_json(record) == fix  # derived fields are not measurements


@pytest.mark.parametrize(
    ("text", "easting", "northing"),
    [
        # The centre of the square each names: 1 m, 10 m and 100 m squares.
        ("TQ 30045 80195", 530045.5, 180195.5),
        ("tq3004580195", 530045.5, 180195.5),
        ("TG 5140 1317", 651405.0, 313175.0),
        ("SU387148", 438750.0, 114850.0),
        ("HU 400 100", 440050.0, 1110050.0),  # Shetland
        ("NS 580 650", 258050.0, 665050.0),  # Glasgow
    ],
)
def test_typed_grid_references(text: str, easting: float, northing: float) -> None:
    assert parse_grid(text) == (easting, northing)
    # Back to a position whose own 10-figure reference is in the same square.
    grid = grid_reference(*parse_place(text))
    assert grid is not None and abs(grid.easting - easting) < 1.0
    assert abs(grid.northing - northing) < 1.0


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("TQ 30045", "not 5"),
        ("TQ 3004580", "not 7"),
        ("TQ 30", "not 2"),
        ("TQ 30 8019", "as many figures"),
        ("TI 300 801", "not a 100 km square"),  # no I in the grid's letters
        ("AA 300 801", "not a 100 km square"),  # outside the grid
        ("TQ 300 801 5", "two letters and 6, 8 or 10 figures"),
        ("London", "two letters and 6, 8 or 10 figures"),
        ("91, 0", "within ±90"),
    ],
)
def test_malformed_references_say_what_is_wrong(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_place(text)


def test_coordinates_are_taken_as_typed() -> None:
    assert parse_place("51.50336, -0.12762") == (51.50336, -0.12762)
    assert parse_place("51.5 -0.1") == (51.5, -0.1)
