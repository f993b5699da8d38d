"""Quality flags: one synthetic case made for each flag, and a clean head that passes.

Each case goes the pipeline's way: a Segmentation -> ``measure`` -> ``readout`` -> ``assess``; a
case that needs an exact value replaces one field of the Measurement.
"""

import copy
from dataclasses import FrozenInstanceError, replace

import numpy as np
import pytest

from fetalhc.clinical import Readout, readout
from fetalhc.ellipse import Ellipse
from fetalhc.flags import flag_code
from fetalhc.measurement import Measurement, ellipse_outside_px, measure
from fetalhc.quality import QualityThresholds, Verdict, assess, calibrate_report
from fetalhc.segmentation import Segmentation

SHAPE = (540, 800)
HEAD = Ellipse(400.0, 270.0, 180.0, 145.0, 20.0)
AGREEING_CROPS = (1.0, 1.004, 0.997, 1.002)


def measured(mask: np.ndarray, probability: np.ndarray | None = None, pixel_mm: float | None = 0.12,
             crops: int = 4, **kw) -> Measurement:
    """What the pipeline does up to the measure step; the crops agree within 0.7 %."""
    prob = mask.astype(np.float32) if probability is None else probability.astype(np.float32)
    m = measure(Segmentation(prob, mask, (), ()), pixel_mm, "user", **kw)
    if m.hc_px is None:
        return m
    return replace(m, crop_hc_px=tuple(m.hc_px * f for f in AGREEING_CROPS[:crops]))


def judge(m: Measurement, ga_weeks: float | None = None, **kw) -> Verdict:
    return assess(m, readout(m.hc_mm, m.bpd_mm, m.ofd_mm, ga_weeks), **kw)


def run(mask, probability=None, **kw) -> Verdict:
    return judge(measured(mask, probability, **kw))


def codes(v: Verdict) -> list[str]:
    return [flag_code(f) for f in v.flags]


def test_clean_head_is_ok():
    m = measured(HEAD.rasterize(SHAPE))
    v = judge(m)
    assert v.flags == ()
    assert v.status == "ok"
    assert m.edge_confidence == pytest.approx(1.0)


def test_blank_image_has_no_head():
    v = run(np.zeros(SHAPE, np.uint8))
    assert v.status == "review"
    assert codes(v) == ["no_head_found"]
    assert "mask is empty" in v.flags[0]


def test_no_mask_at_all():
    v = assess(Measurement(SHAPE, 0.1, "user", np.zeros(SHAPE, np.uint8)), readout(None))
    assert v.status == "review" and codes(v) == ["no_head_found"]


def test_mask_without_an_ellipse_has_no_head():
    m = Measurement(SHAPE, 0.1, "user", HEAD.rasterize(SHAPE), edge_confidence=1.0)
    v = assess(m, readout(None))
    assert codes(v) == ["no_head_found"] and "no ellipse could be fitted" in v.flags[0]


def test_head_cut_by_the_border():
    v = run(Ellipse(120.0, 270.0, 200.0, 160.0, 0.0).rasterize(SHAPE))
    assert "head_cut_by_border" in codes(v)
    assert "runs along the image border" in v.flags[codes(v).index("head_cut_by_border")]
    assert v.status == "review"


def test_ellipse_reaching_outside_the_image_counts_as_cut():
    # mask well inside but the ellipse sticks out (e.g. a fit extrapolated across a shadow)
    m = measured(HEAD.rasterize(SHAPE))
    moved = replace(m.ellipse, center_x_px=700.0)
    v = judge(replace(m, ellipse=moved, ellipse_outside_px=ellipse_outside_px(moved, SHAPE)))
    assert "head_cut_by_border" in codes(v)
    assert "reaches 77 px beyond" in v.flags[codes(v).index("head_cut_by_border")]
    assert v.status == "review"


def test_grazing_the_border_is_not_a_cut():
    # touches the left border over about 21 px only (0.5 px of the ellipse lies beyond column 0)
    m = measured(Ellipse(179.5, 270.0, 180.0, 145.0, 0.0).rasterize(SHAPE))
    assert 0 < m.border_contact_px < 30
    assert "head_cut_by_border" not in codes(judge(m))


def test_two_overlapping_ellipses_are_not_a_head():
    blob = np.maximum(Ellipse(330, 270, 130, 95, 0).rasterize(SHAPE), Ellipse(470, 300, 110, 85, 60).rasterize(SHAPE))
    v = run(blob)
    assert "ellipse_fit_residual_high" in codes(v)
    assert v.status == "review"


