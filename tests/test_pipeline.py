"""The pipeline end to end with the shipped model: one Outcome per image, and the Python API."""

import dataclasses
import math

import numpy as np
import pytest

import fetalhc
from conftest import PHANTOM_TRUTH
from fetalhc.image import UltrasoundImage
from fetalhc.pipeline import Outcome, Pipeline, PipelineConfig, quality_thresholds
from fetalhc.quality import QualityThresholds
from fetalhc.reader import load_image
from fetalhc.results import assemble


@pytest.fixture(scope="module")
def pipe(model_path):
    return Pipeline(model_path)


def test_run_returns_one_outcome_down_the_layers(pipe, phantom_png):
    o = pipe.run(load_image(phantom_png, pixel_size_mm=0.15))
    assert isinstance(o, Outcome)
    m, seg = o.measurement, o.segmentation
    assert o.image.pixels.shape == seg.probability.shape == m.head_mask.shape == (540, 800)
    assert len(seg.boxes) == len(seg.crop_probs) == 1  # the default's whole-image pass (+ zoom views)
    assert m.ellipse is not None and m.hc_px == pytest.approx(m.ellipse.perimeter_px)
    assert m.hc_mm == pytest.approx(m.hc_px * 0.15)
    assert o.readout.ofd_mm == pytest.approx(2 * m.ellipse.semi_axis_a_px * 0.15)
    assert o.verdict.thresholds == quality_thresholds(pipe.config.quality, pipe.interval)
    assert o.verdict.thresholds.max_interval_half_width_mm < math.inf  # the shipped calibration's limit
    # every value is frozen: no stage writes into another's record
    for value in (o, m, seg, o.readout, o.verdict):
        with pytest.raises(dataclasses.FrozenInstanceError):
            value.status = "x"  # type: ignore[misc]


def test_patent_length_uses_the_cross_element_by_default(pipe, phantom_png):
    """The patent's boundary by default: the 4-neighbour cross reads ~0.90 of the ellipse, a 3x3
    square ~1.27 (so a pipeline that switched elements fails here)."""
    img = load_image(phantom_png, pixel_size_mm=0.15)
    m = pipe.run(img).measurement
    assert 0.85 < m.patent_pixel_count_hc_px / m.hc_px < 0.95
    sq = pipe.with_config(PipelineConfig(element="square")).run(img).measurement
    assert 1.2 < sq.patent_pixel_count_hc_px / sq.hc_px < 1.35


def test_quality_thresholds_come_from_the_config_and_travel_with_the_result(pipe, phantom_png):
    img = load_image(phantom_png, pixel_size_mm=0.15)
    strict = QualityThresholds(max_hc_band_mm=0.01)
    o = pipe.with_config(PipelineConfig(quality=strict, interval=False)).run(img)
    assert o.verdict.status == "review" and any(f.startswith("hc_uncertain") for f in o.verdict.flags)
    r = assemble(o)
    assert r.thresholds is strict
    # with the interval calibration, its limit on the interval's half-width replaces the band limit
    o = pipe.with_config(PipelineConfig(quality=strict)).run(img)
    assert not any(f.startswith("hc_uncertain") for f in o.verdict.flags)
    assert pipe.run(img).verdict.status == "ok"


def test_deidentified_image_is_what_the_outcome_carries(pipe):
    img = np.full((540, 800), 20, np.uint8)
    img[20:40, 30:200] = 255  # a bright text-like bar in the corner
    o = pipe.run(UltrasoundImage(img, 0.1))
    assert o.image.pixels[30, 100] != 255
    off = pipe.with_config(PipelineConfig(deidentify=False)).run(UltrasoundImage(img, 0.1))
    assert off.image.pixels[30, 100] == 255


