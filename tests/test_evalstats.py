"""Evaluation statistics: patient bootstrap, size bins, interval coverage, review trade-off."""

import math

import numpy as np
import pytest

from fetalhc import evalstats
from fetalhc.evalstats import (
    adf_with_ci,
    bootstrap_ci,
    errors_by_size,
    halve_by_patient,
    interval_stats,
    review_tradeoff,
)


def _row(p, ref, hc, px=0.1, status="ok", lo=None, hi=None):
    return {"patient": p, "hc_ref_mm": ref, "hc_mm": hc, "pixel_size_mm": px, "status": status,
            "hc_low_mm": lo, "hc_high_mm": hi}


def test_halves_share_no_patient_and_are_reproducible():
    files = [f"{i:03d}_HC.png" for i in range(20)] + [f"{i:03d}_2HC.png" for i in range(0, 20, 3)]
    a, b = halve_by_patient(files, 9)
    assert not {f.split("_")[0] for f in a} & {f.split("_")[0] for f in b}
    assert sorted(a + b) == sorted(files) and (a, b) == halve_by_patient(files, 9)


def test_bootstrap_ci_holds_the_mean_and_moves_patients_as_wholes():
    rng = np.random.default_rng(0)
    v = rng.normal(2.0, 1.0, 400)
    lo, hi = bootstrap_ci(v, [str(i) for i in range(400)])
    assert lo < v.mean() < hi and 0.1 < hi - lo < 0.3
    # the same values in 4 patients of 100 identical images: a far wider interval
    grouped = np.repeat([0.0, 1.0, 3.0, 4.0], 100)
    lo2, hi2 = bootstrap_ci(grouped, np.repeat(list("abcd"), 100))
    assert hi2 - lo2 > 1.5


def test_adf_bins_interval_and_review():
    rows = [_row("1", 90.0, 92.0, 0.1, lo=88.0, hi=95.0), _row("2", 160.0, 159.0, 0.2, lo=158.0, hi=159.5),
            _row("3", 260.0, 250.0, 0.2, "review", 240.0, 270.0), _row("4", 170.0, None, 0.2, "review")]
    assert adf_with_ci(rows)["adf_mm"] == pytest.approx(13 / 3)
    by = errors_by_size(rows)
    assert by["<100"]["d_mm"] == -2.0 and by["<100"]["d_px"] == pytest.approx(-20.0)
    assert by[">=250"]["adf_px"] == pytest.approx(50.0) and "100-150" not in by
    iv = interval_stats(rows)
    assert iv["coverage"] == pytest.approx(2 / 3) and iv["median_width_mm"] == pytest.approx(7.0)
    rv = review_tradeoff(rows)
    assert rv["share_review"] == 0.5 and rv["adf_ok_mm"] == pytest.approx(1.5)
    assert rv["errors_over_4mm"] == 1 and rv["errors_over_4mm_caught"] == 1


def _noisy_patients(n_patients: int, seed: int, slope: float = 1.0) -> list[dict]:
    """Synthetic readings: what each image shows (t), a reference with independent noise of SD 2 mm,
    and a measurement ``slope * t + 5`` with a per-patient error (SD 1) and a per-image one (SD 1.5)."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        head = rng.uniform(50, 300)
        shared = rng.normal(0, 1.0)
        for _ in range(int(rng.integers(1, 4))):
            t = head + rng.normal(0, 6.0)  # images of one patient show somewhat different planes
            rows.append({"patient": str(p), "hc_ref_mm": t + rng.normal(0, 2.0),
                         "hc_mm": slope * t + 5.0 + shared + rng.normal(0, 1.5), "pixel_size_mm": 0.1})
    return rows


@pytest.mark.parametrize("slope", [1.0, 0.95])
def test_reference_noise_recovers_the_references_own_scatter(slope):
    res = evalstats.reference_noise(_noisy_patients(3000, seed=1, slope=slope), n_boot=200)
    assert res["n_pairs"] > 2000
    assert res["slope"] == pytest.approx(slope, abs=0.01)
    assert res["var_ref_noise_mm2"] == pytest.approx(4.0, abs=0.6)  # 2 mm SD
    assert res["ci95_var_ref_noise_mm2"][0] < 4.0 < res["ci95_var_ref_noise_mm2"][1]
    assert res["var_auto_indep_mm2"] == pytest.approx(2.25, abs=0.6)  # the per-patient part is not counted
    assert res["adf_floor_normal_mm"] == pytest.approx(math.sqrt(2 / math.pi) * res["sd_ref_noise_mm"])
    assert res["ci95_sd_ref_noise_mm"][0] < 2.0 < res["ci95_sd_ref_noise_mm"][1]
    assert abs(res["largest_pair_share_of_var_ref_noise"]) < 0.05  # thousands of pairs: none dominates
    assert res["var_ref_noise_without_2_largest_pairs_mm2"] == pytest.approx(res["var_ref_noise_mm2"], abs=0.2)
    assert res["mse_paired_mm2"] == pytest.approx(4.0 + 1.0 + 2.25 + 25.0, rel=0.1)  # noise, both errors, offset 5


def test_reference_noise_needs_patients_with_two_images():
    rows = [{"patient": str(i), "hc_ref_mm": 100.0 + i, "hc_mm": 101.0 + i} for i in range(10)]
    with pytest.raises(ValueError, match="pairs"):
        evalstats.reference_noise(rows)
