"""Quality flags: one synthetic case made for each flag, and a clean head that passes."""

import numpy as np
import pytest

from fetalhc.boundary import iso_contour_xy
from fetalhc.clinical import annotate
from fetalhc.ellipse import Ellipse, fit_ellipse_points
from fetalhc.quality import (
    QualityThresholds,
    assess,
    border_contact_px,
    boundary_confidence,
    calibrate_report,
    ellipse_outside_px,
    flag_code,
)
from fetalhc.results import MeasureResult

SHAPE = (540, 800)
HEAD = Ellipse(400.0, 270.0, 180.0, 145.0, 20.0)


def measure(mask: np.ndarray, pixel_mm: float | None = 0.12, crops: int = 4) -> MeasureResult:
    """What the pipeline does: fit the ellipse to the mask and fill the result."""
    r = MeasureResult(file="synthetic.png", pixel_size_mm=pixel_mm, pixel_size_source="user")
    if mask.any():
        e = fit_ellipse_points(iso_contour_xy(mask))
        r.center_x_px, r.center_y_px, r.angle_deg = e.center_x_px, e.center_y_px, e.angle_deg
        r.semi_axis_a_px, r.semi_axis_b_px = e.semi_axis_a_px, e.semi_axis_b_px
        r.hc_px = e.perimeter_px
        r.hc_mm = None if pixel_mm is None else e.perimeter_px * pixel_mm
        r.crop_hc_px = [e.perimeter_px * f for f in (1.0, 1.004, 0.997, 1.002)][:crops]
    return r


def run(mask, probability=None, **kw) -> MeasureResult:
    r = measure(mask, **kw)
    prob = mask.astype(np.float32) if probability is None else probability
    annotate(r)
    assess(r, mask=mask, probability=prob, image_shape_hw=SHAPE)
    return r


def codes(r: MeasureResult) -> list[str]:
    return [flag_code(f) for f in r.flags]


def test_clean_head_is_ok():
    r = run(HEAD.rasterize(SHAPE))
    assert r.flags == []
    assert r.status == "ok"
    assert r.mean_confidence == pytest.approx(1.0)


def test_blank_image_has_no_head():
    r = run(np.zeros(SHAPE, np.uint8))
    assert r.status == "review"
    assert codes(r) == ["no_head_found"]


def test_no_mask_at_all():
    r = MeasureResult(file="x.png", pixel_size_mm=0.1)
    assess(r, mask=None, probability=None, image_shape_hw=SHAPE)
    assert r.status == "review" and codes(r) == ["no_head_found"]


def test_head_cut_by_the_border():
    r = run(Ellipse(120.0, 270.0, 200.0, 160.0, 0.0).rasterize(SHAPE))
    assert "head_cut_by_border" in codes(r)
    assert r.status == "review"


def test_ellipse_reaching_outside_the_image_counts_as_cut():
    assert ellipse_outside_px(Ellipse(40.0, 270.0, 60.0, 50.0, 0.0), SHAPE) == pytest.approx(20.0)
    assert ellipse_outside_px(Ellipse(400.0, 100.0, 150.0, 50.0, 90.0), SHAPE) == pytest.approx(50.0)
    assert ellipse_outside_px(HEAD, SHAPE) == 0.0
    # mask well inside but the result's ellipse sticks out (e.g. a fit extrapolated across a shadow)
    mask = HEAD.rasterize(SHAPE)
    r = measure(mask)
    r.center_x_px = 700.0
    assess(r, mask=mask, probability=None, image_shape_hw=SHAPE)
    assert "head_cut_by_border" in codes(r)
    assert "reaches" in r.flags[codes(r).index("head_cut_by_border")]


def test_grazing_the_border_is_not_a_cut():
    # touches the left border over about 21 px only (0.5 px of the ellipse lies beyond column 0)
    mask = Ellipse(179.5, 270.0, 180.0, 145.0, 0.0).rasterize(SHAPE)
    assert 0 < border_contact_px(mask) < 30
    assert "head_cut_by_border" not in codes(run(mask))


def test_two_overlapping_ellipses_are_not_a_head():
    blob = np.maximum(Ellipse(330, 270, 130, 95, 0).rasterize(SHAPE), Ellipse(470, 300, 110, 85, 60).rasterize(SHAPE))
    r = run(blob)
    assert "ellipse_fit_residual_high" in codes(r)
    assert r.status == "review"


