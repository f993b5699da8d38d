"""Clinical read-out: formulas against published values, ranges, flags and the GA check."""

import math
from dataclasses import FrozenInstanceError

import pytest

from fetalhc import clinical
from fetalhc.clinical import (
    HADLOCK_HC_RANGE_MM,
    INTERGROWTH_DATING_HC_RANGE_MM,
    hadlock_ga_weeks,
    hc_z_centile,
    intergrowth_ga_weeks,
    intergrowth_hc_mean_sd,
    readout,
    validate_ga_weeks,
    weeks_days,
)
from fetalhc.ellipse import ramanujan_perimeter

# INTERGROWTH-21st fetal HC standard, z-score table (mm), columns GA weeks, -3SD, -2SD, -1SD, 0, +1SD, +2SD, +3SD.
# Source: INTERGROWTH-21st "grow_fetal-zs_hc_table" (intergrowth21.com; standard of Papageorghiou et al.,
# Lancet 2014;384:869-79), as transcribed in github.com/Yannngn/intergrowth-fetal-growth-csv.
IG_HC_ZS_TABLE = """
14.0,81.1,86.7,92.3,97.9,103.5,109.0,114.6
15.0,92.6,98.5,104.4,110.4,116.3,122.2,128.2
16.0,104.1,110.4,116.6,122.9,129.2,135.5,141.7
17.0,115.7,122.3,128.8,135.4,142.0,148.6,155.2
18.0,127.2,134.1,141.0,147.9,154.8,161.7,168.6
19.0,138.7,145.9,153.1,160.3,167.4,174.6,181.8
20.0,150.2,157.6,165.0,172.5,179.9,187.4,194.8
21.0,161.5,169.1,176.8,184.5,192.2,199.9,207.6
22.0,172.6,180.5,188.4,196.3,204.2,212.1,220.0
23.0,183.5,191.6,199.7,207.8,215.9,224.1,232.2
24.0,194.2,202.5,210.8,219.1,227.4,235.7,244.0
25.0,204.6,213.0,221.5,230.0,238.4,246.9,255.4
26.0,214.6,223.2,231.9,240.5,249.1,257.8,266.4
27.0,224.3,233.1,241.9,250.6,259.4,268.2,277.0
28.0,233.5,242.5,251.4,260.4,269.3,278.2,287.2
29.0,242.3,251.4,260.5,269.6,278.7,287.8,296.9
30.0,250.6,259.9,269.1,278.4,287.6,296.9,306.1
31.0,258.4,267.8,277.2,286.6,296.1,305.5,314.9
32.0,265.5,275.1,284.7,294.4,304.0,313.6,323.2
33.0,272.0,281.8,291.7,301.5,311.4,321.2,331.1
34.0,277.8,287.9,298.0,308.1,318.2,328.3,338.4
35.0,282.8,293.3,303.7,314.1,324.5,334.9,345.3
36.0,287.1,297.9,308.6,319.4,330.2,340.9,351.7
37.0,290.5,301.7,312.9,324.1,335.3,346.4,357.6
38.0,293.0,304.7,316.4,328.1,339.7,351.4,363.1
39.0,294.6,306.9,319.1,331.4,343.6,355.9,368.1
40.0,295.2,308.1,321.0,333.9,346.9,359.8,372.7
"""
IG_HC_TABLE = {
    int(float(line.split(",")[0])): tuple(float(v) for v in line.split(",")[1:])
    for line in IG_HC_ZS_TABLE.split()
}

# Hadlock et al., AJR 1982;138:649 (HC-for-menstrual-age table, mean HC in cm at each week; reproduced at
# medicalalgorithms.com/head-circumference): week -> HC cm.
HADLOCK_1982_MEAN_HC_CM = {15: 11.0, 16: 12.4, 18: 15.1, 20: 17.7, 22: 20.1, 24: 22.4}


@pytest.mark.parametrize(("ga", "row"), IG_HC_TABLE.items())
def test_intergrowth_standard_matches_the_published_table(ga, row):
    mean, sd = intergrowth_hc_mean_sd(ga)
    # The table is rounded to 0.1 mm, so values should agree within 0.05 mm; 4 of the 189 entries are off by up
    # to 0.056 mm (e.g. 35 weeks -3 SD: 282.856 printed as 282.8), presumably rounded from rounded mean/SD.
    for z, table_mm in zip(range(-3, 4), row, strict=True):
        assert mean + z * sd == pytest.approx(table_mm, abs=0.06)


def test_fiftieth_centile_at_20_weeks_is_172_5_mm():
    mean, _ = intergrowth_hc_mean_sd(20)
    assert mean == pytest.approx(172.5, abs=0.05)
    z, centile = hc_z_centile(172.5, 20)
    assert z == pytest.approx(0.0, abs=0.01)
    assert centile == pytest.approx(50.0, abs=0.5)


