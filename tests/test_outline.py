"""Sub-pixel outline from a probability map and the trimmed ellipse fit."""

import cv2
import numpy as np
import pytest

from fetalhc.ellipse import Ellipse, fit_ellipse_points
from fetalhc.fuse import binarize, nonzero_window
from fetalhc.outline import ellipse_distance_px, probability_outline_xy, robust_fit_ellipse

TRUE = Ellipse(400.3, 270.6, 210.4, 160.2, 30.0)


def _soft_map(ell: Ellipse, shape=(540, 800), width_px: float = 3.0) -> np.ndarray:
    """A logistic edge at the ellipse: p = 0.5 exactly on the outline (signed distance)."""
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    d = ellipse_distance_px(ell, np.stack([xs.ravel(), ys.ravel()], 1)).reshape(shape)
    return (1.0 / (1.0 + np.exp(d / width_px))).astype(np.float32)


def test_probability_outline_recovers_the_ellipse_to_a_fraction_of_a_pixel():
    p = _soft_map(TRUE)
    pts = probability_outline_xy(p, binarize(p))
    ell = fit_ellipse_points(pts)
    assert abs(ell.perimeter_px - TRUE.perimeter_px) < 1.0
    assert abs(ell.center_x_px - TRUE.center_x_px) < 0.1 and abs(ell.semi_axis_b_px - TRUE.semi_axis_b_px) < 0.2


def test_outline_ignores_other_blobs_and_is_empty_for_an_empty_mask():
    p = _soft_map(TRUE)
    cv2.circle(p, (40, 40), 20, 1.0, -1)  # a separate blob above 0.5 far from the head
    pts = probability_outline_xy(p, binarize(p))
    assert pts[:, 0].min() > 150
    assert probability_outline_xy(p, np.zeros(p.shape, np.uint8)).shape == (0, 2)


def test_ellipse_distance_is_signed_and_geometric_on_a_circle():
    c = Ellipse(0.0, 0.0, 10.0, 10.0, 0.0)
    d = ellipse_distance_px(c, np.array([[12.0, 0.0], [0.0, -7.0]]))
    assert d == pytest.approx([2.0, -3.0])


def test_trimmed_fit_ignores_a_stretch_of_outliers_the_plain_fit_follows():
    pts = TRUE.points(720)
    bump = pts.copy()
    idx = slice(0, 60)  # one twelfth of the outline pushed 15 px outwards
    v = bump[idx] - [TRUE.center_x_px, TRUE.center_y_px]
    bump[idx] += 15 * v / np.linalg.norm(v, axis=1, keepdims=True)
    plain = fit_ellipse_points(bump)
    robust, dropped = robust_fit_ellipse(bump)
    assert abs(robust.perimeter_px - TRUE.perimeter_px) < 0.5 < abs(plain.perimeter_px - TRUE.perimeter_px)
    assert 0.05 < dropped < 0.2
    clean, none = robust_fit_ellipse(pts)
    assert none < 0.02 and abs(clean.perimeter_px - TRUE.perimeter_px) < 0.2


def _outline_grown_on_the_whole_mask(prob: np.ndarray, mask: np.ndarray, level: float = 0.5, pad_px: int = 4):
    """Reference: probability_outline_xy as written before (the mask grown on the whole image)."""
    from skimage import measure

    window = nonzero_window(mask, pad_px)
    if window is None:
        return np.zeros((0, 2))
    x0, y0, x1, y1 = window
    grown = cv2.dilate(mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
    lines = measure.find_contours(np.pad(np.where(grown[y0:y1, x0:x1] > 0, prob[y0:y1, x0:x1], 0.0), 1), level)
    best = max(lines, key=len) if lines else np.zeros((0, 2))
    return np.stack([best[:, 1] - 1 + x0, best[:, 0] - 1 + y0], axis=1)


BORDER_HEADS = [TRUE, Ellipse(30.0, 270.0, 150.0, 100.0, 10.0), Ellipse(780.0, 530.0, 120.0, 90.0, 45.0),
                Ellipse(400.0, 5.0, 200.0, 60.0, 0.0)]


@pytest.mark.parametrize("ell", BORDER_HEADS, ids=["inside", "left", "corner", "top"])
def test_outline_on_the_window_equals_the_whole_mask_definition(ell):
    # heads inside and cut by the image border; a second blob next to the head, an empty mask
    p = _soft_map(ell)
    cv2.circle(p, (int(ell.center_x_px) + 60, int(ell.center_y_px) + 40), 6, 0.0, -1)  # a hole
    m = binarize(p)
    np.testing.assert_array_equal(probability_outline_xy(p, m), _outline_grown_on_the_whole_mask(p, m))
    m[: max(0, int(ell.center_y_px)), :] = 0  # a cut mask: the grown mask, not the map, bounds the line
    np.testing.assert_array_equal(probability_outline_xy(p, m), _outline_grown_on_the_whole_mask(p, m))
    assert probability_outline_xy(p, np.zeros(p.shape, np.uint8)).shape == (0, 2)