def test_star_is_not_a_head():
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    ang = np.arctan2(yy - 270, xx - 400)
    radius = 150 + 45 * np.cos(5 * ang)
    star = (np.hypot(yy - 270, xx - 400) <= radius).astype(np.uint8)
    assert "ellipse_fit_residual_high" in codes(run(star))


def test_tiny_mask_is_implausible():
    r = run(Ellipse(400, 270, 20, 16, 0).rasterize(SHAPE))
    assert "implausible_mask" in codes(r)
    assert "% of the image" in r.flags[codes(r).index("implausible_mask")]


def test_thin_mask_is_implausible():
    r = run(Ellipse(400, 270, 200, 90, 0).rasterize(SHAPE))
    assert "implausible_mask" in codes(r)
    assert "axis ratio" in " ".join(r.flags)


def test_missing_pixel_size():
    r = run(HEAD.rasterize(SHAPE), pixel_mm=None)
    assert codes(r) == ["pixel_size_missing"]
    assert r.status == "review"


def test_implausible_pixel_size():
    r = run(HEAD.rasterize(SHAPE), pixel_mm=2.5)
    assert "pixel_size_implausible" in codes(r)
    assert "hc_out_of_range" in codes(r)  # 2.5 mm pixels make a 2.6 m head


def test_hc_out_of_range():
    r = run(Ellipse(400, 270, 60, 48, 0).rasterize(SHAPE), pixel_mm=0.05)  # HC about 17 mm
    assert "hc_out_of_range" in codes(r)


def test_crops_disagree():
    r = measure(HEAD.rasterize(SHAPE))
    r.crop_hc_px = [1000.0, 1100.0, 1010.0, 1005.0]
    assess(r, mask=HEAD.rasterize(SHAPE), probability=None, image_shape_hw=SHAPE)
    assert codes(r) == ["crops_disagree"]
    assert "spread 9.9 %" in r.flags[0]


@pytest.mark.parametrize("crops", [[], [1000.0], [1000.0, 1020.0]])
def test_crops_agree_or_too_few(crops):
    r = measure(HEAD.rasterize(SHAPE))
    r.crop_hc_px = crops
    assess(r, mask=HEAD.rasterize(SHAPE), probability=None, image_shape_hw=SHAPE)
    assert "crops_disagree" not in codes(r)


def test_low_confidence_probability_map():
    mask = HEAD.rasterize(SHAPE)
    prob = np.where(mask > 0, 0.55, 0.45).astype(np.float32)
    r = run(mask, probability=prob)
    assert codes(r) == ["low_confidence"]
    assert r.mean_confidence == pytest.approx(0.1, abs=1e-6)


def test_boundary_confidence_of_a_soft_edge():
    # logistic edge of scale 1 px: mean tanh(d/2) over |d| <= 7 px is about 0.8, well above the 0.5 limit
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    d = 150.0 - np.hypot(yy - 270, xx - 400)
    prob = 1 / (1 + np.exp(-d))
    assert boundary_confidence(prob, (d >= 0).astype(np.uint8)) == pytest.approx(0.8, abs=0.05)


def test_informative_flags_keep_status_ok_but_unknown_flags_do_not():
    r = run(Ellipse(400, 270, 200, 140, 30).rasterize(SHAPE))  # CI 70: BPD unreliable, HC fine
    assert codes(r) == ["cephalic_index_out_of_range"]
    assert r.status == "ok"
    r.flags.append("source_note: something odd")
    assess(r, mask=Ellipse(400, 270, 200, 140, 30).rasterize(SHAPE), probability=None, image_shape_hw=SHAPE)
    assert r.status == "review"
    assert codes(r).count("cephalic_index_out_of_range") == 1


def test_thresholds_are_configurable():
    mask = HEAD.rasterize(SHAPE)
    r = measure(mask)
    r.crop_hc_px = [1000.0, 1100.0]
    assess(r, mask=mask, probability=None, image_shape_hw=SHAPE, thresholds=QualityThresholds(max_crop_spread=0.2))
    assert r.status == "ok"


def test_failed_result_stays_failed():
    r = MeasureResult(file="x.png", error="unreadable", status="failed")
    assess(r, mask=None, probability=None, image_shape_hw=SHAPE)
    assert r.status == "failed"


