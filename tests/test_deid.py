"""De-identification proof on a synthetic corpus (tests/deid_corpus.py).

Pixels: before cleaning, OCR reads most planted identifiers (so the check can fail); after,
none is readable, and the pixels of the head's bounding box are bit-identical (HC cannot change).
Header: the PS3.15 basic profile leaves none of the planted identifiers anywhere in the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from deid_corpus import (
    Screen,
    add_text_on_black,
    check_boxes,
    make_dicom,
    make_screen,
    planted_tokens,
    read_tokens,
    readable,
    sector_image,
)
from fetalhc.deid import (
    central_box,
    deidentify_dataset,
    deidentify_file,
    deidentify_pixels,
    find_text_boxes,
    tesseract_available,
)
from fetalhc.image import UltrasoundImage, load_image

if os.environ.get("FETALHC_REQUIRE_TOOLS") == "1" and not tesseract_available():
    pytest.fail("tesseract missing and FETALHC_REQUIRE_TOOLS=1 (apt-get install tesseract-ocr)", pytrace=False)
needs_ocr = pytest.mark.skipif(not tesseract_available(),
                               reason="tesseract binary or pytesseract missing (apt-get install tesseract-ocr)")

N_SCREENS = 4


@pytest.fixture(scope="module")
def screens() -> list[Screen]:
    return [make_screen(i) for i in range(N_SCREENS)]


def head_pixels(px: np.ndarray, s: Screen) -> np.ndarray:
    x0, y0, x1, y1 = s.head_box
    return px[y0:y1, x0:x1]


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


def test_large_bright_ring_is_never_text():
    px = np.zeros((540, 800), np.uint8)
    cv2.ellipse(px, (150, 120), (90, 70), 0, 0, 360, 220, 4)  # a "head" far off centre
    assert find_text_boxes(px) == []
    assert np.array_equal(deidentify_pixels(UltrasoundImage(px)).pixels, px)


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
    from pydicom.data import get_testdata_file

    from fetalhc.dicom import load_dicom

    p = get_testdata_file(name, download=False)
    if p is None:
        pytest.skip(f"pydicom's {name} is not available")
    img = load_dicom(p)
    top = [(0, 0, img.width_px, band_height_px)]
    assert words <= set(read_tokens(img.pixels, top))
    out = deidentify_pixels(img)  # the fast path, no OCR
    assert not {t for t in read_tokens(out.pixels, top) if len(t) >= 4}



def _text_block_on_tissue(bitmap: bool, pitch_px: int, seed: int = 0) -> tuple[np.ndarray, int]:
    """A sector image whose top-left corner holds five text lines ``pitch_px`` apart touching the
    image's left edge, with speckled tissue 3 px below the last line (pydicom's
    examples_rgb_color.dcm has such a block). ``bitmap``: one grey level, as many ultrasound
    screens draw text; else anti-aliased. Returns the pixels and the first tissue row."""
    px, _, _ = sector_image(seed=seed)
    rng = np.random.default_rng(seed)
    tissue_y = 5 * pitch_px + 4
    px[tissue_y:tissue_y + 20, :] = np.clip(60 + 25 * rng.standard_normal((20, px.shape[1])), 0, 255)
    px[:tissue_y, :260] = 0
    text = np.zeros_like(px)
    for i, line in enumerate(["SMITH JOHN", "ID 4471234", "DOB 19870314", "ST MARY HOSP", "IM#2"]):
        if bitmap:
            cv2.putText(text, line, (1, pitch_px * (i + 1)), cv2.FONT_HERSHEY_PLAIN, 0.75, 255, 1, cv2.LINE_8)
        else:
            cv2.putText(text, line, (1, pitch_px * (i + 1) - 1), cv2.FONT_HERSHEY_SIMPLEX, 0.45, 255, 1, cv2.LINE_AA)
    px[:tissue_y, :260] = (text[:tissue_y, :260] > 60) * 227 if bitmap else text[:tissue_y, :260] * (227 / 255)
    return px, tissue_y


@pytest.mark.parametrize(("bitmap", "pitch_px"), [(True, 8), (False, 13)])
def test_text_block_against_tissue_and_the_edge_is_blanked(bitmap, pitch_px):
    # bitmap lines 8 px apart: no line has a flat ring, the block passes the second-chance test;
    # anti-aliased lines 13 px apart: found line by line, each pass freeing its neighbours' rings
    px, tissue_y = _text_block_on_tissue(bitmap, pitch_px)
    assert int((px[:tissue_y - 2, :200] > 100).sum()) > 100  # the block is there
    out = deidentify_pixels(UltrasoundImage(px)).pixels
    assert int((out[:tissue_y - 2, :200] > 100).sum()) == 0
    assert np.array_equal(out[tissue_y + 2:], px[tissue_y + 2:])  # the tissue and sector are left alone


@needs_ocr
def test_ocr_reads_dense_anti_aliased_block_glued_to_tissue():
    # lines 11 px apart merge with the tissue below into one large component: the fast path
    # cannot see them as text; OCR reads them because letters on the screen background stay
    # on its page
    px, tissue_y = _text_block_on_tissue(bitmap=False, pitch_px=11)
    block = [(0, 0, 260, tissue_y)]
    assert {"SMITH", "4471234", "19870314"} <= set(read_tokens(px, block))
    out = deidentify_pixels(UltrasoundImage(px), ocr=True).pixels
    assert not {t for t in read_tokens(out, block) if len(t) >= 3}
    assert np.array_equal(out[tissue_y + 4:], px[tissue_y + 4:])  # the sector below is left alone


def test_text_free_sector_is_left_alone():
    for seed in range(3):
        px, _, _ = sector_image(seed=seed)
        assert np.array_equal(deidentify_pixels(UltrasoundImage(px)).pixels, px)



# --------------------------------------------------------------------------- header


IDENTIFYING_TAGS = ("PatientName", "PatientID", "PatientBirthDate", "PatientAddress", "InstitutionName",
                    "InstitutionAddress", "ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName",
                    "AccessionNumber", "StudyDate", "StudyTime", "StudyID", "StationName", "DeviceSerialNumber")


def header_secrets(s: Screen) -> list[bytes]:
    """Identifying strings planted in the header of make_dicom (name parts, IDs, dates, places)."""
    words = [t for key in ("name", "id", "hospital", "physician", "accession") for t in s.identity[key].split()
             if len(t) >= 4 and t.upper() not in ("PATIENT",)]
    return [w.encode() for w in words] + [b"19870314", b"20240131", b"Invented Lane", b"Fictional", b"Fakename",
                                          b"Imaginary", b"USROOM3", b"SN-0042", b"S12345"]


def test_deidentify_dataset_basic_profile(tmp_path, screens):
    import pydicom

    s = screens[0]
    ds = pydicom.dcmread(make_dicom(tmp_path / "in.dcm", s))
    original_uid = ds.SOPInstanceUID
    out = deidentify_dataset(ds)
    assert str(ds.PatientName).startswith("MARGARETHE")  # the input is not changed
    for tag in ("PatientAddress", "InstitutionAddress"):  # action X: removed
        assert tag not in out
    for tag in IDENTIFYING_TAGS:
        v = str(out.get(tag, "") or "")
        assert not any(sec.decode() in v for sec in header_secrets(s)), tag
    assert out.SOPInstanceUID != original_uid and out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    assert out.PatientIdentityRemoved == "YES"
    assert [c.CodeValue for c in out.DeidentificationMethodCodeSequence] == ["113100"]
    assert out.DeidentificationMethodCodeSequence[0].CodingSchemeDesignator == "DCM"
    assert out.BurnedInAnnotation == "YES"  # pixels not cleaned: the flag stays
    clean = deidentify_dataset(ds, pixels_cleaned=True)
    assert clean.BurnedInAnnotation == "NO"
    assert [c.CodeValue for c in clean.DeidentificationMethodCodeSequence] == ["113100", "113101"]
    assert "SequenceOfUltrasoundRegions" in clean  # the pixel size survives


def test_deidentify_file_dicom_end_to_end(tmp_path, screens):
    s = screens[1]
    src = make_dicom(tmp_path / "in.dcm", s, pixel_size_mm=0.15)
    dst = deidentify_file(src, tmp_path / "out" / "clean.dcm")
    data = dst.read_bytes()
    for sec in header_secrets(s):
        assert sec not in data and sec.upper() not in data
    img = load_image(dst)
    assert img.pixel_size_mm == pytest.approx(0.15)
    assert np.array_equal(head_pixels(img.pixels, s), head_pixels(s.pixels, s))
    x0, y0, x1, y1 = s.sector_box
    outside = np.ones(s.pixels.shape, bool)
    outside[y0:y1, x0:x1] = False
    assert not img.pixels[outside].any()  # the region blanks the text bands
    if tesseract_available():
        assert not readable(planted_tokens(s), read_tokens(img.pixels, check_boxes(s)))
    assert sorted(p.name for p in dst.parent.iterdir()) == ["clean.dcm"]  # no temporary left


def test_deidentify_file_png_and_atomic_failure(tmp_path, screens, monkeypatch):
    s = screens[2]
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), s.pixels)
    dst = deidentify_file(src, tmp_path / "out.png")
    img = load_image(dst)
    assert np.array_equal(head_pixels(img.pixels, s), head_pixels(s.pixels, s))
    for x0, y0, x1, y1 in s.boxes:
        assert (img.pixels[y0:y1, x0:x1] > 0).mean() < 0.02
    with pytest.raises(ValueError, match="must end in .png"):
        deidentify_file(src, tmp_path / "out.jpg")
    with pytest.raises(ValueError, match="needs DICOM input"):
        deidentify_file(src, tmp_path / "out.dcm")
    monkeypatch.setattr(cv2, "imencode", lambda *a, **k: (False, None))
    with pytest.raises(OSError):
        deidentify_file(src, tmp_path / "failed.png")
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["in.png", "out.png"]
