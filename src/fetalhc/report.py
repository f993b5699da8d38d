"""One-page report (A4 portrait, PDF and PNG) of one measured image.

The page shows the image with the fitted ellipse and its axes, the measurements with units
and conventions, the gestational age by both formulas, the status and flags and, when a
gestational age was given, the HC on the INTERGROWTH-21st centile curves. No patient data is
printed: the only name on the page is the file stem the caller passes.
"""

from __future__ import annotations

import io
import math
import textwrap
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox
from numpy.typing import NDArray

from fetalhc.clinical import (
    INTERGROWTH_DATING_GA_RANGE_WEEKS,
    INTERGROWTH_STANDARD_GA_RANGE_WEEKS,
    intergrowth_hc_mean_sd,
    weeks_days,
)
from fetalhc.image import to_grey_uint8
from fetalhc.io_utils import atomic_write_bytes
from fetalhc.quality import QualityThresholds
from fetalhc.results import MeasureResult

TITLE = "fetalhc \u2014 fetal head circumference"
DISCLAIMER = "Research software: not a medical device; a second reading, not a diagnosis."
A4_INCHES = (8.27, 11.69)
PNG_DPI = 120
#: INTERGROWTH-21st centile curves drawn: (label, z-score).
CENTILES = (("3rd", -1.881), ("10th", -1.282), ("50th", 0.0), ("90th", 1.282), ("97th", 1.881))
_NA = "n/a"


def write_report(result: MeasureResult, image: NDArray[np.generic], out_dir: Path, stem: str) -> list[Path]:
    """Write ``<stem>_report.pdf`` and ``<stem>_report.png`` (one A4 page) into ``out_dir``.

    ``image`` is the (de-identified) picture the result was measured on, grey or colour, in
    the same pixel grid as the result's ellipse. Each file is written atomically (temporary
    file in ``out_dir``, then ``os.replace``). Returns the two paths, PDF first.
    """
    if not stem or Path(stem).name != stem:
        raise ValueError(f"report stem must be a plain file stem, got {stem!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fig = render_report(result, image, stem)
    paths = []
    for ext, kw in (("pdf", {"metadata": {"Title": "fetalhc report", "Author": None, "Creator": "fetalhc",
                                          "CreationDate": None}}),
                    ("png", {"dpi": PNG_DPI, "metadata": {"Software": "fetalhc"}})):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, **kw)
        paths.append(atomic_write_bytes(out / f"{stem}_report.{ext}", buf.getvalue()))
    return paths


def render_report(result: MeasureResult, image: NDArray[np.generic], stem: str) -> Figure:
    """The report page as a matplotlib :class:`~matplotlib.figure.Figure` (Agg canvas)."""
    fig = Figure(figsize=A4_INCHES)
    FigureCanvasAgg(fig)
    fig.text(0.5, 0.972, TITLE, ha="center", va="center", fontsize=16, weight="bold")
    status = (result.status or "").upper()
    colour = {"OK": "#1a7f37", "REVIEW": "#b35900"}.get(status, "#b00020")
    fig.text(0.06, 0.947, f"Image: {stem}", ha="left", va="center", fontsize=10)
    fig.text(0.94, 0.947, f"Status: {status}", ha="right", va="center", fontsize=11, weight="bold", color=colour)

    _draw_image(fig.add_axes((0.06, 0.625, 0.88, 0.31)), result, image)
    _draw_table(fig.add_axes((0.06, 0.385, 0.88, 0.23)), result)
    _draw_flags(fig, result, top=0.372)
    plot_ax = fig.add_axes((0.11, 0.06, 0.83, 0.19))
    if result.ga_weeks is not None:
        _draw_centiles(plot_ax, result)
    else:
        plot_ax.set_axis_off()
        plot_ax.text(0.5, 0.5, "No gestational age given: INTERGROWTH-21st HC centile chart not drawn.",
                     ha="center", va="center", fontsize=10, color="0.35", transform=plot_ax.transAxes)
    fig.text(0.5, 0.018, DISCLAIMER, ha="center", va="center", fontsize=9, style="italic")
    return fig