@pytest.mark.parametrize(("ga", "z_table", "idx"), [(20, -2.0, 1), (30, 2.0, 5), (40, 3.0, 6), (14, -3.0, 0)])
def test_z_score_of_published_sd_lines(ga, z_table, idx):
    # Table values are rounded to 0.1 mm; at SD >= 2.8 mm that moves z by at most 0.05/2.8 = 0.018.
    z, centile = hc_z_centile(IG_HC_TABLE[ga][idx], ga)
    assert z == pytest.approx(z_table, abs=0.02)
    assert centile == pytest.approx(100 * 0.5 * (1 + math.erf(z_table / math.sqrt(2))), abs=0.2)


@pytest.mark.parametrize(("z", "centile"), [(-1.881, 3.0), (-1.282, 10.0), (1.282, 90.0), (1.881, 97.0)])
def test_centile_cut_offs(z, centile):
    mean, sd = intergrowth_hc_mean_sd(27.3)
    # The z cut-offs are given to 3 decimals, so the centile is right to about 0.01.
    assert hc_z_centile(mean + z * sd, 27.3)[1] == pytest.approx(centile, abs=0.01)


@pytest.mark.parametrize("ga", [13.9, 40.1, 10, 45])
def test_intergrowth_standard_is_not_extrapolated(ga):
    assert hc_z_centile(200.0, ga) is None
    with pytest.raises(ValueError, match="14-40 weeks"):
        intergrowth_hc_mean_sd(ga)


def test_hadlock_formula_value():
    # Hadlock 1984: GA = 8.96 + 0.540*17.5 + 0.0003*17.5**3 = 20.018 weeks for HC 17.5 cm (exact arithmetic).
    assert hadlock_ga_weeks(175.0) == pytest.approx(20.018, abs=0.001)


@pytest.mark.parametrize(("ga", "hc_cm"), HADLOCK_1982_MEAN_HC_CM.items())
def test_hadlock_1984_agrees_with_hadlock_1982_table(ga, hc_cm):
    # Different cohort and regression direction (age-on-HC vs HC-on-age) diverge towards term; at 15-24 weeks
    # they agree within 0.5 week, well inside Hadlock's own +-2 SD of about 1.2-1.9 weeks.
    assert hadlock_ga_weeks(hc_cm * 10) == pytest.approx(ga, abs=0.5)


def test_hadlock_valid_range():
    lo, hi = HADLOCK_HC_RANGE_MM
    assert lo == pytest.approx(89.4, abs=0.1) and hi == pytest.approx(357.7, abs=0.1)
    assert hadlock_ga_weeks(lo + 0.1) == pytest.approx(14.0, abs=0.02)
    assert hadlock_ga_weeks(hi - 0.1) == pytest.approx(42.0, abs=0.02)
    assert hadlock_ga_weeks(lo - 0.5) is None
    assert hadlock_ga_weeks(hi + 0.5) is None


def test_intergrowth_dating_formula_value():
    # ln(days) = 0.05970*ln(172.5)^2 + 6.409e-9*172.5^3 + 3.3258 = 4.94237 -> 140.10 days = 20.01 weeks.
    assert intergrowth_ga_weeks(172.5) == pytest.approx(140.10 / 7, abs=0.01)


@pytest.mark.parametrize("ga", [14, 16, 20, 24])
def test_intergrowth_dating_is_consistent_with_the_size_standard(ga):
    # Same INTERGROWTH-21st cohort: the median HC at a week dates back to that week. Different regressions,
    # so allow 0.25 week (1.75 days); the largest observed difference is 0.08 week.
    median = {14: 97.9, 16: 122.9, 20: 172.5, 24: 219.1}[ga]
    assert intergrowth_ga_weeks(median) == pytest.approx(ga, abs=0.25)


def test_intergrowth_dating_valid_range():
    lo, hi = INTERGROWTH_DATING_HC_RANGE_MM
    assert lo == pytest.approx(97.7, abs=0.1) and hi == pytest.approx(239.1, abs=0.1)
    assert intergrowth_ga_weeks(lo - 0.5) is None
    assert intergrowth_ga_weeks(hi + 0.5) is None
    assert intergrowth_ga_weeks(300.0) is None


@pytest.mark.parametrize("bad", [0.0, -5.0, float("nan"), float("inf")])
def test_formulas_reject_impossible_hc(bad):
    for fn in (hadlock_ga_weeks, intergrowth_ga_weeks):
        with pytest.raises(ValueError, match="head circumference"):
            fn(bad)


@pytest.mark.parametrize(("value", "expected"), [(20, 20.0), ("31.5", 31.5), (10, 10.0), (45.0, 45.0)])
def test_validate_ga_accepts(value, expected):
    assert validate_ga_weeks(value) == expected


@pytest.mark.parametrize(("value", "match"), [
    ("abc", "not a number"), (None, "not a number"), (True, "not a number"), ([20], "not a number"),
    (9.9, "between 10 and 45"), (45.1, "between 10 and 45"), (float("nan"), "between 10 and 45"),
    (float("inf"), "between 10 and 45"), (-20, "between 10 and 45"),
])
def test_validate_ga_refuses(value, match):
    with pytest.raises(ValueError, match=match):
        validate_ga_weeks(value)


def test_weeks_days():
    assert weeks_days(20.0) == "20+0"
    assert weeks_days(20 + 3 / 7) == "20+3"
    assert weeks_days(20.99) == "20+6"


