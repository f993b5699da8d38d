"""Text finding without OCR (fetalhc.deid.text): rings, tissue, blocks against the edge."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import fetalhc.deid.text as text_mod
from deid_corpus import make_screen, sector_image, text_block_on_tissue
from fetalhc.deid import central_box, deidentify_pixels, find_text_boxes, merge_boxes
from fetalhc.deid.text import DEFAULT_TEXT_PARAMS, TextParams, grow, overlaps
from fetalhc.image import UltrasoundImage
from fetalhc.phantom import make_phantom


@pytest.mark.parametrize(("boxes", "expected"), [
    ([], []),
    ([(0, 0, 10, 10), (20, 0, 30, 10)], [(0, 0, 10, 10), (20, 0, 30, 10)]),  # apart: kept
    ([(0, 0, 10, 10), (5, 5, 15, 15)], [(0, 0, 15, 15)]),                    # overlapping: united
    ([(0, 0, 10, 10), (10, 0, 20, 10)], [(0, 0, 10, 10), (10, 0, 20, 10)]),  # touching only: kept
    ([(0, 0, 10, 10), (8, 0, 22, 4), (20, 2, 30, 30)], [(0, 0, 30, 30)]),    # a chain: one box
])
def test_merge_boxes(boxes, expected):
    assert merge_boxes(boxes) == expected


def test_box_helpers():
    assert central_box((100, 200), (0.5, 0.2)) == (50, 40, 150, 60)
    assert overlaps((0, 0, 5, 5), (4, 4, 6, 6)) and not overlaps((0, 0, 5, 5), (5, 0, 6, 5))
    assert grow((5, 5, 10, 10), 3, (12, 11)) == (2, 2, 11, 12)


def test_one_word_on_black_is_found_exactly():
    px = np.zeros((200, 300), np.uint8)
    cv2.putText(px, "ABC 123", (10, 30), cv2.FONT_HERSHEY_PLAIN, 1.0, 255, 1, cv2.LINE_8)
    ys, xs = np.nonzero(px)
    (box,) = find_text_boxes(px)
    assert box[0] <= xs.min() and box[1] <= ys.min() and box[2] > xs.max() and box[3] > ys.max()
    assert box[2] - box[0] < 90 and box[3] - box[1] < 25  # the line, not the screen


def test_large_bright_ring_is_never_text():
    px = np.zeros((540, 800), np.uint8)
    cv2.ellipse(px, (150, 120), (90, 70), 0, 0, 360, 220, 4)  # a "head" far off centre
    assert find_text_boxes(px) == []
    assert np.array_equal(deidentify_pixels(UltrasoundImage(px)).pixels, px)


@pytest.mark.parametrize(("bitmap", "pitch_px"), [(True, 8), (False, 13)])
def test_text_block_against_tissue_and_the_edge_is_blanked(bitmap, pitch_px):
    # bitmap lines 8 px apart: no line has a flat ring, the block passes the second-chance test;
    # anti-aliased lines 13 px apart: found line by line, each pass freeing its neighbours' rings
    px, tissue_y = text_block_on_tissue(bitmap, pitch_px)
    assert int((px[:tissue_y - 2, :200] > 100).sum()) > 100  # the block is there
    out = deidentify_pixels(UltrasoundImage(px)).pixels
    assert int((out[:tissue_y - 2, :200] > 100).sum()) == 0
    assert np.array_equal(out[tissue_y + 2:], px[tissue_y + 2:])  # the tissue and sector are left alone


def test_text_free_sector_is_left_alone():
    for seed in range(3):
        px, _, _ = sector_image(seed=seed)
        assert np.array_equal(deidentify_pixels(UltrasoundImage(px)).pixels, px)


def _find_text_boxes_judging_every_box(pixels: np.ndarray, p: TextParams = DEFAULT_TEXT_PARAMS) -> list:
    """Reference: find_text_boxes as written before each box's background verdict was remembered
    (every labelling judges all its boxes afresh)."""
    h, w = pixels.shape
    grad = text_mod._gradient(pixels)
    protect = central_box((h, w), p.central_fraction)
    flat = cv2.integral((grad <= 2).astype(np.uint8))
    out: list = []
    for threshold in p.edge_thresholds:
        strokes, labels, stats = text_mod._components(grad, threshold, p)
        out.extend(text_mod._text_boxes(pixels, strokes, stats, protect, p, flat))
        large = text_mod._large_labels(stats, p, w)
        if large.any():
            lines = text_mod._long_lines(strokes) & large[labels]
            if lines.any():
                strokes2, _, stats2 = text_mod._components(grad, threshold, p, exclude=lines)
                out.extend(text_mod._text_boxes(pixels, strokes2, stats2, protect, p, flat))
    return merge_boxes(out)


def _screens() -> list[tuple[str, np.ndarray]]:
    out = [(f"screen {i}", make_screen(i).pixels) for i in range(6)]
    out += [(f"text block, bitmap={b}", text_block_on_tissue(b, pitch)[0]) for b, pitch in [(True, 8), (False, 13)]]
    out += [("text-free sector", sector_image(seed=2)[0]), ("phantom", make_phantom(seed=4)[0])]
    framed = make_screen(1).pixels.copy()
    framed[60, 20:780] = 200  # a ruler line that glues text to the frame: the exclude labelling runs
    framed[20:520, 12] = 200
    out.append(("screen with frame lines", framed))
    # a short word just above a line of capitals: its ring holds the line's top bars, so it is
    # found only in the second pass, after the line is blanked, in the same box as in the first
    # pass (a verdict kept from the first pass's pixels would miss it)
    two = np.zeros((300, 400), np.uint8)
    cv2.putText(two, "IM#2", (60, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.5, 255, 1, cv2.LINE_8)
    cv2.putText(two, "EEEEEEEEEEEE", (10, int(np.nonzero(two)[0].max()) + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, 255,
                1, cv2.LINE_8)
    out.append(("short line found in the second pass", two))
    return out


@pytest.mark.parametrize(("case", "px"), _screens(), ids=[c[0] for c in _screens()])
def test_remembered_background_verdicts_give_the_same_boxes(case, px):
    assert find_text_boxes(px) == _find_text_boxes_judging_every_box(px)
    # and the whole de-identification, pass after pass
    assert np.array_equal(deidentify_pixels(UltrasoundImage(px)).pixels,
                          _deidentify_judging_every_box(px))


def _deidentify_judging_every_box(px: np.ndarray) -> np.ndarray:
    from unittest import mock

    with mock.patch("fetalhc.deid.pixels.find_text_boxes", _find_text_boxes_judging_every_box):
        return deidentify_pixels(UltrasoundImage(px)).pixels


def test_label_boxes_are_opencvs_boxes():
    """The labels and bounding boxes equal cv2.connectedComponentsWithStats' on speckle-like masks."""
    import cv2

    from fetalhc.deid.text import label_boxes

    rng = np.random.default_rng(5)
    for density in (0.02, 0.2, 0.55):
        m = (rng.random((120, 160)) < density).astype(np.uint8)
        n, labels_cv, stats_cv, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
        labels, stats = label_boxes(m)
        assert stats.shape == (n, 5) and np.array_equal(labels, labels_cv)
        assert np.array_equal(stats[1:, :4], stats_cv[1:, :4])
