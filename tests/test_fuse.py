"""Stage 5, fusion: the patent's averaging of overlapping crops, then the largest component with
its holes filled. Small exact arrays, (input, expected) tables."""

import cv2
import numpy as np
import pytest

from fetalhc.crops import CropBox
from fetalhc.ellipse import Ellipse
from fetalhc.fuse import (
    binarize,
    binarize_window,
    fuse_probabilities,
    largest_filled_component,
    largest_filled_component_window,
)
from fetalhc.phantom import make_phantom

# Two crops of a 1x4 image overlapping in the middle two pixels; probabilities at box size, so
# pasting back is the identity and the expected map can be written down exactly.
LEFT, RIGHT = CropBox("left", 0, 0, 3, 1), CropBox("right", 1, 0, 4, 1)

FUSE_CASES = [
    # (probabilities of LEFT and RIGHT, expected fused map): overlaps are the mean, not the max or sum
    ([[0.2, 0.4, 0.6], [0.8, 1.0, 0.0]], [0.2, 0.6, 0.8, 0.0]),
    ([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]], [1.0, 0.5, 0.0, 1.0]),
    ([[0.0, 0.9, 0.9], [0.1, 0.1, 0.3]], [0.0, 0.5, 0.5, 0.3]),
]


@pytest.mark.parametrize(("probs", "expected"), FUSE_CASES)
def test_overlaps_are_averaged(probs, expected):
    maps = [np.array([p], np.float32) for p in probs]
    fused = fuse_probabilities(maps, [LEFT, RIGHT], (1, 4))
    np.testing.assert_allclose(fused, [expected], atol=1e-6)


def test_four_corner_overlap_is_the_mean_of_four():
    # 3x3 image, four 2x2 corner boxes: the centre pixel is covered by all four, edges by two
    boxes = [CropBox("tl", 0, 0, 2, 2), CropBox("tr", 1, 0, 3, 2), CropBox("br", 1, 1, 3, 3), CropBox("bl", 0, 1, 2, 3)]
    values = [0.1, 0.3, 0.5, 0.9]
    fused = fuse_probabilities([np.full((2, 2), v, np.float32) for v in values], boxes, (3, 3))
    expected = [[0.1, 0.2, 0.3], [0.5, 0.45, 0.4], [0.9, 0.7, 0.5]]
    np.testing.assert_allclose(fused, expected, atol=1e-6)


def test_uncovered_pixels_are_zero():
    fused = fuse_probabilities([np.ones((1, 2), np.float32)], [CropBox("a", 0, 0, 2, 1)], (1, 4))
    np.testing.assert_array_equal(fused, [[1.0, 1.0, 0.0, 0.0]])


def test_fuse_checks_lengths():
    with pytest.raises(ValueError, match="boxes"):
        fuse_probabilities([np.zeros((4, 4), np.float32)], [], (4, 4))


RING = np.array([
    [0, 0, 0, 0, 0, 0, 0],
    [0, 1, 1, 1, 1, 1, 0],
    [0, 1, 0, 0, 0, 1, 0],
    [0, 1, 0, 0, 0, 1, 0],
    [0, 1, 1, 1, 1, 1, 0],
    [0, 0, 0, 0, 0, 0, 0],
], np.uint8)
RING_FILLED = RING.copy()
RING_FILLED[2:4, 2:5] = 1

TWO_BLOBS = np.array([
    [1, 1, 0, 0, 0, 0],
    [1, 1, 0, 1, 1, 1],
    [0, 0, 0, 1, 1, 1],
    [0, 0, 0, 1, 1, 1],
], np.uint8)
BIG_BLOB = np.array([
    [0, 0, 0, 0, 0, 0],
    [0, 0, 0, 1, 1, 1],
    [0, 0, 0, 1, 1, 1],
    [0, 0, 0, 1, 1, 1],
], np.uint8)

# two blobs touching only at a corner are one 8-connected component
DIAGONAL = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0]], np.uint8)

COMPONENT_CASES = [
    ("keeps the largest component only", TWO_BLOBS, BIG_BLOB),
    ("fills the hole", RING, RING_FILLED),
    ("8-connected", DIAGONAL, DIAGONAL),
    ("empty stays empty", np.zeros((3, 3), np.uint8), np.zeros((3, 3), np.uint8)),
]


@pytest.mark.parametrize(("case", "mask", "expected"), COMPONENT_CASES, ids=[c[0] for c in COMPONENT_CASES])
def test_largest_filled_component(case, mask, expected):
    out = largest_filled_component(mask)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, expected)


def test_binarize_thresholds_then_keeps_the_largest_filled_component():
    prob = np.where(TWO_BLOBS > 0, 0.7, 0.3).astype(np.float32)
    prob[0, 0] = 0.9
    np.testing.assert_array_equal(binarize(prob, 0.5), BIG_BLOB)
    ring = np.where(RING > 0, 0.8, 0.1).astype(np.float32)
    np.testing.assert_array_equal(binarize(ring, 0.5), RING_FILLED)
    # a threshold above every value leaves nothing
    assert not binarize(ring, 0.85).any()