def test_star_is_not_a_head():
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    ang = np.arctan2(yy - 270, xx - 400)
    radius = 150 + 45 * np.cos(5 * ang)
    star = (np.hypot(yy - 270, xx - 400) <= radius).astype(np.uint8)
    assert "ellipse_fit_residual_high" in codes(run(star))


def test_tiny_mask_is_implausible():
    v = run(Ellipse(400, 270, 20, 16, 0).rasterize(SHAPE))
    assert "implausible_mask" in codes(v)
    assert "% of the image" in v.flags[codes(v).index("implausible_mask")]


def test_thin_mask_is_implausible():
    v = run(Ellipse(400, 270, 200, 90, 0).rasterize(SHAPE))
    assert "implausible_mask" in codes(v)
    assert "axis ratio" in " ".join(v.flags)


def test_missing_pixel_size():
    v = run(HEAD.rasterize(SHAPE), pixel_mm=None)
    assert codes(v) == ["pixel_size_missing"]
    assert v.status == "review"


def test_implausible_pixel_size():
    v = run(HEAD.rasterize(SHAPE), pixel_mm=2.5)
    assert "pixel_size_implausible" in codes(v)
    assert "source: user" in v.flags[codes(v).index("pixel_size_implausible")]
    assert "hc_out_of_range" in codes(v)  # 2.5 mm pixels make a 2.6 m head


def test_hc_out_of_range():
    v = run(Ellipse(400, 270, 60, 48, 0).rasterize(SHAPE), pixel_mm=0.05)  # HC about 17 mm
    assert "hc_out_of_range" in codes(v)


def test_crops_disagree():
    m = replace(measured(HEAD.rasterize(SHAPE)), crop_hc_px=(1000.0, 1100.0, 1010.0, 1005.0))
    v = judge(m)
    assert codes(v) == ["crops_disagree"]
    assert "spread 9.9 %" in v.flags[0]
    assert v.status == "review"


@pytest.mark.parametrize("crops", [(), (1000.0,), (1000.0, 1020.0), (1000.0, float("nan"))])
def test_crops_agree_or_too_few(crops):
    v = judge(replace(measured(HEAD.rasterize(SHAPE)), crop_hc_px=crops))
    assert "crops_disagree" not in codes(v)
    assert v.status == "ok"


@pytest.mark.parametrize(("inside", "outside", "expected_codes"), [
    # |2p-1| = 0.1: below measure's 0.2 the mask is discarded (no head), kept when asked to
    (0.55, 0.45, ["no_head_found"]),
    (0.65, 0.35, ["low_confidence"]),  # 0.3: kept by measure, below quality's 0.40
    (0.75, 0.25, []),  # 0.5
])
def test_low_confidence_probability_map(inside, outside, expected_codes):
    mask = HEAD.rasterize(SHAPE)
    prob = np.where(mask > 0, inside, outside)
    v = run(mask, probability=prob)
    assert codes(v) == expected_codes


def test_low_confidence_of_a_kept_soft_mask():
    mask = HEAD.rasterize(SHAPE)
    prob = np.where(mask > 0, 0.55, 0.45)
    m = measured(mask, prob, no_head_edge_confidence=0.0)
    assert m.edge_confidence == pytest.approx(0.1, abs=1e-6)
    v = judge(m)
    assert codes(v) == ["low_confidence"]
    assert "0.10 < 0.4" in v.flags[0]


def test_quality_reads_the_edge_confidence_and_does_not_recompute_it():
    # a perfectly sharp mask, but the measurement says its edge was uncertain
    m = replace(measured(HEAD.rasterize(SHAPE)), edge_confidence=0.1)
    assert codes(judge(m)) == ["low_confidence"]
    # and the other way round: no edge confidence recorded, nothing to judge
    assert judge(replace(m, edge_confidence=None)).status == "ok"


def test_informative_flags_keep_status_ok_but_unknown_flags_do_not():
    m = measured(Ellipse(400, 270, 200, 140, 30).rasterize(SHAPE))  # CI 70: BPD unreliable, HC fine
    v = judge(m)
    assert codes(v) == ["cephalic_index_out_of_range"]
    assert v.status == "ok"
    v2 = judge(m, notes=("something odd",))
    assert v2.status == "review"
    assert codes(v2) == ["source_note", "cephalic_index_out_of_range"]
    assert v2.flags[0] == "source_note: something odd"
    v3 = judge(m, input_flags=("made_up_flag: x",))
    assert v3.status == "review"


