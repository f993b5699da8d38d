"""Tesseract OCR (fetalhc.deid.ocr): bands, and what OCR mode catches that the fast path cannot.

The OCR tests skip without the tesseract binary; they also read the planted text before cleaning,
so the check itself can fail.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from deid_corpus import (
    Screen,
    add_text_on_black,
    check_boxes,
    head_pixels,
    make_screen,
    planted_tokens,
    read_tokens,
    readable,
    text_block_on_tissue,
)
from fetalhc.deid import central_box, deidentify_pixels, ocr_bands, tesseract_available
from fetalhc.image import UltrasoundImage

needs_ocr = pytest.mark.skipif(not tesseract_available(),
                               reason="tesseract binary or pytesseract missing (apt-get install tesseract-ocr)")


@pytest.fixture(scope="module")
def screens() -> list[Screen]:
    return [make_screen(i) for i in range(4)]


def test_bands_cover_everything_outside_the_centre_and_nothing_inside():
    shape = (540, 800)
    bands = ocr_bands(shape)
    covered = np.zeros(shape, bool)
    for x0, y0, x1, y1 in bands:
        covered[y0:y1, x0:x1] = True
    cx0, cy0, cx1, cy1 = central_box(shape)
    inside = np.zeros(shape, bool)
    inside[cy0:cy1, cx0:cx1] = True
    assert covered[~inside].all() and not covered[inside].any()
    assert len(bands) == len(set(bands)) and all(y1 - y0 <= 48 for _, y0, _, y1 in bands)


@needs_ocr
def test_ocr_reads_identifiers_before_and_none_after(screens):
    before = after = total = 0
    for s in screens:
        planted = planted_tokens(s)
        boxes = check_boxes(s)
        total += len(planted)
        before += len(readable(planted, read_tokens(s.pixels, boxes)))
        out = deidentify_pixels(UltrasoundImage(s.pixels))
        left = readable(planted, read_tokens(out.pixels, boxes))
        after += len(left)
        assert not left, f"still readable after de-identification: {len(left)} token(s)"
    assert before / total >= 0.8, f"OCR check too weak: read {before}/{total} planted tokens before cleaning"
    assert after == 0


@needs_ocr
def test_ocr_mode_catches_faint_text_the_fast_path_misses(screens):
    s = add_text_on_black(screens[0], "FAINTNAME LOWCONTRAST", level=10)
    s = add_text_on_black(s, "Guadalupe Ferreira", level=10, font=cv2.FONT_HERSHEY_DUPLEX, scale=0.5)
    boxes = check_boxes(s)[-2:]
    faint = [t for text in s.texts[-2:] for t in planted_tokens(Screen(s.pixels, s.head, (text,), (), s.sector_box,
                                                                       s.identity))]
    fast = deidentify_pixels(UltrasoundImage(s.pixels), ocr=False)
    assert readable(faint, read_tokens(fast.pixels, boxes)), "faint text should survive the fast path"
    full = deidentify_pixels(UltrasoundImage(s.pixels), ocr=True)
    assert not readable(faint, read_tokens(full.pixels, boxes))
    assert np.array_equal(head_pixels(full.pixels, s), head_pixels(s.pixels, s))
    assert "ocr_boxes=" in full.notes[-1]


@needs_ocr
@pytest.mark.parametrize(("name", "band_height_px", "words"), [
    ("examples_palette.dcm", 60, {"PHILIPS", "HEALTHCARE"}),  # text on a grey top bar
    ("examples_rgb_color.dcm", 54, {"CINE", "MSCSKEL"}),  # dense blocks touching the edge and the tissue
])
def test_real_screen_header_text_is_cleaned(name, band_height_px, words):
    pytest.importorskip("pydicom")
    from dicom_builder import pydicom_file
    from fetalhc.reader import load_image

    img = load_image(pydicom_file(name))
    top = [(0, 0, img.width_px, band_height_px)]
    assert words <= set(read_tokens(img.pixels, top))
    out = deidentify_pixels(img)  # the fast path, no OCR
    assert not {t for t in read_tokens(out.pixels, top) if len(t) >= 4}


@needs_ocr
def test_ocr_reads_dense_anti_aliased_block_glued_to_tissue():
    # lines 11 px apart merge with the tissue below into one large component: the fast path
    # cannot see them as text; OCR reads them because letters on the screen background stay
    # on its page
    px, tissue_y = text_block_on_tissue(bitmap=False, pitch_px=11)
    block = [(0, 0, 260, tissue_y)]
    assert {"SMITH", "4471234", "19870314"} <= set(read_tokens(px, block))
    out = deidentify_pixels(UltrasoundImage(px), ocr=True).pixels
    assert not {t for t in read_tokens(out, block) if len(t) >= 3}
    assert np.array_equal(out[tissue_y + 4:], px[tissue_y + 4:])  # the sector below is left alone
