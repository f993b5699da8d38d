"""Split-conformal intervals: nominal coverage on synthetic residuals, the quantile, the file."""

import math

import numpy as np
import pytest

from fetalhc import conformal
from fetalhc.conformal import calibrate, conformal_quantile, fit_scale, interval_px


def _draws(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Heteroscedastic residuals: the SD grows with the signal (pixels)."""
    signal = rng.uniform(2.0, 40.0, n)
    hc = rng.uniform(400.0, 1600.0, n)
    ref = hc + rng.standard_t(5, n) * (3.0 + 0.4 * signal)
    return ref, hc, signal


@pytest.mark.parametrize("alpha", [0.1, 0.2])
def test_calibrated_interval_reaches_its_nominal_coverage_on_new_draws(alpha):
    rng = np.random.default_rng(1)
    cal = calibrate(*_draws(rng, 2000), alpha=alpha)
    ref, hc, sig = _draws(rng, 20000)
    lo, hi = np.array([interval_px(h, s, cal) for h, s in zip(hc, sig, strict=True)]).T
    cover = float(((lo <= ref) & (ref <= hi)).mean())
    assert abs(cover - (1 - alpha)) <= 0.01, cover
    # the scale follows the signal: intervals are wider where the signal is larger
    assert cal.b > 0 and (hi - lo)[sig > 30].mean() > 2 * (hi - lo)[sig < 10].mean()


def test_scaled_interval_is_narrower_than_a_constant_one_at_equal_coverage():
    rng = np.random.default_rng(2)
    ref, hc, sig = _draws(rng, 2000)
    scaled, const = calibrate(ref, hc, sig), calibrate(ref, hc, sig, scale=(1.0, 0.0))
    t_ref, t_hc, t_sig = _draws(rng, 20000)
    w_scaled = np.median([2 * scaled.q * scaled.sigma_px(s) for s in t_sig])
    assert w_scaled < 2 * const.q * const.sigma_px(0.0)


def test_conformal_quantile_is_the_finite_sample_order_statistic():
    s = np.arange(1, 20, dtype=float)  # n = 19: ceil(20 * 0.9) = 18th smallest
    assert conformal_quantile(s, 0.1) == 18.0
    assert math.isinf(conformal_quantile(s[:5], 0.1))  # ceil(6 * 0.9) = 6 > 5
    with pytest.raises(ValueError):
        conformal_quantile([], 0.1)


def test_fit_scale_keeps_a_positive_floor_and_a_non_negative_slope():
    a, b = fit_scale([5.0, 4.0, 3.0, 2.0], [1.0, 2.0, 3.0, 4.0])  # falling residuals: no slope
    assert b == 0.0 and a == pytest.approx(3.5)
    a, b = fit_scale([0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 3.0], min_a_px=0.5)
    assert a == 0.5 and b > 0


def test_calibration_file_round_trip_and_clear_error(tmp_path):
    cal = calibrate([10.0, 12.0, 9.0, 11.0] * 10, [10.5] * 40, [1.0] * 40, signal="hc_band_px")
    p = tmp_path / "cal.json"
    conformal.save(cal, p)
    assert conformal.load(p) == cal
    p.write_text("{\"alpha\": 0.1}")
    with pytest.raises(ValueError, match="cal.json"):
        conformal.load(p)


def test_review_limit_keeps_the_share_and_counts_gross_failures():
    from fetalhc.conformal import review_limit

    w = np.arange(1.0, 101.0)  # half-widths 1..100 mm
    assert review_limit(w, np.zeros(100, bool), 0.10) == 90.0  # 91..100 wider: 10 %
    gross = np.zeros(100, bool)
    gross[:5] = True  # five narrow ones already go to review
    assert review_limit(w, gross, 0.10) == 95.0
    assert math.isinf(review_limit(w, np.ones(100, bool), 0.10))


def test_calibrate_rows_gives_interval_fields_with_low_below_high():
    from fetalhc.conformal import calibrate_rows, interval_fields

    rng = np.random.default_rng(3)
    bands = rng.uniform(2, 10, 200)
    rows = [{"hc_ref_mm": 170 + e * b, "hc_mm": 170.0, "pixel_size_mm": 0.15, "hc_band_mm": b, "gross": False}
            for e, b in zip(rng.normal(0, 0.4, 200), bands, strict=True)]
    cal = calibrate_rows(rows, review_share=0.1)
    f = interval_fields(170 / 0.15, 5 / 0.15, 0.15, cal)
    assert f["hc_low_mm"] < 170 < f["hc_high_mm"] and f["hc_low_px"] * 0.15 == pytest.approx(f["hc_low_mm"])
    halves = [(interval_fields(1000, r["hc_band_mm"] / 0.15, 0.15, cal)) for r in rows]
    assert 0.05 <= np.mean([h["wide"] for h in halves]) <= 0.1