def _draw_image(ax: Axes, result: MeasureResult, image: NDArray[np.generic]) -> None:
    grey = to_grey_uint8(np.asarray(image))
    h, w = grey.shape
    ax.imshow(grey, cmap="gray", vmin=0, vmax=255, interpolation="antialiased")
    ax.set_xticks([])
    ax.set_yticks([])
    e = result.ellipse
    if e is None:
        ax.text(0.5, 0.5, "no head found", ha="center", va="center", fontsize=14, color="#ff5050",
                transform=ax.transAxes)
        return
    pts = e.points(720)
    ax.plot(np.append(pts[:, 0], pts[0, 0]), np.append(pts[:, 1], pts[0, 1]), color="#ffd000", lw=1.4,
            label="fitted ellipse (HC)")
    th = math.radians(e.angle_deg)
    axes_spec = (("OFD", e.semi_axis_a_px, th, "#00c8ff"), ("BPD", e.semi_axis_b_px, th + math.pi / 2, "#ff7ab6"))
    for name, r, phi, col in axes_spec:
        dx, dy = r * math.cos(phi), r * math.sin(phi)
        ax.plot([e.center_x_px - dx, e.center_x_px + dx], [e.center_y_px - dy, e.center_y_px + dy], color=col,
                lw=1.2, label=f"{name} ({'major' if name == 'OFD' else 'minor'} axis)")
        tx = float(np.clip(e.center_x_px + 1.08 * dx, 0.03 * w, 0.97 * w))
        ty = float(np.clip(e.center_y_px + 1.08 * dy, 0.04 * h, 0.96 * h))
        ax.text(tx, ty, name, color=col, fontsize=9, weight="bold", ha="center", va="center",
                bbox={"facecolor": "black", "alpha": 0.55, "pad": 1.5, "edgecolor": "none"})
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.legend(loc="lower right", fontsize=7, framealpha=0.7)


def _mm(v: float | None, digits: int = 1) -> str:
    return _NA if v is None else f"{v:.{digits}f} mm"


def _ga(v: float | None) -> str:
    return _NA if v is None else f"{v:.1f} weeks ({weeks_days(v)})"


def _table_rows(result: MeasureResult) -> list[tuple[str, str, str]]:
    r = result
    no_mm = r.hc_mm is None and r.hc_px is not None
    hc_note = "Ramanujan perimeter of the fitted ellipse"
    if no_mm:
        hc_note = f"no pixel size: {r.hc_px:.0f} px"
    ig_lo, ig_hi = INTERGROWTH_DATING_GA_RANGE_WEEKS
    band_limit = (r.thresholds or QualityThresholds()).max_hc_band_mm
    rows = [
        ("HC, ellipse (clinical)", _mm(r.hc_mm), hc_note),
        ("HC, patent contour (biased)", _mm(r.patent_pixel_count_hc_mm),
         "patent: boundary-pixel count, reads ~10 % short"),
        ("HC uncertainty band", _mm(r.hc_band_mm),
         f"HC at probability 0.2 minus at 0.8 (> {band_limit:g}: review)"),
        ("OFD, outer-to-outer", _mm(r.ofd_mm), "major axis of the fitted ellipse"),
        ("BPD, outer-to-outer", _mm(r.bpd_mm), "minor axis (outer-inner BPD is one wall less)"),
        ("Cephalic index", _NA if r.cephalic_index is None else f"{r.cephalic_index:.1f}",
         "BPD / OFD x 100, expected 74-83"),
        ("Pixel size", _NA if r.pixel_size_mm is None else f"{r.pixel_size_mm:.4g} mm",
         "unknown: lengths in pixels only" if r.pixel_size_mm is None else f"source: {r.pixel_size_source}"),
        ("GA, Hadlock 1984", _ga(r.ga_hadlock_weeks), "from HC, valid 14-42 weeks"),
        ("GA, INTERGROWTH-21st", _ga(r.ga_intergrowth_weeks), f"from HC (2016), valid {ig_lo:g}-{ig_hi:g} weeks"),
    ]
    if r.ga_weeks is not None:
        rows.append(("GA given", _ga(r.ga_weeks), "entered by the user"))
        zc = _NA
        if r.hc_z is not None and r.hc_centile is not None:
            zc = f"z {r.hc_z:+.2f}, centile {format_centile(r.hc_centile)}"
        rows.append(("HC for GA", zc, "INTERGROWTH-21st fetal standard (2014)"))
    n_flags = len(r.flags)
    rows.append(("Status", (r.status or "").upper(), f"{n_flags} flag{'s' if n_flags != 1 else ''}, see below"))
    return rows