@pytest.mark.parametrize("threshold", [0.0, 1.0, -0.5])
def test_binarize_refuses_a_bad_threshold(threshold):
    with pytest.raises(ValueError, match="threshold"):
        binarize(np.zeros((2, 2), np.float32), threshold)


# ---- the windowed labelling equals labelling the whole mask ----------------------------------------

def _largest_filled_component_whole(mask: np.ndarray) -> np.ndarray:
    """Reference: the definition on the whole mask (the code before the window)."""
    m = (np.asarray(mask) > 0).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    out = np.zeros_like(m)
    if n <= 1:
        return out
    keep = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    contours, _ = cv2.findContours((labels == keep).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, 1, thickness=cv2.FILLED)
    return out


def _window_cases() -> list[tuple[str, np.ndarray]]:
    """Phantom-like masks: heads with holes anywhere (also cut by the border), two components,
    specks, equally large components, a full mask, one pixel in a corner."""
    rng = np.random.default_rng(11)
    h, w = 120, 160
    cases = []
    for i in range(40):
        e = Ellipse(rng.uniform(-20, w + 20), rng.uniform(-20, h + 20), rng.uniform(5, 60), rng.uniform(3, 40),
                    rng.uniform(0, 180))
        m = e.rasterize((h, w))
        m[rng.random((h, w)) < 0.02] ^= 1  # holes inside, specks outside
        if i % 3 == 0:  # a second component
            m |= Ellipse(rng.uniform(0, w), rng.uniform(0, h), 8.0, 5.0, 0.0).rasterize((h, w))
        cases.append((f"random {i}", m))
    img, head = make_phantom(200, 300, seed=3)
    cases.append(("phantom head", head.rasterize(img.shape)))
    ties = np.zeros((h, w), np.uint8)
    ties[10:20, 100:110] = 1  # first in raster order
    ties[15:25, 5:15] = 1  # same area, leftmost
    ties[60:70, 60:70] = 1
    cases.append(("equally large components", ties))
    # two equal squares whose label order in the window (offset 2, 1) differs from the whole mask's
    ties = np.zeros((12, 16), np.uint8)
    ties[2:5, 8:11] = 1
    ties[3:6, 3:6] = 1
    cases.append(("equally large components, window label order differs", ties))
    cases.append(("full mask", np.ones((h, w), np.uint8)))
    corner = np.zeros((h, w), np.uint8)
    corner[h - 1, w - 1] = 1
    cases.append(("one pixel in the corner", corner))
    cases.append(("empty", np.zeros((h, w), np.uint8)))
    return cases


@pytest.mark.parametrize(("case", "mask"), _window_cases(), ids=[c[0] for c in _window_cases()])
def test_windowed_largest_filled_component_equals_the_whole_mask_definition(case, mask):
    np.testing.assert_array_equal(largest_filled_component(mask), _largest_filled_component_whole(mask))
    found = largest_filled_component_window(mask)
    if not mask.any():
        assert found is None
        return
    assert found is not None
    (x0, y0), sub = found
    np.testing.assert_array_equal(_largest_filled_component_whole(mask)[y0:y0 + sub.shape[0], x0:x0 + sub.shape[1]],
                                  sub)
    # the window is the foreground's bounding box grown by one pixel, clipped to the image
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    assert (x0, y0) == (max(0, cols[0] - 1), max(0, rows[0] - 1))
    h, w = mask.shape
    assert (x0 + sub.shape[1], y0 + sub.shape[0]) == (min(w, cols[-1] + 2), min(h, rows[-1] + 2))


def test_binarize_window_is_binarize_cut_to_its_window():
    img, head = make_phantom(200, 300, seed=5)
    prob = cv2.GaussianBlur(head.rasterize(img.shape).astype(np.float32), (0, 0), 3.0)
    for t in (0.2, 0.5, 0.8):
        found = binarize_window(prob, t)
        assert found is not None
        (x0, y0), sub = found
        full = binarize(prob, t)
        assert int(full.sum()) == int(sub.sum())
        np.testing.assert_array_equal(full[y0:y0 + sub.shape[0], x0:x0 + sub.shape[1]], sub)
    assert binarize_window(np.zeros_like(prob), 0.5) is None


def test_one_whole_image_crop_fuses_to_itself_bit_for_bit():
    from fetalhc.crops import crop_boxes, paste_back

    rng = np.random.default_rng(3)
    (box,) = crop_boxes(800, 540, "full", 0.9, False)
    prob = rng.random((256, 384), dtype=np.float32)
    fused = fuse_probabilities([prob], [box], (540, 800))
    pasted = paste_back(prob, box)
    acc = np.zeros((540, 800), np.float32) + pasted  # the general definition: sum / count
    assert fused.dtype == np.float32 and np.array_equal(fused, acc / np.float32(1.0))
    # a single crop that does not cover the image still leaves the rest at 0
    (corner,) = [b for b in crop_boxes(800, 540, "corners", 0.9, False) if b.x0 == 0 and b.y0 == 0]
    part = fuse_probabilities([prob], [corner], (540, 800))
    assert part[-1, -1] == 0.0 and np.array_equal(part[: corner.y1, : corner.x1], paste_back(prob, corner))