def test_measure_api_returns_one_result_with_units(model_path, phantom_png):
    r = fetalhc.measure(phantom_png, pixel_size_mm=0.15)
    assert isinstance(r, fetalhc.MeasureResult)
    assert r.error is None and r.pixel_size_source == "user"
    assert r.hc_px == pytest.approx(PHANTOM_TRUTH.perimeter_px, rel=0.05)
    assert r.hc_mm == pytest.approx(r.hc_px * 0.15)
    assert r.patent_pixel_count_hc_mm == pytest.approx(r.patent_pixel_count_hc_px * 0.15)
    assert r.semi_axis_a_px == r.ellipse.semi_axis_a_px
    assert r.mask is not None and r.mask.shape == (540, 800)
    # default: one whole-image pass finds the head, the zoom pass and its flip measure it
    assert r.crop_mode == "full@0.5+zoomflip" and len(r.crop_hc_px) == 1
    patent = fetalhc.measure(phantom_png, pixel_size_mm=0.15, config=PipelineConfig(crop_mode="corners"))
    assert patent.crop_mode == "corners+zoom" and len(patent.crop_hc_px) == 4
    assert patent.hc_px == pytest.approx(PHANTOM_TRUTH.perimeter_px, rel=0.05)


@pytest.mark.parametrize(("config", "passes"), [(PipelineConfig(), 3), (PipelineConfig(crop_mode="corners"), 5),
                                               (PipelineConfig(crop_mode="corners", zoom=None), 4)])
def test_network_passes_per_image(model_path, phantom_png, config, passes):
    pipe = Pipeline(model_path, config)
    seen: list[int] = []
    predict = pipe.segmenter.predict
    pipe.segmenter.predict = lambda crops: seen.append(len(crops)) or predict(crops)  # type: ignore[method-assign]
    pipe.run(load_image(phantom_png, pixel_size_mm=0.15))
    assert sum(seen) == passes


def test_each_crop_mode_runs_its_own_zoom_pass_unless_told():
    from fetalhc.segmentation import ZOOM_FOR_CROP_MODE, ZoomSettings

    assert PipelineConfig().crop_mode == "full"
    assert PipelineConfig().zoom_settings == ZOOM_FOR_CROP_MODE["full"] == ZoomSettings(
        weight=1.0, flip=True, locate_scale=0.5, refine_iou=0.85)
    assert PipelineConfig(crop_mode="corners").zoom_settings == ZoomSettings()
    # "auto" follows the crop mode through replace(); explicit settings and None stay as given
    assert dataclasses.replace(PipelineConfig(), crop_mode="corners").crop_label == "corners+zoom"
    assert PipelineConfig(crop_mode="corners", flips=True).crop_label == "corners+flips+zoom"
    assert PipelineConfig(zoom=ZoomSettings()).crop_label == "full+zoom"
    assert PipelineConfig(zoom=None).crop_label == "full" and PipelineConfig(zoom=None).zoom_settings is None
    with pytest.raises(ValueError, match="zoom"):
        PipelineConfig(zoom="on")


def test_measure_signature_is_real():
    import inspect

    params = inspect.signature(fetalhc.measure).parameters
    assert list(params)[:2] == ["image", "pixel_size_mm"]
    assert {"ga_weeks", "frame", "config", "model_path"} <= set(params)


def test_no_pixel_size_measures_in_pixels_and_says_so(model_path, phantom_png):
    r = fetalhc.measure(phantom_png)
    assert r.hc_mm is None and r.patent_pixel_count_hc_mm is None and r.hc_px is not None
    assert r.status == "review"
    assert any(f.startswith("pixel_size_missing") for f in r.flags)


def test_blank_image_finds_no_head(model_path):
    r = fetalhc.measure(np.zeros((540, 800), np.uint8), pixel_size_mm=0.1)
    assert r.hc_mm is None and r.status == "review"
    assert any(f.startswith("no_head_found") for f in r.flags)


@pytest.mark.parametrize(("mode", "label"), [("corners", "corners+flips+zoom"), ("full", "full+flips@0.5+zoomflip"),
                                             ("corners+full", "corners+full+flips+zoom")])
def test_crop_modes_agree_on_a_clear_phantom(model_path, phantom_png, mode, label):
    a = fetalhc.measure(phantom_png, 0.15)
    b = fetalhc.measure(phantom_png, 0.15, config=PipelineConfig(crop_mode=mode, flips=True))
    assert b.hc_mm == pytest.approx(a.hc_mm, rel=0.03)
    assert b.crop_mode == label


@pytest.mark.parametrize(("kw", "message"), [({"q": 0.0}, "q must lie"), ({"crop_mode": "six"}, "six"),
                                             ({"band_thresholds": (0.8, 0.2)}, "band thresholds")])
def test_pipeline_config_refuses_bad_settings(kw, message):
    with pytest.raises(ValueError, match=message):
        PipelineConfig(**kw)