def head(a_px: float, b_px: float, pixel_mm: float = 0.1) -> tuple[float, float, float]:
    """(HC, BPD, OFD) in mm of an ellipse head with semi-axes ``a_px`` >= ``b_px``, as measure gives them."""
    return ramanujan_perimeter(a_px, b_px) * pixel_mm, 2 * b_px * pixel_mm, 2 * a_px * pixel_mm


def test_readout_fills_every_field():
    hc, bpd, ofd = head(300.0, 240.0)  # OFD 60 mm, BPD 48 mm, HC 170.4 mm
    r = readout(hc, bpd, ofd, ga_weeks=20.0)
    assert r.ofd_mm == pytest.approx(60.0)
    assert r.bpd_mm == pytest.approx(48.0)
    assert r.cephalic_index == pytest.approx(80.0)
    assert r.ga_hadlock_weeks == pytest.approx(hadlock_ga_weeks(hc))
    assert r.ga_intergrowth_weeks == pytest.approx(intergrowth_ga_weeks(hc))
    assert r.ga_weeks == 20.0
    z, c = hc_z_centile(hc, 20.0)
    assert (r.hc_z, r.hc_centile) == (pytest.approx(z), pytest.approx(c))
    assert 0 < r.hc_centile < 100
    assert r.flags == ()


def test_readout_without_ga_leaves_centile_empty():
    r = readout(*head(300.0, 240.0))
    assert r.ga_weeks is None and r.hc_z is None and r.hc_centile is None
    assert r.ga_hadlock_weeks is not None


def test_readout_ga_is_validated_and_converted():
    assert readout(*head(300.0, 240.0), ga_weeks="20.5").ga_weeks == 20.5


@pytest.mark.parametrize(("b", "text"), [(210.0, "CI 70.0 < 74"), (255.0, "CI 85.0 > 83")])
def test_cephalic_index_flag(b, text):
    r = readout(*head(300.0, b))
    assert len(r.flags) == 1
    assert r.flags[0].startswith("cephalic_index_out_of_range: ")
    assert text in r.flags[0] and "HC preferred" in r.flags[0]


@pytest.mark.parametrize(("bpd", "ofd"), [(None, 60.0), (48.0, None), (None, None), (48.0, 0.0)])
def test_no_cephalic_index_without_both_diameters(bpd, ofd):
    r = readout(170.0, bpd, ofd)
    assert r.cephalic_index is None and r.flags == ()
    assert r.ga_hadlock_weeks == pytest.approx(hadlock_ga_weeks(170.0))


def test_out_of_range_formulas_give_no_value_and_say_why():
    r = readout(*head(700.0, 560.0), ga_weeks=42.0)  # HC 397.5 mm: beyond both dating formulas
    assert r.ga_hadlock_weeks is None and r.ga_intergrowth_weeks is None
    assert r.hc_z is None and r.hc_centile is None
    codes = [f.split(":")[0] for f in r.flags]
    assert codes == [clinical.FLAG_HADLOCK_RANGE, clinical.FLAG_INTERGROWTH_RANGE, clinical.FLAG_CENTILE_RANGE]
    assert all(";" not in f for f in r.flags)
    assert set(codes) <= clinical.INFO_FLAGS


def test_readout_without_mm_sets_nothing():
    r = readout(None)
    assert (r.bpd_mm, r.ofd_mm, r.cephalic_index, r.ga_hadlock_weeks, r.ga_intergrowth_weeks, r.hc_z) == (
        None, None, None, None, None, None)
    assert r.flags == ()
    # the measure step gives no BPD/OFD without an HC in mm: diameters alone are not read out
    assert readout(None, 48.0, 60.0) == readout(None)


def test_readout_without_mm_still_records_the_ga():
    r = readout(None, ga_weeks=20.0)
    assert r.ga_weeks == 20.0 and r.hc_z is None and r.flags == ()


@pytest.mark.parametrize("ga", [50, 9.9, "abc", float("nan")])
def test_readout_refuses_bad_ga(ga):
    with pytest.raises(ValueError, match="between 10 and 45|not a number"):
        readout(*head(300.0, 240.0), ga_weeks=ga)
    with pytest.raises(ValueError):
        readout(None, ga_weeks=ga)


def test_readout_is_a_pure_value():
    hc, bpd, ofd = head(300.0, 200.0)
    r = readout(hc, bpd, ofd)
    assert readout(hc, bpd, ofd) == r  # twice: same value, flags not duplicated
    assert len(r.flags) == 1 and isinstance(r.flags, tuple)
    with pytest.raises(FrozenInstanceError):
        r.flags = ()  # type: ignore[misc]


@pytest.mark.parametrize("hc_mm", [1e-120, 1e-30, 5000.0, 1e6])
def test_absurd_hc_gives_no_ga_instead_of_overflowing(hc_mm):
    from fetalhc.clinical import readout

    assert intergrowth_ga_weeks(hc_mm) is None and hadlock_ga_weeks(hc_mm) is None
    r = readout(hc_mm)
    assert r.ga_intergrowth_weeks is None and r.ga_hadlock_weeks is None
