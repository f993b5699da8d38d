"""Stage 6, the patent's boundary (dilation minus mask) and the bias of each length estimator,
on exact ellipses and small exact arrays."""

import numpy as np
import pytest

from fetalhc.boundary import contour_length_px, patent_boundary, pixel_count_length_px
from fetalhc.ellipse import Ellipse

ELLIPSES = [
    Ellipse(400.3, 270.6, 300.0, 220.0, 33.0),
    Ellipse(390.1, 260.2, 200.0, 150.0, 75.0),
    Ellipse(401.7, 270.4, 120.3, 80.7, 20.0),
    Ellipse(380.0, 250.0, 60.0, 45.0, 0.0),
]


def _ratios(estimator):
    return np.array([estimator(e.rasterize((560, 820))) / e.perimeter_px for e in ELLIPSES[:3]])


def test_pixel_count_with_cross_element_reads_about_0_90():
    r = _ratios(lambda m: pixel_count_length_px(m, "cross"))
    assert np.all(np.abs(r - 0.905) < 0.015), r


def test_pixel_count_with_square_element_reads_about_1_28():
    r = _ratios(lambda m: pixel_count_length_px(m, "square"))
    assert np.all(np.abs(r - 1.28) < 0.02), r


def test_contour_length_is_nearly_unbiased():
    r = _ratios(contour_length_px)
    assert np.all(np.abs(r - 1.0) < 0.01), r


def test_patent_boundary_is_dilation_minus_mask():
    m = np.zeros((9, 9), np.uint8)
    m[3:6, 3:6] = 1
    b = patent_boundary(m, "cross")
    assert b.sum() == 12 and not (b & m).any()
    assert patent_boundary(m, "square").sum() == 16
    with pytest.raises(ValueError, match="element"):
        patent_boundary(m, "disk")


def test_empty_mask_has_no_length():
    z = np.zeros((10, 10), np.uint8)
    assert contour_length_px(z) == 0.0 and pixel_count_length_px(z) == 0.0



SQUARE_3 = np.pad(np.ones((3, 3), np.uint8), 2)  # a 3x3 block in a 7x7 image
CROSS_RING = np.array([
    [0, 0, 0, 0, 0, 0, 0],
    [0, 0, 1, 1, 1, 0, 0],
    [0, 1, 0, 0, 0, 1, 0],
    [0, 1, 0, 0, 0, 1, 0],
    [0, 1, 0, 0, 0, 1, 0],
    [0, 0, 1, 1, 1, 0, 0],
    [0, 0, 0, 0, 0, 0, 0],
], np.uint8)
SQUARE_RING = CROSS_RING.copy()
SQUARE_RING[[1, 1, 5, 5], [1, 5, 1, 5]] = 1


@pytest.mark.parametrize(("element", "expected"), [(None, CROSS_RING), ("cross", CROSS_RING), ("square", SQUARE_RING)])
def test_patent_boundary_exact(element, expected):
    """B - A on a 3x3 block: the 4-neighbour cross (the default) adds the 12 edge-adjacent pixels,
    the 3x3 square also the four diagonal corners."""
    b = patent_boundary(SQUARE_3) if element is None else patent_boundary(SQUARE_3, element)
    np.testing.assert_array_equal(b, expected)


@pytest.mark.parametrize(("element", "expected"), [(None, 12.0), ("cross", 12.0), ("square", 16.0)])
def test_pixel_count_length_exact(element, expected):
    n = pixel_count_length_px(SQUARE_3) if element is None else pixel_count_length_px(SQUARE_3, element)
    assert n == expected
