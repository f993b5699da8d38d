"""The measure step: one Segmentation in, one Measurement out (edge confidence, ellipse, lengths,
HC band, per-crop HCs, mask geometry), and the helpers it is built from, on small exact arrays."""

import cv2
import numpy as np
import pytest

from fetalhc.boundary import iso_contour_xy
from fetalhc.crops import CropBox
from fetalhc.ellipse import Ellipse, fit_ellipse_points
from fetalhc.fuse import binarize
from fetalhc.measurement import (
    Measurement,
    border_contact_px,
    boundary_confidence,
    crop_hcs_px,
    ellipse_outside_px,
    hc_band_px,
    mask_ellipse_iou,
    measure,
    outline_pixels_xy,
)
from fetalhc.phantom import make_phantom
from fetalhc.segmentation import Segmentation

SHAPE = (540, 800)
HEAD = Ellipse(400.0, 270.0, 180.0, 145.0, 20.0)


def seg_of(mask: np.ndarray, probability: np.ndarray | None = None, boxes=(), crop_probs=()) -> Segmentation:
    prob = mask.astype(np.float32) if probability is None else probability.astype(np.float32)
    return Segmentation(prob, mask, tuple(boxes), tuple(crop_probs))


def _logistic_edge_map(width_px: float) -> np.ndarray:
    """Head probability falling from 1 to 0 across HEAD's outline over about ``width_px``."""
    yy, xx = np.mgrid[0:SHAPE[0], 0:SHAPE[1]].astype(float)
    th = np.radians(HEAD.angle_deg)
    dx, dy = xx - HEAD.center_x_px, yy - HEAD.center_y_px
    u = dx * np.cos(th) + dy * np.sin(th)
    v = -dx * np.sin(th) + dy * np.cos(th)
    r = np.hypot(u / HEAD.semi_axis_a_px, v / HEAD.semi_axis_b_px)
    signed_px = (1.0 - r) * HEAD.semi_axis_b_px  # roughly pixels inside the outline
    return (1.0 / (1.0 + np.exp(np.clip(-signed_px / (width_px / 4.0), -50, 50)))).astype(np.float32)


# ---- measure ---------------------------------------------------------------------------------

def test_measure_a_clean_head():
    mask = HEAD.rasterize(SHAPE)
    m = measure(seg_of(mask), 0.12, "user")
    assert m.image_shape_hw == SHAPE and m.pixel_size_source == "user"
    assert m.edge_confidence == pytest.approx(1.0)
    assert m.ellipse is not None
    assert m.hc_px == pytest.approx(HEAD.perimeter_px, rel=0.005)
    assert m.hc_px == m.ellipse.perimeter_px
    assert m.hc_mm == pytest.approx(m.hc_px * 0.12)  # converted once, by the pixel size
    assert m.ofd_mm == pytest.approx(2 * m.ellipse.semi_axis_a_px * 0.12)
    assert m.bpd_mm == pytest.approx(2 * m.ellipse.semi_axis_b_px * 0.12)
    assert m.mask_area_px == int(np.count_nonzero(mask))
    assert m.border_contact_px == 0 and m.ellipse_outside_px == 0.0
    assert m.fit_iou > 0.99
    # the patent's cross-element pixel count is biased low (about x0.90), the marching-squares edge is not
    assert 0.85 * m.hc_px < m.patent_pixel_count_hc_px < 0.95 * m.hc_px
    assert m.contour_length_px == pytest.approx(m.hc_px, rel=0.02)
    assert m.hc_band_px == pytest.approx(0.0, abs=1e-9)  # a binary probability: both outlines coincide
    assert m.crop_hc_px == ()


def test_measure_without_pixel_size_gives_no_mm():
    m = measure(seg_of(HEAD.rasterize(SHAPE)), None)
    assert m.hc_px is not None
    assert (m.hc_mm, m.ofd_mm, m.bpd_mm, m.hc_band_mm, m.patent_pixel_count_hc_mm, m.contour_length_mm) == (
        None, None, None, None, None, None)
    assert m.pixel_size_source == "none"


