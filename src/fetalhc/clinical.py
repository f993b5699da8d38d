"""Stage 8: the clinical read-out. BPD, OFD, cephalic index, gestational age by two formulas
and the INTERGROWTH-21st HC z-score and centile. Pure formulas, millimetres and weeks.

Every formula has the range of the data it was derived from; outside it the value is
``None`` and a flag says why. Nothing is ever extrapolated.

Sources:
    Hadlock FP, Deter RL, Harrist RB, Park SK. Estimating fetal age: computer-assisted analysis
    of multiple fetal growth parameters. Radiology 1984;152:497-501 (361 fetuses, 14-42 weeks).
    Hadlock FP, Deter RL, Carpenter RJ, Park SK. Estimating fetal age: effect of head shape on
    BPD. AJR 1981;137:83-85 (cephalic index mean 78.3, +-1 SD = 74-83).
    Papageorghiou AT, Kemp B, Stones W, et al. Ultrasound-based gestational-age estimation in
    late pregnancy. Ultrasound Obstet Gynecol 2016;48:719-726 (INTERGROWTH-21st dating by HC).
    Papageorghiou AT, Ohuma EO, Altman DG, et al. International standards for fetal growth based
    on serial ultrasound measurements (INTERGROWTH-21st FGLS). Lancet 2014;384:869-879.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from fetalhc.flags import make_flag

#: Gestational ages (weeks) a user may give; anything else is refused.
GA_INPUT_RANGE_WEEKS = (10.0, 45.0)
#: Cephalic index (BPD/OFD x 100) outside this range makes the BPD unreliable (Hadlock 1981: mean 78.3 +- 1 SD).
CEPHALIC_INDEX_RANGE = (74.0, 83.0)
#: Hadlock 1984 was derived on fetuses of 14-42 menstrual weeks; estimates outside are not given.
HADLOCK_GA_RANGE_WEEKS = (14.0, 42.0)
#: INTERGROWTH-21st HC dating (2016) is documented for scans at 98-181 days (14+0 to 25+6 weeks;
#: rOpenSci ``gigs::ig_fet_estimate_ga``); estimates outside 14.0-26.0 weeks are not given.
INTERGROWTH_DATING_GA_RANGE_WEEKS = (14.0, 26.0)
#: The INTERGROWTH-21st fetal HC standard covers 14+0 to 40+0 weeks.
INTERGROWTH_STANDARD_GA_RANGE_WEEKS = (14.0, 40.0)

#: Flag codes this module writes (all informative: the HC itself is not in doubt).
FLAG_CEPHALIC_INDEX = "cephalic_index_out_of_range"
FLAG_HADLOCK_RANGE = "ga_hadlock_out_of_range"
FLAG_INTERGROWTH_RANGE = "ga_intergrowth_out_of_range"
FLAG_CENTILE_RANGE = "hc_centile_out_of_range"
INFO_FLAGS = frozenset({FLAG_CEPHALIC_INDEX, FLAG_HADLOCK_RANGE, FLAG_INTERGROWTH_RANGE, FLAG_CENTILE_RANGE})


def validate_ga_weeks(value: object) -> float:
    """A gestational age in weeks as a float; ``ValueError`` if not a finite number in 10-45 weeks."""
    if isinstance(value, bool):
        raise ValueError(f"gestational age {value!r} is not a number of weeks")
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"gestational age {value!r} is not a number of weeks") from None
    lo, hi = GA_INPUT_RANGE_WEEKS
    if not math.isfinite(v) or not lo <= v <= hi:
        raise ValueError(f"gestational age must lie between {lo:g} and {hi:g} weeks, got {value!r}")
    return v


def _check_hc(hc_mm: float) -> float:
    v = float(hc_mm)
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"head circumference must be a positive number of millimetres, got {hc_mm!r}")
    return v


def hadlock_ga_raw(hc_mm: float) -> float:
    """Hadlock 1984 menstrual age (weeks) from HC (mm), *without* the range check:
    GA = 8.96 + 0.540 HC + 0.0003 HC^3 with HC in cm."""
    hc_cm = _check_hc(hc_mm) / 10.0
    return 8.96 + 0.540 * hc_cm + 0.0003 * hc_cm**3


def hadlock_ga_weeks(hc_mm: float) -> float | None:
    """Hadlock 1984 gestational age (weeks) from HC (mm); ``None`` outside the study's 14-42 weeks.

    The valid range corresponds to HC of about 89-358 mm (:data:`HADLOCK_HC_RANGE_MM`).
    """
    ga = hadlock_ga_raw(hc_mm)
    lo, hi = HADLOCK_GA_RANGE_WEEKS
    return ga if lo <= ga <= hi else None


def intergrowth_ga_raw(hc_mm: float) -> float:
    """INTERGROWTH-21st (2016) gestational age (weeks) from HC (mm), *without* the range check:
    ln(GA days) = 0.05970 (ln HC)^2 + 0.000000006409 HC^3 + 3.3258, HC in mm."""
    hc = _check_hc(hc_mm)
    exponent = 0.05970 * math.log(hc) ** 2 + 0.000000006409 * hc**3 + 3.3258
    # far outside any head (HC below ~1e-100 mm or above ~4.8 m) the estimate overflows: infinite weeks
    return math.exp(exponent) / 7.0 if exponent < 700.0 else math.inf


def intergrowth_ga_weeks(hc_mm: float) -> float | None:
    """INTERGROWTH-21st gestational age (weeks) from HC alone (mm); ``None`` outside 14-26 weeks.

    The equation (Papageorghiou et al. 2016) was fitted to FGLS scans in the second trimester;
    the rOpenSci ``gigs`` implementation documents it for scans 98-181 days from the last
    menstrual period. We take the estimate itself as the check (monotonic in HC): HC of about
    98-240 mm (:data:`INTERGROWTH_DATING_HC_RANGE_MM`). Assumption: the paper's own limits are
    not restated here from the original; ``gigs`` is the source of the 98-181 day window.
    """
    ga = intergrowth_ga_raw(hc_mm)
    lo, hi = INTERGROWTH_DATING_GA_RANGE_WEEKS
    return ga if lo <= ga <= hi else None


def intergrowth_hc_mean_sd(ga_weeks: float) -> tuple[float, float]:
    """Mean and SD (mm) of HC at ``ga_weeks`` by the INTERGROWTH-21st fetal standard (Lancet 2014).

    mean = -28.2849 + 1.69267 GA^2 - 0.397485 GA^2 ln GA
    SD   = 1.98735 + 0.0136772 GA^3 - 0.00726264 GA^3 ln GA + 0.000976253 GA^3 (ln GA)^2
    Raises ``ValueError`` outside 14-40 weeks (the standard is not extrapolated).
    """
    ga = float(ga_weeks)
    lo, hi = INTERGROWTH_STANDARD_GA_RANGE_WEEKS
    if not math.isfinite(ga) or not lo <= ga <= hi:
        raise ValueError(f"the INTERGROWTH-21st HC standard covers {lo:g}-{hi:g} weeks, got {ga_weeks!r}")
    lg = math.log(ga)
    mean = -28.2849 + 1.69267 * ga**2 - 0.397485 * ga**2 * lg
    sd = 1.98735 + 0.0136772 * ga**3 - 0.00726264 * ga**3 * lg + 0.000976253 * ga**3 * lg**2
    return mean, sd


def normal_cdf(z: float) -> float:
    """Standard normal cumulative probability Phi(z)."""
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def hc_z_centile(hc_mm: float, ga_weeks: float) -> tuple[float, float] | None:
    """HC z-score and centile (percent, 0-100) for gestational age ``ga_weeks`` by the
    INTERGROWTH-21st standard; ``None`` when the GA lies outside 14-40 weeks."""
    hc = _check_hc(hc_mm)
    lo, hi = INTERGROWTH_STANDARD_GA_RANGE_WEEKS
    if not lo <= float(ga_weeks) <= hi:
        return None
    mean, sd = intergrowth_hc_mean_sd(ga_weeks)
    z = (hc - mean) / sd
    return z, 100.0 * normal_cdf(z)


def _hc_for_ga(formula: Callable[[float], float], ga_weeks: float) -> float:
    """Invert a monotonic HC (mm) -> GA (weeks) formula by bisection on 1-1000 mm."""
    lo, hi = 1.0, 1000.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if formula(mid) < ga_weeks:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


#: HC (mm) range for which :func:`hadlock_ga_weeks` gives a value (about 89.3-357.7 mm).
HADLOCK_HC_RANGE_MM = tuple(_hc_for_ga(hadlock_ga_raw, g) for g in HADLOCK_GA_RANGE_WEEKS)
#: HC (mm) range for which :func:`intergrowth_ga_weeks` gives a value (about 97.7-239.7 mm).
INTERGROWTH_DATING_HC_RANGE_MM = tuple(_hc_for_ga(intergrowth_ga_raw, g) for g in INTERGROWTH_DATING_GA_RANGE_WEEKS)


def weeks_days(ga_weeks: float) -> str:
    """Gestational age as completed weeks+days, e.g. 20.14 -> "20+0", 20.15 -> "20+1"."""
    days = int(math.floor(ga_weeks * 7 + 1e-9))
    return f"{days // 7}+{days % 7}"


@dataclass(frozen=True)
class Readout:
    """The clinical read-out of one measurement (units in the names; ``None`` where undefined).

    ``bpd_mm`` and ``ofd_mm`` are the minor and major axes of the fitted ellipse, outer to outer
    (see :func:`readout`); ``flags`` are informative ("code: reason") and never on their own
    send a reading to review (:data:`INFO_FLAGS`).
    """

    bpd_mm: float | None = None
    ofd_mm: float | None = None
    cephalic_index: float | None = None
    ga_weeks: float | None = None
    ga_hadlock_weeks: float | None = None
    ga_intergrowth_weeks: float | None = None
    hc_z: float | None = None
    hc_centile: float | None = None
    flags: tuple[str, ...] = ()


def readout(hc_mm: float | None, bpd_mm: float | None = None, ofd_mm: float | None = None,
            ga_weeks: float | None = None) -> Readout:
    """The clinical read-out of a head measured as ``hc_mm`` (ellipse HC), ``bpd_mm`` and ``ofd_mm``.

    OFD and BPD are the major and minor axes of the ellipse fitted to the head mask (mm). The
    ellipse is fitted to the outer skull boundary, so both are **outer-to-outer**; the conventional
    BPD (outer-to-inner, leading edge to leading edge) is shorter by about one skull-wall
    thickness. Cephalic index = BPD/OFD x 100 (dimensionless). GA by Hadlock 1984 and
    INTERGROWTH-21st (weeks), each ``None`` outside its valid range with a flag. With ``ga_weeks``
    (validated, 10-45 weeks) also the INTERGROWTH-21st HC z-score and centile (percent). Without an
    HC in mm the measured fields stay ``None``; a given ``ga_weeks`` is still recorded (the report
    draws the curves without a point).

    >>> r = readout(175.0, 46.0, 60.0)
    >>> round(r.cephalic_index, 1), round(r.ga_hadlock_weeks, 1)
    (76.7, 20.0)
    """
    ga = validate_ga_weeks(ga_weeks) if ga_weeks is not None else None
    if hc_mm is None:
        return Readout(ga_weeks=ga)
    hc = hc_mm
    flags: list[str] = []
    ci: float | None = None
    if bpd_mm is not None and ofd_mm is not None and ofd_mm > 0:
        ci = 100.0 * bpd_mm / ofd_mm
        lo, hi = CEPHALIC_INDEX_RANGE
        if ci < lo:
            flags.append(make_flag(FLAG_CEPHALIC_INDEX,
                                   f"CI {ci:.1f} < {lo:g} (dolichocephalic), BPD unreliable, HC preferred"))
        elif ci > hi:
            flags.append(make_flag(FLAG_CEPHALIC_INDEX,
                                   f"CI {ci:.1f} > {hi:g} (brachycephalic), BPD unreliable, HC preferred"))
    ga_hadlock = hadlock_ga_weeks(hc)
    if ga_hadlock is None:
        lo, hi = HADLOCK_HC_RANGE_MM
        flags.append(make_flag(FLAG_HADLOCK_RANGE, f"HC {hc:.1f} mm outside {lo:.0f}-{hi:.0f} mm "
                               "(Hadlock 1984 valid for 14-42 weeks): no Hadlock GA"))
    ga_ig = intergrowth_ga_weeks(hc)
    if ga_ig is None:
        lo, hi = INTERGROWTH_DATING_HC_RANGE_MM
        flags.append(make_flag(FLAG_INTERGROWTH_RANGE,
                               f"HC {hc:.1f} mm outside {lo:.0f}-{hi:.0f} mm (INTERGROWTH-21st dating valid for "
                               "14-26 weeks): no INTERGROWTH-21st GA"))
    z = centile = None
    if ga is not None:
        zc = hc_z_centile(hc, ga)
        if zc is None:
            lo, hi = INTERGROWTH_STANDARD_GA_RANGE_WEEKS
            flags.append(make_flag(FLAG_CENTILE_RANGE, f"GA {ga:.1f} weeks outside {lo:g}-{hi:g} weeks of the "
                                   "INTERGROWTH-21st HC standard, no centile"))
        else:
            z, centile = zc
    return Readout(bpd_mm=bpd_mm, ofd_mm=ofd_mm, cephalic_index=ci, ga_weeks=ga, ga_hadlock_weeks=ga_hadlock,
                   ga_intergrowth_weeks=ga_ig, hc_z=z, hc_centile=centile, flags=tuple(flags))
