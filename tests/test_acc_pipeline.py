"""Issue 9 in the pipeline: zoom pass, probability outline, interval fields and the review flag."""

import math

import numpy as np
import pytest

from fetalhc import conformal
from fetalhc.ellipse import Ellipse
from fetalhc.image import UltrasoundImage
from fetalhc.phantom import make_phantom
from fetalhc.pipeline import Pipeline, PipelineConfig, load_interval
from fetalhc.results import TABLE_COLUMNS, MeasureResult, assemble
from fetalhc.segment import default_model_path

HEADS = [Ellipse(400.0, 270.0, 250.0, 195.0, 15.0), Ellipse(380.0, 250.0, 120.0, 95.0, 140.0),
         Ellipse(430.0, 290.0, 180.0, 150.0, 60.0)]


@pytest.fixture(scope="module")
def pipe(model_path):
    return Pipeline()


def measured(pipe: Pipeline, img: np.ndarray, pixel_size_mm: float | None = None) -> MeasureResult:
    return assemble(pipe.run(UltrasoundImage(img, pixel_size_mm, "user" if pixel_size_mm else "none")))


def test_shipped_interval_calibration_loads_and_is_sane():
    cal = load_interval(default_model_path())
    assert cal is not None and cal.alpha == pytest.approx(0.1)
    assert cal.a_px > 0 and cal.b >= 0 and 0 < cal.q < math.inf and cal.n_calibration >= 50
    assert 0 < cal.max_half_width_mm < math.inf and "command" in cal.made_by


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
    strict.interval = conformal.IntervalCalibration(0.1, "hc_band_px", 1.0, 1.0, 2.0, max_half_width_mm=0.01)
    r = measured(strict, img, 0.12)
    assert r.status == "review" and any(f.startswith("interval_wide") for f in r.flags)
    assert r.hc_high_mm - r.hc_low_mm == pytest.approx(2 * 2.0 * (1.0 + r.hc_band_px) * 0.12)


def test_zoom_and_outline_change_the_measurement_but_legacy_settings_remain(pipe):
    img, _ = make_phantom(540, 800, HEADS[1], seed=4)
    legacy = pipe.with_config(PipelineConfig(zoom=None, outline="mask", robust_fit=False, interval=False))
    a, b = measured(pipe, img, 0.1), measured(legacy, img, 0.1)
    assert b.hc_low_mm is None and a.hc_low_mm is not None
    assert a.hc_px != b.hc_px and not np.array_equal(a.probability, b.probability)
    with pytest.raises(ValueError):
        PipelineConfig(outline="edges")
