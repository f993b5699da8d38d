"""Issue 9 in the pipeline: zoom pass, probability outline, interval fields and the review flag."""

import math

import numpy as np
import pytest

from fetalhc import conformal
from fetalhc.ellipse import Ellipse
from fetalhc.image import UltrasoundImage
from fetalhc.phantom import make_phantom
from fetalhc.pipeline import Pipeline, PipelineConfig, interval_for, load_intervals
from fetalhc.results import TABLE_COLUMNS, MeasureResult, assemble
from fetalhc.segment import default_model_path
from fetalhc.segmentation import ZoomSettings

HEADS = [Ellipse(400.0, 270.0, 250.0, 195.0, 15.0), Ellipse(380.0, 250.0, 120.0, 95.0, 140.0),
         Ellipse(430.0, 290.0, 180.0, 150.0, 60.0)]


@pytest.fixture(scope="module")
def pipe(model_path):
    return Pipeline()


def measured(pipe: Pipeline, img: np.ndarray, pixel_size_mm: float | None = None) -> MeasureResult:
    return assemble(pipe.run(UltrasoundImage(img, pixel_size_mm, "user" if pixel_size_mm else "none")))


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_shipped_interval_calibrations_load_and_are_sane(precision):
    cals = load_intervals(default_model_path(precision))
    # the default settings and the patent's corners each have their own calibration
    assert {PipelineConfig().crop_label, PipelineConfig(crop_mode="corners").crop_label} <= set(cals)
    for settings, cal in cals.items():
        assert cal.settings == settings and cal.alpha == pytest.approx(0.1)
        assert cal.a_px > 0 and cal.b >= 0 and 0 < cal.q < math.inf and cal.n_calibration >= 50
        assert 0 < cal.max_half_width_mm < math.inf and f"--settings {settings}" in cal.made_by["command"]


def _cal(settings: str, q: float = 2.0) -> conformal.IntervalCalibration:
    return conformal.IntervalCalibration(0.1, "hc_band_px", 1.0, 0.5, q, settings=settings)


def test_a_calibration_applies_only_to_the_settings_it_was_made_for(tmp_path):
    model = tmp_path / "m.onnx"
    conformal.save(_cal("full+zoomflip", 2.0), tmp_path / "m.interval.json")
    conformal.save(_cal("corners+zoom", 3.0), tmp_path / "m.corners+zoom.interval.json")
    conformal.save(_cal("full+zoomflip", 9.0), tmp_path / "m_int8.interval.json")  # another model's
    cals = load_intervals(model)
    assert sorted(cals) == ["corners+zoom", "full+zoomflip"] and cals["full+zoomflip"].q == 2.0
    assert interval_for(cals, "corners+zoom").q == 3.0  # type: ignore[union-attr]
    assert interval_for(cals, "corners+flips+zoom") is None  # nobody calibrated it: no interval
    assert interval_for({"": _cal("", 4.0)}, "corners+flips+zoom").q == 4.0  # type: ignore[union-attr]
    conformal.save(_cal("full+zoomflip", 5.0), tmp_path / "m.full+zoomflip.interval.json")  # as m.interval.json
    with pytest.raises(ValueError, match="second interval calibration"):
        load_intervals(model)


def test_calibration_files_beside_other_models_or_mislabelled_ones(tmp_path):
    conformal.save(_cal("full+zoomflip"), tmp_path / "m.v2.full+zoomflip.interval.json")  # model m.v2.onnx's
    conformal.save(_cal("corners+zoom"), tmp_path / "m.v2.interval.json")  # m.v2.onnx's, pre-0.3 style
    conformal.save(_cal("", 4.0), tmp_path / "m.interval.json")  # pre-0.3: no settings stated
    assert list(load_intervals(tmp_path / "m.onnx")) == [""]
    assert sorted(load_intervals(tmp_path / "m.v2.onnx")) == ["corners+zoom", "full+zoomflip"]
    conformal.save(_cal("", 1.0), tmp_path / "odd[1].onnx.interval.json")  # glob characters in the name
    conformal.save(_cal("", 1.0), tmp_path / "odd[1].interval.json")
    assert list(load_intervals(tmp_path / "odd[1].onnx")) == [""]
    conformal.save(_cal("corners+zoom"), tmp_path / "m.full+zoomflip.interval.json")
    with pytest.raises(ValueError, match="file name says settings 'full\\+zoomflip'"):
        load_intervals(tmp_path / "m.onnx")