def test_measure_empty_mask():
    m = measure(seg_of(np.zeros(SHAPE, np.uint8)), 0.12, "user")
    assert m.mask_area_px == 0 and not m.head_mask.any()
    assert (m.edge_confidence, m.ellipse, m.hc_px, m.hc_band_px, m.fit_iou) == (None, None, None, None, None)


@pytest.mark.parametrize(("inside", "outside", "kept"), [
    (0.55, 0.45, False),  # |2p-1| = 0.1 < 0.2: a soft blob, discarded
    (0.65, 0.35, True),  # 0.3 >= 0.2: kept (quality may still flag it)
    (1.0, 0.0, True),
])
def test_measure_discards_a_mask_without_a_sharp_edge(inside, outside, kept):
    mask = HEAD.rasterize(SHAPE)
    prob = np.where(mask > 0, inside, outside)
    m = measure(seg_of(mask, prob), 0.12, "user")
    assert m.edge_confidence == pytest.approx(abs(inside - outside), abs=1e-6)  # kept even when discarded
    assert bool(m.head_mask.any()) is kept
    assert (m.mask_area_px > 0) is kept and (m.ellipse is not None) is kept


def test_measure_no_head_edge_confidence_is_a_parameter():
    mask = HEAD.rasterize(SHAPE)
    prob = np.where(mask > 0, 0.55, 0.45)
    assert measure(seg_of(mask, prob), 0.12, no_head_edge_confidence=0.05).head_mask.any()


def test_measure_crop_hcs_and_band_come_from_the_segmentation():
    mask = HEAD.rasterize(SHAPE)
    box = CropBox("full", 0, 0, SHAPE[1], SHAPE[0])
    m = measure(seg_of(mask, _logistic_edge_map(12.0), (box,), (mask.astype(np.float32),)), 0.12)
    assert len(m.crop_hc_px) == 1 and m.crop_hc_px[0] == pytest.approx(HEAD.perimeter_px, rel=0.005)
    assert m.hc_band_px == pytest.approx(hc_band_px(_logistic_edge_map(12.0)))
    assert m.hc_band_mm == pytest.approx(m.hc_band_px * 0.12)


def test_measurement_is_frozen():
    m = measure(seg_of(HEAD.rasterize(SHAPE)), 0.12)
    with pytest.raises(AttributeError):
        m.hc_px = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(("pixel_mm", "length_px", "expected"),
                         [(0.1, 10.0, 1.0), (None, 10.0, None), (0.1, None, None)])
def test_measurement_mm(pixel_mm, length_px, expected):
    m = Measurement(SHAPE, pixel_mm, "user", np.zeros(SHAPE, np.uint8))
    assert m.mm(length_px) == (None if expected is None else pytest.approx(expected))


# ---- boundary confidence, IoU --------------------------------------------------------------------

def test_boundary_confidence_of_a_soft_edge():
    # logistic edge of scale 1 px: mean tanh(d/2) over |d| <= 7 px is about 0.8, well above the 0.5 limit
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    d = 150.0 - np.hypot(yy - 270, xx - 400)
    prob = 1 / (1 + np.exp(-d))
    assert boundary_confidence(prob, (d >= 0).astype(np.uint8)) == pytest.approx(0.8, abs=0.05)


@pytest.mark.parametrize(("inside", "outside", "expected"), [(1.0, 0.0, 1.0), (0.55, 0.45, 0.1), (0.5, 0.5, 0.0)])
def test_boundary_confidence_of_flat_maps(inside, outside, expected):
    mask = HEAD.rasterize(SHAPE)
    prob = np.where(mask > 0, inside, outside).astype(np.float32)
    assert boundary_confidence(prob, mask) == pytest.approx(expected, abs=1e-6)


def test_boundary_confidence_of_no_mask_is_zero():
    assert boundary_confidence(np.ones(SHAPE, np.float32), np.zeros(SHAPE, np.uint8)) == 0.0


