"""Stage 7, the clinical ellipse: Ramanujan's perimeter, the least-squares fit and the raster."""

import math

import numpy as np
import pytest
from scipy.integrate import quad

from fetalhc.boundary import iso_contour_xy
from fetalhc.ellipse import Ellipse, fit_ellipse_points, ramanujan_perimeter

ELLIPSES = [
    Ellipse(400.3, 270.6, 300.0, 220.0, 33.0),
    Ellipse(390.1, 260.2, 200.0, 150.0, 75.0),
    Ellipse(401.7, 270.4, 120.3, 80.7, 20.0),
    Ellipse(380.0, 250.0, 60.0, 45.0, 0.0),
]


def exact_perimeter(a: float, b: float) -> float:
    e2 = 1 - (b / a) ** 2
    return 4 * a * quad(lambda t: math.sqrt(1 - e2 * math.sin(t) ** 2), 0, math.pi / 2)[0]


@pytest.mark.parametrize(("a", "b"), [(1, 1), (10, 7), (300, 220), (5, 1)])
def test_ramanujan_matches_the_elliptic_integral(a, b):
    assert ramanujan_perimeter(a, b) == pytest.approx(exact_perimeter(a, b), rel=1e-5)


def test_ramanujan_rejects_negative_axes():
    with pytest.raises(ValueError):
        ramanujan_perimeter(-1, 2)


@pytest.mark.parametrize("e", ELLIPSES)
def test_fit_recovers_known_axes_within_half_a_percent(e):
    fit = fit_ellipse_points(iso_contour_xy(e.rasterize((560, 820))))
    assert fit.semi_axis_a_px == pytest.approx(e.semi_axis_a_px, rel=0.005)
    assert fit.semi_axis_b_px == pytest.approx(e.semi_axis_b_px, rel=0.005)
    assert fit.center_x_px == pytest.approx(e.center_x_px, abs=0.5)
    assert fit.angle_deg == pytest.approx(e.angle_deg, abs=1.0)
    assert fit.perimeter_px == pytest.approx(e.perimeter_px, rel=0.005)


def test_fit_needs_five_points():
    with pytest.raises(ValueError, match="at least 5"):
        fit_ellipse_points(np.zeros((4, 2)))


def _centres_inside(e: Ellipse, shape_hw: tuple[int, int]) -> np.ndarray:
    """The definition: pixels whose centres satisfy (u/a)^2 + (v/b)^2 <= 1, over the whole grid."""
    yy, xx = np.mgrid[0:shape_hw[0], 0:shape_hw[1]].astype(np.float64)
    th = np.radians(e.angle_deg)
    dx, dy = xx - e.center_x_px, yy - e.center_y_px
    u = dx * np.cos(th) + dy * np.sin(th)
    v = -dx * np.sin(th) + dy * np.cos(th)
    return (u / e.semi_axis_a_px) ** 2 + (v / e.semi_axis_b_px) ** 2 <= 1.0


def test_row_span_raster_equals_the_pixel_centre_definition():
    rng = np.random.default_rng(3)
    shape = (120, 160)
    for i in range(300):
        if i % 2:  # whole numbers put pixel centres exactly on the outline
            a = float(rng.integers(1, 90))
            e = Ellipse(float(rng.integers(-10, 170)), float(rng.integers(-10, 130)), a,
                        float(rng.integers(1, int(a) + 1)), float(rng.choice([0, 30, 45, 90, 135, 180])))
        else:
            a = rng.uniform(0.5, 100)
            e = Ellipse(rng.uniform(-20, 180), rng.uniform(-20, 140), a, a * rng.uniform(0.2, 1), rng.uniform(0, 180))
        assert np.array_equal(e.rasterize(shape) > 0, _centres_inside(e, shape)), e
    assert not Ellipse(50, 50, 0.0, 5.0, 0.0).rasterize(shape).any()
