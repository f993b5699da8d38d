"""deidentify_pixels (fetalhc.deid.pixels) on the synthetic corpus (tests/deid_corpus.py): planted
text blanked, the head's bounding box bit-identical (HC cannot change), regions, notes, speed."""

from __future__ import annotations

import numpy as np
import pytest

from deid_corpus import Screen, head_pixels, make_screen
from fetalhc.deid import central_box, deidentify_pixels
from fetalhc.image import UltrasoundImage


@pytest.fixture(scope="module")
def screens() -> list[Screen]:
    return [make_screen(i) for i in range(4)]


def test_fast_path_blanks_planted_text_and_keeps_head(screens):
    for s in screens:
        out = deidentify_pixels(UltrasoundImage(s.pixels, name="s.png"))
        assert np.array_equal(head_pixels(out.pixels, s), head_pixels(s.pixels, s))
        for x0, y0, x1, y1 in s.boxes:
            ink = s.pixels[y0:y1, x0:x1] > 0
            assert ink.any()
            left = out.pixels[y0:y1, x0:x1][ink] > 0
            assert left.mean() < 0.02, f"text at {(x0, y0, x1, y1)} not blanked"
        # nothing but text was touched: the sector outside the planted boxes is unchanged
        changed = out.pixels != s.pixels
        for x0, y0, x1, y1 in s.boxes:
            changed[max(0, y0 - 6):y1 + 6, max(0, x0 - 6):x1 + 6] = False
        assert not changed.any()
        assert s.pixels is not out.pixels and out.name == "s.png"


def test_notes_hold_counts_only(screens):
    s = screens[0]
    out = deidentify_pixels(UltrasoundImage(s.pixels, notes=("earlier",)))
    assert out.notes[0] == "earlier" and len(out.notes) == 2
    assert out.notes[1].startswith("deid: ")
    for part in out.notes[1][len("deid: "):].split():
        key, value = part.split("=")
        assert key.isidentifier() and value.isdigit()


def test_regions_blank_everything_outside(screens):
    s = screens[1]
    out = deidentify_pixels(UltrasoundImage(s.pixels, regions=(s.sector_box,)))
    x0, y0, x1, y1 = s.sector_box
    outside = np.ones(s.pixels.shape, bool)
    outside[y0:y1, x0:x1] = False
    assert not out.pixels[outside].any()
    assert np.array_equal(head_pixels(out.pixels, s), head_pixels(s.pixels, s))
    assert "outside_regions_px=" in out.notes[-1]


def test_regions_missing_the_centre_never_blank_it(screens):
    s = screens[2]
    out = deidentify_pixels(UltrasoundImage(s.pixels, regions=((0, 0, 50, 50),)))
    cx0, cy0, cx1, cy1 = central_box(s.pixels.shape)
    assert np.array_equal(out.pixels[cy0:cy1, cx0:cx1], s.pixels[cy0:cy1, cx0:cx1])



def test_blanking_boxes_are_kept_clear_of_the_centre():
    from fetalhc.deid.pixels import _guarded
    from fetalhc.deid.text import DEFAULT_TEXT_PARAMS

    # a box reaching 20 px into the 100x100 image's central box (30..70) is cut back on the side losing least
    assert _guarded((0, 10, 50, 20), DEFAULT_TEXT_PARAMS, (100, 100)) == (0, 10, 50, 20)
    assert _guarded((0, 60, 100, 80), DEFAULT_TEXT_PARAMS, (100, 100)) == (0, 70, 100, 80)
    assert _guarded((35, 35, 65, 65), DEFAULT_TEXT_PARAMS, (100, 100)) == (0, 0, 0, 0)