@pytest.mark.parametrize(("input_flags", "status"), [
    (("pixel_size_overridden: 0.12 mm given",), "ok"),
    (("pixel_size_not_in_csv: x.png",), "ok"),
    (("sr_not_written: no study",), "ok"),
    (("something_else: x",), "review"),
])
def test_input_flags_count_towards_the_status(input_flags, status):
    v = judge(measured(HEAD.rasterize(SHAPE)), input_flags=input_flags)
    assert v.status == status
    assert v.flags[: len(input_flags)] == input_flags


def test_repeated_flags_are_kept_once():
    m = measured(Ellipse(400, 270, 200, 140, 30).rasterize(SHAPE))
    rd = readout(m.hc_mm, m.bpd_mm, m.ofd_mm)
    v = assess(m, rd, input_flags=rd.flags)
    assert codes(v).count("cephalic_index_out_of_range") == 1
    assert v.status == "ok"


def test_thresholds_are_configurable_and_returned():
    m = replace(measured(HEAD.rasterize(SHAPE)), crop_hc_px=(1000.0, 1100.0))
    default = judge(m)
    assert default.status == "review" and codes(default) == ["crops_disagree"]
    assert default.thresholds == QualityThresholds()
    loose = QualityThresholds(max_crop_spread=0.2)
    v = judge(m, thresholds=loose)
    assert v.status == "ok" and v.flags == ()
    assert v.thresholds is loose


@pytest.mark.parametrize(("thresholds", "code"), [
    (QualityThresholds(), None),
    (QualityThresholds(min_edge_confidence=0.45), None),
    (QualityThresholds(min_edge_confidence=0.9), "low_confidence"),
    (QualityThresholds(max_hc_band_mm=2.0), "hc_uncertain"),
    (QualityThresholds(hc_range_mm=(40.0, 100.0)), "hc_out_of_range"),
    (QualityThresholds(pixel_size_range_mm=(0.2, 1.0)), "pixel_size_implausible"),
    (QualityThresholds(max_area_frac=0.1), "implausible_mask"),
])
def test_each_threshold_is_used(thresholds, code):
    m = replace(measured(HEAD.rasterize(SHAPE)), edge_confidence=0.5, hc_band_px=3.0 / 0.12)
    v = judge(m, thresholds=thresholds)
    assert codes(v) == ([] if code is None else [code])
    assert v.thresholds is thresholds


def test_assess_never_mutates_its_inputs():
    m = replace(measured(HEAD.rasterize(SHAPE)), crop_hc_px=(1000.0, 1100.0), hc_band_px=100.0)
    rd = readout(m.hc_mm, m.bpd_mm, m.ofd_mm, 20.0)
    mask_before = m.head_mask.copy()
    m_before, rd_before = copy.deepcopy(m), copy.deepcopy(rd)
    notes, input_flags = ("odd",), ("pixel_size_overridden: x",)
    v = assess(m, rd, notes=notes, input_flags=input_flags)
    assert v.status == "review"
    assert m == m_before and rd == rd_before
    assert np.array_equal(m.head_mask, mask_before)
    assert notes == ("odd",) and input_flags == ("pixel_size_overridden: x",)
    assert isinstance(v.flags, tuple)
    for value in (m, rd, v):
        with pytest.raises(FrozenInstanceError):
            value.flags = ()  # type: ignore[misc]
    # judging again gives the same verdict
    assert assess(m, rd, notes=notes, input_flags=input_flags) == v


def test_readout_flags_are_kept_in_the_verdict():
    m = measured(HEAD.rasterize(SHAPE))
    rd = Readout(flags=("hc_centile_out_of_range: GA 42 weeks",))
    v = assess(m, rd)
    assert v.flags == rd.flags and v.status == "ok"


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


@pytest.mark.parametrize(("band_mm", "status"),
                         [(12.5, "review"), (8.1, "review"), (7.9, "ok"), (3.0, "ok"), (None, "ok")])
def test_wide_hc_band_sends_to_review(band_mm, status):
    m = replace(measured(HEAD.rasterize(SHAPE)), hc_band_px=None if band_mm is None else band_mm / 0.12)
    v = judge(m)
    assert ("hc_uncertain" in codes(v)) is (status == "review")
    assert v.status == status


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
