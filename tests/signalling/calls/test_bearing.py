import pytest

from signalling.calls.bearing import bearing_to

WHITEHALL = (51.50350, -0.12750)


@pytest.mark.parametrize(
    ("target", "bearing"),
    [
        ((51.51350, -0.12750), 0.0),  # due north
        ((51.50350, -0.11750), 90.0),  # due east
        ((51.49350, -0.12750), 180.0),
        ((51.50350, -0.13750), 270.0),
    ],
)
def test_cardinal_bearings(target: tuple[float, float], bearing: float) -> None:
    result = bearing_to(WHITEHALL, target)
    assert result.bearing_deg == pytest.approx(bearing, abs=0.1)
    assert 0.0 <= result.bearing_deg < 360.0


def test_distance_is_geodesic() -> None:
    # One minute of latitude near 51.5 N is about 1853 m on WGS-84.
    result = bearing_to((51.5, -0.1), (51.5 + 1 / 60, -0.1))
    assert result.distance_m == pytest.approx(1853.4, abs=1.0)


def test_same_place() -> None:
    assert bearing_to(WHITEHALL, WHITEHALL).distance_m == 0.0