def test_windowed_iou_and_edge_band_equal_their_whole_image_definitions():
    rng = np.random.default_rng(4)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (15, 15))
    for _ in range(60):  # heads anywhere, also cut by the image border
        e = Ellipse(rng.uniform(-60, 860), rng.uniform(-60, 600), rng.uniform(20, 300), rng.uniform(10, 200),
                    rng.uniform(0, 180))
        if e.semi_axis_b_px > e.semi_axis_a_px:
            e = Ellipse(e.center_x_px, e.center_y_px, e.semi_axis_b_px, e.semi_axis_a_px, e.angle_deg)
        m = Ellipse(e.center_x_px + rng.normal(0, 6), e.center_y_px, e.semi_axis_a_px * rng.uniform(0.9, 1.1),
                    e.semi_axis_b_px, e.angle_deg).rasterize(SHAPE)
        full = e.rasterize(SHAPE) > 0
        union = np.count_nonzero((m > 0) | full)
        iou = np.count_nonzero((m > 0) & full) / union if union else 0.0
        assert mask_ellipse_iou(m, e) == pytest.approx(iou, abs=1e-12)
        prob = rng.random(SHAPE).astype(np.float32)
        band = cv2.dilate(m, k) > cv2.erode(m, k)
        want = float(np.abs(2.0 * prob[band].astype(np.float64) - 1.0).mean()) if band.any() else 0.0
        assert boundary_confidence(prob, m) == pytest.approx(want, abs=1e-12)


# ---- image borders ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("ellipse", "expected"), [
    (Ellipse(40.0, 270.0, 60.0, 50.0, 0.0), 20.0),
    (Ellipse(400.0, 100.0, 150.0, 50.0, 90.0), 50.0),
    (HEAD, 0.0),
    (Ellipse(760.0, 270.0, 60.0, 50.0, 0.0), 21.0),  # right edge: last pixel centre is column 799
])
def test_ellipse_outside_px(ellipse, expected):
    assert ellipse_outside_px(ellipse, SHAPE) == pytest.approx(expected)


def test_border_contact_px():
    small = np.zeros((5, 6), np.uint8)
    small[1:4, 1:5] = 1
    assert border_contact_px(small) == 0
    small[0, 2:4] = 1
    small[2, 5] = 1
    assert border_contact_px(small) == 3
    assert border_contact_px(np.ones((5, 6), np.uint8)) == 2 * 6 + 2 * 3
    # touches the left border over about 21 px only (0.5 px of the ellipse lies beyond column 0)
    assert 0 < border_contact_px(Ellipse(179.5, 270.0, 180.0, 145.0, 0.0).rasterize(SHAPE)) < 30


# ---- HC band and crop HCs ---------------------------------------------------------------------------

def test_hc_band_is_narrow_for_a_sharp_edge_and_wide_for_a_soft_one():
    def expected(width_px: float) -> float:
        # p = 0.2 and 0.8 lie where r = 1 -+ delta, delta = ln(4) (width / 4) / b: two ellipses
        # scaled by 1 +- delta, whose perimeters differ by 2 delta P
        return 2 * np.log(4) * width_px / 4 / HEAD.semi_axis_b_px * HEAD.perimeter_px

    sharp = hc_band_px(_logistic_edge_map(1.0))
    soft = hc_band_px(_logistic_edge_map(12.0))
    assert sharp is not None and soft is not None
    assert sharp == pytest.approx(expected(1.0), abs=1.5)
    assert soft == pytest.approx(expected(12.0), rel=0.05)
    assert hc_band_px(np.zeros(SHAPE, np.float32)) is None
    with pytest.raises(ValueError, match="band thresholds"):
        hc_band_px(_logistic_edge_map(1.0), (0.8, 0.2))


def test_crop_hcs_are_scaled_back_to_the_input_image():
    # the whole image seen by a network of half the resolution: the HC comes back in input pixels
    half = Ellipse(199.75, 134.75, 90.0, 72.5, 20.0).rasterize((270, 400)).astype(np.float32)
    box = CropBox("full", 0, 0, SHAPE[1], SHAPE[0])
    (hc,) = crop_hcs_px([box], [half])
    assert hc == pytest.approx(HEAD.perimeter_px, rel=0.01)