def test_calibrate_report():
    rows = [
        {"abs_err_mm": 1.0, "status": "ok", "flags": ""},
        {"abs_err_mm": "3.0", "status": "ok", "flags": "cephalic_index_out_of_range: CI 70"},
        {"abs_err_mm": 5.0, "status": "review", "flags": "crops_disagree: x;low_confidence: y"},
        {"abs_err_mm": 7.0, "status": "review", "flags": "crops_disagree: z"},
        {"abs_err_mm": 4.5, "status": "ok", "flags": ""},
        {"abs_err_mm": "", "status": "review", "flags": "no_head_found: empty"},
    ]
    rep = calibrate_report(rows)
    assert rep["n"] == 6 and rep["n_review"] == 3
    assert rep["fraction_review"] == pytest.approx(0.5)
    assert rep["adf_ok_mm"] == pytest.approx((1 + 3 + 4.5) / 3)
    assert rep["adf_review_mm"] == pytest.approx(6.0)
    assert (rep["errors_over_4mm"], rep["errors_over_4mm_caught"]) == (3, 2)
    assert (rep["errors_over_6mm"], rep["errors_over_6mm_caught"]) == (1, 1)
    assert rep["by_flag"]["crops_disagree"] == {"n": 2, "adf_mm": 6.0, "errors_over_4mm": 2}
    assert rep["by_flag"]["no_head_found"]["adf_mm"] is None
    assert calibrate_report([])["fraction_review"] is None


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


def test_hc_band_is_narrow_for_a_sharp_edge_and_wide_for_a_soft_one():
    from fetalhc.pipeline import hc_band_px

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


def test_wide_hc_band_sends_to_review():
    r = measure(HEAD.rasterize(SHAPE))
    r.hc_band_mm = 12.5
    annotate(r)
    assess(r, mask=HEAD.rasterize(SHAPE), probability=None, image_shape_hw=SHAPE)
    assert "hc_uncertain" in [flag_code(f) for f in r.flags]
    assert r.status == "review"
    r2 = measure(HEAD.rasterize(SHAPE))
    r2.hc_band_mm = 3.0
    annotate(r2)
    assess(r2, mask=HEAD.rasterize(SHAPE), probability=None, image_shape_hw=SHAPE)
    assert "hc_uncertain" not in [flag_code(f) for f in r2.flags]
    assert r2.status == "ok"


def test_pipeline_config_refuses_bad_band_thresholds():
    from fetalhc.pipeline import PipelineConfig

    with pytest.raises(ValueError, match="band thresholds"):
        PipelineConfig(band_thresholds=(0.8, 0.2))


def test_band_sweep_counts_band_and_other_review_flags():
    from fetalhc.quality import band_sweep

    rows = [
        {"abs_err_mm": 1.0, "hc_band_mm": 5.0, "status": "ok", "flags": "cephalic_index_out_of_range: CI 70"},
        {"abs_err_mm": 5.0, "hc_band_mm": 9.5, "status": "review", "flags": "hc_uncertain: 9.5 mm"},
        {"abs_err_mm": 7.0, "hc_band_mm": 6.5, "status": "review", "flags": "crops_disagree: z"},
        {"abs_err_mm": 2.0, "hc_band_mm": 7.5, "status": "review", "flags": "hc_uncertain: 7.5 mm"},
    ]
    by_limit = {s["max_hc_band_mm"]: s for s in band_sweep(rows, (7.0, 9.0, 10.0))}
    failed = {"abs_err_mm": None, "hc_band_mm": None, "status": "failed", "flags": ""}
    assert band_sweep([*rows, failed], (10.0,))[0]["fraction_review"] == pytest.approx(0.4)  # a failure is never ok
    assert by_limit[7.0]["fraction_review"] == pytest.approx(0.75)  # bands 9.5, 7.5 and the crops flag
    assert by_limit[9.0]["fraction_review"] == pytest.approx(0.5)
    assert by_limit[10.0]["fraction_review"] == pytest.approx(0.25)  # only the crops flag is left
    assert (by_limit[10.0]["errors_over_4mm"], by_limit[10.0]["errors_over_4mm_caught"]) == (2, 1)
    assert by_limit[9.0]["errors_over_4mm_caught"] == 2


def test_roc_auc():
    from fetalhc.metrics import roc_auc

    assert roc_auc(np.array([0, 0, 1, 1], bool), np.array([1.0, 2.0, 3.0, 4.0])) == 1.0
    assert roc_auc(np.array([0, 0, 1, 1], bool), np.array([4.0, 3.0, 2.0, 1.0])) == 0.0
    assert roc_auc(np.array([0, 1, 0, 1], bool), np.array([1.0, 1.0, 2.0, 2.0])) == 0.5
    assert roc_auc(np.array([1, 1], bool), np.array([1.0, 2.0])) is None


def test_windowed_iou_and_edge_band_equal_their_whole_image_definitions():
    import cv2

    from fetalhc.quality import mask_ellipse_iou

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
