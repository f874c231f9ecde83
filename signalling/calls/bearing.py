"""Where the caller is from an officer: geodesic distance and initial bearing (WGS-84).

Worked out on the server so that every tablet, whatever its browser, shows the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass

from geopy.distance import geodesic


@dataclass(frozen=True, slots=True)
class Bearing:
    distance_m: float
    bearing_deg: float  # initial bearing from the officer, clockwise from true north


def bearing_to(origin: tuple[float, float], target: tuple[float, float]) -> Bearing:
    line = geodesic(origin, target)
    # geopy measures on its geographiclib solver; its inverse problem also gives the azimuth.
    azimuth = line.geod.Inverse(origin[0], origin[1], target[0], target[1])["azi1"]
    return Bearing(distance_m=line.meters, bearing_deg=azimuth % 360.0)