def _draw_table(ax: Axes, result: MeasureResult) -> None:
    ax.set_axis_off()
    rows = _table_rows(result)
    table = ax.table(cellText=[list(x) for x in rows], colLabels=["Measurement", "Value", "Convention / note"],
                     colWidths=[0.29, 0.25, 0.46], cellLoc="left", colLoc="left", loc="upper center",
                     bbox=Bbox.from_bounds(0.0, 0.0, 1.0, 1.0))
    table.auto_set_font_size(False)
    table.set_fontsize(8.5)
    for (row, _col), cell in table.get_celld().items():
        cell.set_edgecolor("0.75")
        if row == 0:
            cell.set_facecolor("0.88")
            cell.get_text().set_fontweight("bold")
        elif row % 2 == 0:
            cell.set_facecolor("0.965")


def _draw_flags(fig: Figure, result: MeasureResult, top: float, max_lines: int = 7) -> None:
    """The flags under the table, wrapped; what does not fit in ``max_lines`` is counted instead."""
    if not result.flags:
        fig.text(0.06, top, "Flags: none", ha="left", va="top", fontsize=7.8)
        return
    lines = ["Flags:"]
    shown = 0
    for f in result.flags:
        wrapped = textwrap.wrap(f, width=118, subsequent_indent="    ", max_lines=2, placeholder=" ...")
        more_after = shown + 1 < len(result.flags)
        if len(lines) + len(wrapped) > max_lines - (1 if more_after else 0):
            break
        lines.extend(("  \u2022 " + w) if i == 0 else w for i, w in enumerate(wrapped))
        shown += 1
    if shown < len(result.flags):
        lines.append(f"  ... and {len(result.flags) - shown} more in the results table")
    fig.text(0.06, top, "\n".join(lines), ha="left", va="top", fontsize=7.8, linespacing=1.35)


def format_centile(c: float) -> str:
    """A centile (percent) for display: one decimal, "<0.1" and ">99.9" at the extremes."""
    if c < 0.1:
        return "<0.1"
    if c > 99.9:
        return ">99.9"
    return f"{c:.1f}"


def _spread_labels(ys: list[float], gap: float) -> list[float]:
    """Label heights at least ``gap`` apart, as close to ``ys`` (ascending) as a simple push allows."""
    out = list(ys)
    for i in range(1, len(out)):
        out[i] = max(out[i], out[i - 1] + gap)
    shift = (sum(out) - sum(ys)) / len(ys)
    return [y - shift for y in out]


def _draw_centiles(ax: Axes, result: MeasureResult) -> None:
    lo, hi = INTERGROWTH_STANDARD_GA_RANGE_WEEKS
    ga = np.linspace(lo, hi, 105)
    mean_sd = np.array([intergrowth_hc_mean_sd(float(g)) for g in ga])
    styles = {"3rd": ":", "10th": "--", "50th": "-", "90th": "--", "97th": ":"}
    ends = []
    for label, z in CENTILES:
        curve = mean_sd[:, 0] + z * mean_sd[:, 1]
        ax.plot(ga, curve, styles[label], color="0.25", lw=1.1 if label == "50th" else 0.9)
        ends.append(float(curve[-1]))
    gap = 0.045 * (max(mean_sd[:, 0] + 2 * mean_sd[:, 1]) - min(mean_sd[:, 0] - 2 * mean_sd[:, 1]))
    for (label, _z), y in zip(CENTILES, _spread_labels(ends, gap), strict=True):
        ax.text(hi + 0.3, y, label, fontsize=7, va="center", ha="left", color="0.25")
    assert result.ga_weeks is not None
    g = result.ga_weeks
    if result.hc_mm is not None:
        note = "" if result.hc_centile is None else f", centile {format_centile(result.hc_centile)}"
        ax.plot([g], [result.hc_mm], "o", color="#d62728", ms=7, zorder=5,
                label=f"this fetus: HC {result.hc_mm:.1f} mm at {weeks_days(g)} weeks{note}")
        ax.legend(loc="upper left", fontsize=8, framealpha=0.85)
    else:
        ax.axvline(g, color="#d62728", lw=0.8, ls="-.")
        ax.text(0.02, 0.95, f"GA {weeks_days(g)} weeks: no HC in mm to plot", transform=ax.transAxes,
                fontsize=8, va="top", color="#d62728", bbox={"facecolor": "white", "edgecolor": "none", "pad": 2})
    ax.set_xlim(min(lo, g) - 0.5, max(hi, g) + 2.0)
    ax.set_xlabel("Gestational age (weeks)", fontsize=9)
    ax.set_ylabel("Head circumference (mm)", fontsize=9)
    ax.set_title("INTERGROWTH-21st fetal HC standard: 3rd, 10th, 50th, 90th, 97th centiles", fontsize=9.5)
    ax.tick_params(labelsize=8)
    ax.grid(True, color="0.9", lw=0.6)