def test_crop_hcs_average_a_flipped_crop_with_its_twin():
    prob = HEAD.rasterize(SHAPE).astype(np.float32)
    box = CropBox("full", 0, 0, SHAPE[1], SHAPE[0])
    twin = CropBox("full_flip", 0, 0, SHAPE[1], SHAPE[0], flip=True)
    hcs = crop_hcs_px([box, twin], [prob, prob[:, ::-1].copy()])
    assert len(hcs) == 1 and hcs[0] == pytest.approx(HEAD.perimeter_px, rel=0.005)
    # an empty crop gives no HC
    other = CropBox("other", 0, 0, SHAPE[1], SHAPE[0])
    assert len(crop_hcs_px([box, other], [prob, np.zeros(SHAPE, np.float32)])) == 1


# ---- windowed outlines equal their whole-map definitions --------------------------------------------

def _outline_whole(prob: np.ndarray, threshold: float) -> np.ndarray:
    """Reference: the longest external contour of the binarised whole map (the code before the window)."""
    contours, _ = cv2.findContours(binarize(prob, threshold), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return max(contours, key=len)[:, 0, :].astype(np.float64) if contours else np.zeros((0, 2))


def _probability_maps() -> list[tuple[str, np.ndarray]]:
    """Soft head probabilities: a phantom's head, heads cut by each image border, two heads, none."""
    rng = np.random.default_rng(7)
    h, w = 180, 240
    _, head = make_phantom(h, w, seed=2)
    heads = [("phantom head", [head]), ("two heads", [head, Ellipse(30.0, 30.0, 20.0, 14.0, 10.0)])]
    for name, cx, cy in [("left", -10.0, 90.0), ("top", 120.0, -5.0), ("right", 250.0, 90.0), ("bottom", 120.0, 185.0),
                         ("corner", 235.0, 175.0)]:
        heads.append((f"cut by the {name} border", [Ellipse(cx, cy, 60.0, 40.0, 30.0)]))
    maps = []
    for name, es in heads:
        m = np.zeros((h, w), np.float32)
        for e in es:
            m = np.maximum(m, e.rasterize((h, w)).astype(np.float32))
        p = cv2.GaussianBlur(m, (0, 0), 4.0) + rng.normal(0, 0.05, (h, w)).astype(np.float32)
        maps.append((name, np.clip(p, 0, 1).astype(np.float32)))
    maps.append(("nothing above any threshold", np.full((h, w), 0.1, np.float32)))
    return maps


@pytest.mark.parametrize(("case", "prob"), _probability_maps(), ids=[c[0] for c in _probability_maps()])
def test_windowed_outline_and_hcs_equal_their_whole_map_definitions(case, prob):
    for t in (0.2, 0.5, 0.8):
        want = _outline_whole(prob, t)
        np.testing.assert_array_equal(outline_pixels_xy(prob, t), want)
    lo, hi = _outline_whole(prob, 0.2), _outline_whole(prob, 0.8)
    fits = min(len(lo), len(hi)) >= 5
    band = fit_ellipse_points(lo).perimeter_px - fit_ellipse_points(hi).perimeter_px if fits else None
    assert hc_band_px(prob) == band  # bit for bit


def test_crop_hcs_equal_their_definition_on_whole_crops():
    # reference: mean of the twins (also of a lone crop), binarised, sub-pixel edge, scaled, fitted
    rng = np.random.default_rng(3)
    maps = [p for _, p in _probability_maps()]
    boxes = [CropBox("tl", 0, 0, 300, 200), CropBox("tr", 100, 0, 400, 200), CropBox("tr_flip", 100, 0, 400, 200, True),
             CropBox("bl", 0, 50, 300, 250), CropBox("br", 100, 50, 400, 250)]
    probs = [maps[i] for i in rng.choice(len(maps), len(boxes))]
    want = []
    for name in ("tl", "tr", "bl", "br"):
        twins = [(b, p[:, ::-1] if b.flip else p) for b, p in zip(boxes, probs, strict=True)
                 if b.name.removesuffix("_flip") == name]
        prob = np.mean([p for _, p in twins], axis=0)
        pts = iso_contour_xy(binarize(prob))
        if len(pts) < 5:
            continue
        sx, sy = twins[0][0].width_px / prob.shape[1], twins[0][0].height_px / prob.shape[0]
        want.append(fit_ellipse_points(np.stack([(pts[:, 0] + 0.5) * sx - 0.5, (pts[:, 1] + 0.5) * sy - 0.5],
                                                axis=1)).perimeter_px)
    assert crop_hcs_px(boxes, probs) == want
