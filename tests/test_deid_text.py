"""Text finding without OCR (fetalhc.deid.text): rings, tissue, blocks against the edge."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from deid_corpus import sector_image, text_block_on_tissue
from fetalhc.deid import central_box, deidentify_pixels, find_text_boxes, merge_boxes
from fetalhc.deid.text import grow, overlaps
from fetalhc.image import UltrasoundImage


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
