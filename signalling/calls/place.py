"""The place as a control room writes it: the OS National Grid reference of a fix.

WGS84 (the phone's GPS) to the British National Grid (EPSG:27700) through pyproj. PROJ uses
OS's OSTN15 grid where it is installed (``projsync`` or PROJ_NETWORK), accurate to about 0.1 m;
without it, the EPSG Helmert fit, within about 5 m: well inside a phone's own accuracy.
"""

from __future__ import annotations

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
