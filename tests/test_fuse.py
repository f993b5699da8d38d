"""Stage 5, fusion: the patent's averaging of overlapping crops, then the largest component with
its holes filled. Small exact arrays, (input, expected) tables."""

import numpy as np
import pytest

from fetalhc.crops import CropBox
from fetalhc.fuse import binarize, fuse_probabilities, largest_filled_component

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
