"""The place as a control room writes it: the OS National Grid reference of a fix, and
back from a reference (or "lat, lon") typed into the console to a position.

WGS84 (the phone's GPS) to the British National Grid (EPSG:27700) through pyproj. PROJ uses
OS's OSTN15 grid where it is installed (``projsync`` or PROJ_NETWORK), accurate to about 0.1 m;
without it, the EPSG Helmert fit, within about 5 m: well inside a phone's own accuracy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from pyproj import Transformer

# The National Grid's extent: 700 km by 1300 km from the false origin (SV 00000 00000).
GRID_E_MAX = 700_000.0
GRID_N_MAX = 1_300_000.0
_LETTERS = "ABCDEFGHJKLMNOPQRSTUVWXYZ"  # 5 x 5, no I


@dataclass(frozen=True, slots=True)
class GridRef:
    easting: float
    northing: float
    letters: str  # the 100 km square, e.g. "TQ"
    ten_figure: str  # "TQ 30079 80065": to 1 m
    six_figure: str  # "TQ 300 800": to 100 m


@cache
def _transformer() -> Transformer:
    return Transformer.from_crs("EPSG:4326", "EPSG:27700", always_xy=True)


@cache
def _inverse() -> Transformer:
    return Transformer.from_crs("EPSG:27700", "EPSG:4326", always_xy=True)


def square_letters(easting: float, northing: float) -> str:
    """The two letters of the 100 km square holding (``easting``, ``northing``)."""
    e100k, n100k = int(easting // 100_000), int(northing // 100_000)
    # The first letter is a 500 km square (S is the false origin's), the second the 100 km
    # square inside it; both count from the top-left of a 5 x 5 block.
    first = (19 - n100k) - (19 - n100k) % 5 + (e100k + 10) // 5
    second = (19 - n100k) * 5 % 25 + e100k % 5
    return _LETTERS[first] + _LETTERS[second]


def format_grid(easting: float, northing: float) -> tuple[str, str]:
    """The 10-figure and 6-figure references (truncated, as OS does: the square's corner)."""
    letters = square_letters(easting, northing)
    e, n = int(easting) % 100_000, int(northing) % 100_000
    return f"{letters} {e:05d} {n:05d}", f"{letters} {e // 100:03d} {n // 100:03d}"


def grid_reference(lat: float, lon: float) -> GridRef | None:
    """The fix's grid reference, or None outside the National Grid (abroad, at sea)."""
    easting, northing = _transformer().transform(lon, lat)
    if not (0.0 <= easting < GRID_E_MAX and 0.0 <= northing < GRID_N_MAX):
        return None
    ten, six = format_grid(easting, northing)
    return GridRef(easting, northing, ten[:2], ten, six)


_GRID_TEXT = re.compile(r"([A-Z]{2})\s*(\d+)(?:\s+(\d+))?")
_LAT_LON = re.compile(r"(-?\d+(?:\.\d+)?)\s*[,\s]\s*(-?\d+(?:\.\d+)?)")
GRID_FIGURES = (6, 8, 10)


def parse_grid(text: str) -> tuple[float, float]:
    """The easting and northing of a 6-, 8- or 10-figure reference with its letters ("TQ 30045
    80195", "SU387148"): the centre of the square it names (a reference names a square, its
    corner being only where the square starts). ``ValueError`` says what is wrong."""
    match = _GRID_TEXT.fullmatch(text.strip().upper())
    if match is None:
        raise ValueError(
            "a grid reference is two letters and 6, 8 or 10 figures, e.g. 'TQ 30045 80195' "
            "or 'SU387148'"
        )
    letters, first, second = match.groups()
    if any(c not in _LETTERS for c in letters):
        raise ValueError(f"{letters!r} is not a 100 km square of the National Grid")
    figures = len(first) + len(second or "")
    if figures not in GRID_FIGURES:
        raise ValueError(
            f"a grid reference has 6, 8 or 10 figures after its letters, not {figures}"
        )
    if second is None:
        first, second = first[: figures // 2], first[figures // 2 :]
    if len(first) != len(second):
        raise ValueError("the easting and northing of a grid reference have as many figures")
    # The inverse of square_letters: each letter's row and column in its 5 x 5 block.
    l1, l2 = _LETTERS.index(letters[0]), _LETTERS.index(letters[1])
    e100k = ((l1 - 2) % 5) * 5 + l2 % 5
    n100k = (19 - (l1 // 5) * 5) - l2 // 5
    if not (0 <= e100k * 100_000 < GRID_E_MAX and 0 <= n100k * 100_000 < GRID_N_MAX):
        raise ValueError(f"{letters!r} is not a 100 km square of the National Grid")
    size = 10 ** (5 - len(first))  # metres per last figure
    easting = e100k * 100_000 + int(first) * size + size / 2
    northing = n100k * 100_000 + int(second) * size + size / 2
    return easting, northing


def grid_to_lat_lon(easting: float, northing: float) -> tuple[float, float]:
    lon, lat = _inverse().transform(easting, northing)
    return lat, lon


def parse_place(text: str) -> tuple[float, float]:
    """Latitude and longitude from "lat, lon" in degrees or an OS grid reference;
    ``ValueError`` saying what is wrong (for the form's field)."""
    coordinates = _LAT_LON.fullmatch(text.strip())
    if coordinates is not None:
        lat, lon = float(coordinates[1]), float(coordinates[2])
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise ValueError("latitude is within ±90 and longitude within ±180 degrees")
        return lat, lon
    return grid_to_lat_lon(*parse_grid(text))