def test_custom_settings_get_no_calibration():
    assert PipelineConfig().interval_key == "full@0.5+zoomflip"
    assert PipelineConfig(crop_mode="corners").interval_key == "corners+zoom"
    assert PipelineConfig(crop_mode="full", zoom=ZoomSettings(weight=1.0, flip=True)).interval_key == "full+zoomflip"
    for custom in (PipelineConfig(crop_mode="corners", q=0.5), PipelineConfig(zoom=ZoomSettings(weight=0.5)),
                   PipelineConfig(threshold=0.4), PipelineConfig(outline="mask")):
        assert custom.interval_key is None
    assert interval_for({"full+zoomflip": _cal("full+zoomflip")}, None) is None


def test_uncalibrated_settings_give_no_interval(pipe):
    img, _ = make_phantom(540, 800, HEADS[0], seed=0)
    r = measured(pipe.with_config(PipelineConfig(crop_mode="corners", flips=True)), img, 0.12)
    assert r.hc_mm is not None and r.hc_low_mm is None and r.hc_high_mm is None


@pytest.mark.parametrize("seed,head", list(enumerate(HEADS)))
def test_interval_fields_present_and_ordered_on_phantoms(pipe, seed, head):
    img, _ = make_phantom(540, 800, head, seed=seed)
    r = measured(pipe, img, 0.12)
    assert r.hc_px == pytest.approx(head.perimeter_px, rel=0.05)
    assert r.hc_low_mm is not None and r.hc_high_mm is not None
    assert r.hc_low_mm <= r.hc_mm <= r.hc_high_mm and r.hc_low_px <= r.hc_px <= r.hc_high_px
    assert r.hc_low_px * 0.12 == pytest.approx(r.hc_low_mm)
    row = r.row()
    assert list(row)[-4:] == ["hc_low_mm", "hc_high_mm", "hc_low_px", "hc_high_px"] == list(TABLE_COLUMNS[-4:])
    # without a pixel size the pixel twins remain
    r2 = measured(pipe, img)
    assert r2.hc_low_mm is None and r2.hc_low_px is not None and r2.hc_low_px <= r2.hc_px <= r2.hc_high_px


def test_a_too_wide_interval_sends_the_reading_to_review(pipe):
    img, _ = make_phantom(540, 800, HEADS[0], seed=0)
    assert pipe.interval is not None
    strict = pipe.with_config(pipe.config)
    strict.intervals = {strict.config.crop_label: conformal.IntervalCalibration(
        0.1, "hc_band_px", 1.0, 1.0, 2.0, max_half_width_mm=0.01, settings=strict.config.crop_label)}
    r = measured(strict, img, 0.12)
    assert r.status == "review" and any(f.startswith("interval_wide") for f in r.flags)
    assert r.hc_high_mm - r.hc_low_mm == pytest.approx(2 * 2.0 * (1.0 + r.hc_band_px) * 0.12)


def test_zoom_and_outline_change_the_measurement_but_legacy_settings_remain(pipe):
    img, _ = make_phantom(540, 800, HEADS[1], seed=4)
    legacy = pipe.with_config(PipelineConfig(crop_mode="corners", zoom=None, outline="mask", robust_fit=False,
                                             interval=False))
    a, b = measured(pipe, img, 0.1), measured(legacy, img, 0.1)
    assert b.hc_low_mm is None and a.hc_low_mm is not None
    assert a.hc_px != b.hc_px and not np.array_equal(a.probability, b.probability)
    with pytest.raises(ValueError):
        PipelineConfig(outline="edges")
