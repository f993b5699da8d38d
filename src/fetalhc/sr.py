"""DICOM Structured Report out: one Comprehensive SR (TID 1500 Measurement Report) per measured
DICOM image or cine frame, built with highdicom.

The SR joins the source study (same Study Instance UID, patient and study modules copied from
the source) in a new series whose description says "not for diagnostic use". Its one
measurement group (TID 1410, planar ROI) holds the fitted ellipse as an SCOORD ELLIPSE on the
source image, the HC, BPD, OFD, cephalic index and Hadlock GA as NUM items, the algorithm's
identity (TID 4019) and the quality status. Codes, units and conventions: docs/dicom-sr.md.

Coordinates: fetalhc puts pixel centres on integer (x = column, y = row) coordinates; DICOM
SCOORD puts the top-left corner of the top-left pixel at (0, 0), so its centre is (0.5, 0.5).
The SR's points are therefore fetalhc's plus 0.5, in (column, row) order.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import highdicom as hd
import numpy as np
import pydicom
from highdicom.coding_schemes import CodingSchemeIdentificationItem
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import generate_uid

from fetalhc._version import __version__
from fetalhc.io_utils import atomic_write_bytes
from fetalhc.quality import FLAG_SR_NOT_WRITTEN

if TYPE_CHECKING:
    from fetalhc.results import MeasureResult
    from fetalhc.segment import ModelInfo

#: Flag written on a result for which no SR was written (informative: the HC is not in doubt).
#: SR series: number and description (the description always says "not for diagnostic use").
SR_SERIES_NUMBER = 990
SERIES_DESCRIPTION = "fetalhc HC measurement - not for diagnostic use"
SERIES_DESCRIPTION_EDITED = "fetalhc HC, corrected by a person - not for diagnostic use"
#: Offset added to fetalhc's pixel-centre coordinates to get DICOM SCOORD image coordinates.
SCOORD_PIXEL_CENTRE_OFFSET = 0.5

# Private coding scheme for what no standard code says (declared in Coding Scheme Identification).
LOCAL_SCHEME = "99FETALHC"
QUALITY_STATUS = Code("status", LOCAL_SCHEME, "fetalhc quality status")
STATUS_VALUES = {
    "ok": Code("ok", LOCAL_SCHEME, "All quality checks passed"),
    "review": Code("review", LOCAL_SCHEME, "Needs review by a person"),
}
ELLIPSE_SOURCE = Code("ellipse-source", LOCAL_SCHEME, "Source of the ellipse")
ELLIPSE_BY_ALGORITHM = Code("algorithm", LOCAL_SCHEME, "Fitted by the algorithm")
ELLIPSE_BY_PERSON = Code("person", LOCAL_SCHEME, "Corrected by a person")
CORRECTED_TEXT = "ellipse corrected by a person; values recomputed by fetalhc from the corrected ellipse"

# Standard codes (LOINC via pydicom's code dictionary; the CID each belongs to is in the notes).
HC = codes.LN.HeadCircumference          # 11984-2
BPD = codes.LN.BiparietalDiameter        # 11820-8
OFD = codes.LN.OccipitalFrontalDiameter  # 11851-3
CEPHALIC_INDEX = codes.LN.CephalicIndex  # 11823-2
GA = codes.LN.GestationalAge             # 18185-9
HADLOCK_HC = codes.LN.HCHadlock1984      # 11932-1
MM, PERCENT, WEEK = codes.UCUM.Millimeter, codes.UCUM.Percent, codes.UCUM.Week
PROCEDURE = codes.SCT.ObstetricUSScan    # 268445003
COMMENT = codes.DCM.Comment              # 121106

#: Type 2 attributes of the patient and study modules that must exist (possibly empty) in the SR.
_TYPE2_EVIDENCE = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber",
                   "StudyID", "StudyDate", "StudyTime", "ReferringPhysicianName")
#: Type 1 attributes of the source without which the SR cannot reference it.
_TYPE1_SOURCE = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")


@dataclass(frozen=True)
class SrContent:
    """What one SR reports (units in names; ellipse in image pixel coordinates, x right, y down)."""

    hc_mm: float | None
    bpd_mm: float | None
    ofd_mm: float | None
    cephalic_index: float | None
    ga_hadlock_weeks: float | None
    center_x_px: float
    center_y_px: float
    semi_axis_a_px: float      # major semi-axis
    semi_axis_b_px: float      # minor semi-axis
    angle_deg: float           # major axis direction from +x towards +y (down), as fetalhc.ellipse.Ellipse
    status: str                # "ok" | "review"
    flags: tuple[str, ...]
    edited: bool = False       # True: the ellipse was corrected by a person


@dataclass(frozen=True)
class AlgorithmIdentity:
    """The software that made the measurement: fetalhc's version and the segmentation model."""

    version: str
    model_name: str
    model_sha256: str
    name: str = "fetalhc"


def algorithm_identity_from_info(info: ModelInfo) -> AlgorithmIdentity:
    """The identity of fetalhc running the model described by ``info`` (fetalhc.segment.ModelInfo)."""
    return AlgorithmIdentity(version=__version__, model_name=f"{info.path.stem} {info.version}".strip(),
                             model_sha256=info.sha256)


@lru_cache(maxsize=4)
def default_algorithm_identity(model_path: Path | None = None) -> AlgorithmIdentity:
    """The identity of fetalhc with the shipped model (or the model at ``model_path``); the model's
    SHA-256 is checked against its metadata JSON."""
    from fetalhc.segment import default_model_path, read_model_info

    return algorithm_identity_from_info(read_model_info(model_path or default_model_path()))


def sr_content_from_result(res: MeasureResult, edited: bool = False) -> SrContent:
    """The SR content of a measured result. ``ValueError`` when the result has no ellipse."""
    e = (res.center_x_px, res.center_y_px, res.semi_axis_a_px, res.semi_axis_b_px, res.angle_deg)
    if any(v is None or not math.isfinite(v) for v in e) or res.error is not None:
        raise ValueError(res.error or "no ellipse was measured")
    cx, cy, a, b, ang = (float(v) for v in e if v is not None)
    return SrContent(hc_mm=res.hc_mm, bpd_mm=res.bpd_mm, ofd_mm=res.ofd_mm, cephalic_index=res.cephalic_index,
                     ga_hadlock_weeks=res.ga_hadlock_weeks, center_x_px=cx, center_y_px=cy, semi_axis_a_px=a,
                     semi_axis_b_px=b, angle_deg=ang, status=res.status, flags=tuple(res.flags), edited=edited)


def ellipse_scoord_points(content: SrContent) -> np.ndarray:
    """The SCOORD ELLIPSE graphic data, shape (4, 2) float32 as (column, row) in DICOM image
    coordinates: the major axis endpoints, then the minor axis endpoints."""
    th = math.radians(content.angle_deg)
    ux, uy = math.cos(th), math.sin(th)          # major axis direction
    vx, vy = -uy, ux                             # minor axis direction
    cx = content.center_x_px + SCOORD_PIXEL_CENTRE_OFFSET
    cy = content.center_y_px + SCOORD_PIXEL_CENTRE_OFFSET
    a, b = content.semi_axis_a_px, content.semi_axis_b_px
    pts = [(cx + a * ux, cy + a * uy), (cx - a * ux, cy - a * uy),
           (cx + b * vx, cy + b * vy), (cx - b * vx, cy - b * vy)]
    return np.asarray(pts, dtype=np.float32)


def _check_content(content: SrContent) -> None:
    if content.status not in STATUS_VALUES:
        raise ValueError(f"SR status must be one of {sorted(STATUS_VALUES)}, got {content.status!r}")
    geo = (content.center_x_px, content.center_y_px, content.semi_axis_a_px, content.semi_axis_b_px, content.angle_deg)
    if not all(math.isfinite(v) for v in geo):
        raise ValueError("SR ellipse has a non-finite centre, semi-axis or angle")
    if not content.semi_axis_a_px >= content.semi_axis_b_px > 0:
        raise ValueError(f"SR ellipse needs semi-axes a >= b > 0 px, got a={content.semi_axis_a_px}, "
                         f"b={content.semi_axis_b_px}")


def _evidence(source: Dataset) -> Dataset:
    """The source's header (no pixel data) with missing Type 2 patient/study attributes present but
    empty, so that the SR copies them as empty values. ``ValueError`` when a Type 1 UID is missing."""
    missing = [k for k in _TYPE1_SOURCE if not str(source.get(k, "") or "").strip()]
    if missing:
        raise ValueError(f"the source DICOM lacks {', '.join(missing)}: an SR cannot reference it")
    ev = Dataset()
    for elem in source:
        if elem.tag.group != 0x7FE0:
            ev.add(elem)
    for kw in _TYPE2_EVIDENCE:
        if kw not in ev:
            setattr(ev, kw, None)
    if str(ev.PatientSex or "").strip() not in ("", "M", "F", "O"):
        ev.PatientSex = None
    return ev


def _number_of_frames(source: Dataset) -> int:
    try:
        return max(1, int(source.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


def _referenced_frames(source: Dataset, frame: int | None) -> list[int] | None:
    """1-based Referenced Frame Number for a 0-based ``frame`` of a multi-frame source."""
    n = _number_of_frames(source)
    if n <= 1:
        if frame not in (None, 0):
            raise ValueError(f"frame {frame} given but the source has a single frame")
        return None
    if frame is None:
        raise ValueError(f"the source has {n} frames: say which (0-based) frame was measured")
    if not 0 <= frame < n:
        raise ValueError(f"frame {frame} out of range; the source has {n} frames (0-{n - 1})")
    return [frame + 1]


def _measurements(content: SrContent) -> list[hd.sr.Measurement]:
    """NUM items for the values that are defined (``None`` or non-finite values are left out)."""
    out = []
    for name, value, unit in ((HC, content.hc_mm, MM), (BPD, content.bpd_mm, MM), (OFD, content.ofd_mm, MM),
                              (CEPHALIC_INDEX, content.cephalic_index, PERCENT)):
        if value is not None and math.isfinite(value):
            out.append(hd.sr.Measurement(name=name, value=round(float(value), 2), unit=unit))
    ga = content.ga_hadlock_weeks
    if ga is not None and math.isfinite(ga):
        out.append(hd.sr.Measurement(name=GA, value=round(float(ga), 3), unit=WEEK, method=HADLOCK_HC))
    return out


def _algorithm_id(algorithm: AlgorithmIdentity) -> hd.sr.AlgorithmIdentification:
    return hd.sr.AlgorithmIdentification(
        name=algorithm.name, version=algorithm.version,
        parameters=[f"model={algorithm.model_name}", f"model_sha256={algorithm.model_sha256}"])


def build_sr(source: pydicom.Dataset, content: SrContent, *, frame: int | None = None,
             algorithm: AlgorithmIdentity | None = None) -> pydicom.Dataset:
    """A highdicom Comprehensive SR reporting ``content`` measured on ``source`` (its header is
    enough; pixel data are ignored). ``frame`` is the 0-based frame of a multi-frame source.

    Raises ``ValueError`` for content that cannot be reported (bad status, degenerate ellipse) or a
    source that cannot be referenced (missing UIDs, wrong frame).
    """
    _check_content(content)
    ev = _evidence(source)
    algorithm = algorithm or default_algorithm_identity()
    algo = _algorithm_id(algorithm)
    region = hd.sr.ImageRegion(
        graphic_type=hd.sr.GraphicTypeValues.ELLIPSE, graphic_data=ellipse_scoord_points(content),
        source_image=hd.sr.SourceImageForRegion(ev.SOPClassUID, ev.SOPInstanceUID, _referenced_frames(ev, frame)))
    evaluations = [
        hd.sr.QualitativeEvaluation(QUALITY_STATUS, STATUS_VALUES[content.status]),
        hd.sr.QualitativeEvaluation(ELLIPSE_SOURCE, ELLIPSE_BY_PERSON if content.edited else ELLIPSE_BY_ALGORITHM),
    ]
    group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(), identifier="fetal head ellipse"),
        referenced_region=region, algorithm_id=algo, measurements=_measurements(content),
        qualitative_evaluations=evaluations)
    # TID 1410 is extensible: the flags (and the correction) as free-text comments
    container = group[0]
    texts = ([CORRECTED_TEXT] if content.edited else []) + [f"quality flag: {f}" for f in content.flags]
    for t in texts:
        container.ContentSequence.append(hd.sr.TextContentItem(
            name=COMMENT, value=t, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS))
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(entropy_srcs=[algorithm.name, algorithm.version, algorithm.model_sha256]),
            name=algorithm.name, model_name=algorithm.model_name[:64]))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=device),
        procedure_reported=PROCEDURE, imaging_measurements=[group])
    series_uid = generate_uid(entropy_srcs=[str(ev.StudyInstanceUID), str(ev.SeriesInstanceUID), "fetalhc-sr",
                                            str(content.edited)])
    sr = hd.sr.ComprehensiveSR(
        evidence=[ev], content=report[0], series_instance_uid=series_uid, series_number=SR_SERIES_NUMBER,
        sop_instance_uid=generate_uid(), instance_number=1 if frame is None else frame + 1,
        manufacturer="fetalhc", manufacturer_model_name=algorithm.model_name[:64],
        software_versions=f"fetalhc {algorithm.version}", is_complete=True,
        series_description=SERIES_DESCRIPTION_EDITED if content.edited else SERIES_DESCRIPTION,
        coding_schemes=[CodingSchemeIdentificationItem(
            designator=LOCAL_SCHEME, name="fetalhc local codes", responsible_organization="fetalhc")])
    return sr


def sr_bytes(sr: Dataset) -> bytes:
    """The SR as a DICOM Part 10 file."""
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, sr, enforce_file_format=True)
    return buf.getvalue()


def write_sr(source_path: Path, content: SrContent, out_dir: Path, *, frame: int | None = None,
             algorithm: AlgorithmIdentity | None = None, stem: str | None = None) -> Path:
    """Build the SR for ``content`` measured on the DICOM file ``source_path`` (0-based ``frame`` for
    a cine) and write it atomically as ``out_dir/<stem>_sr.dcm``; returns the path.

    ``stem`` defaults to the source's stem (plus ``_frameNNNN`` for a frame). ``ValueError`` names
    the file when it is not DICOM or the SR cannot be built.
    """
    from fetalhc.dicom import read_header

    src = Path(source_path)
    header = read_header(src)
    try:
        sr = build_sr(header, content, frame=frame, algorithm=algorithm)
    except ValueError as e:
        raise ValueError(f"{src}: {e}") from None
    if stem is None:
        stem = src.stem if frame is None else f"{src.stem}_frame{frame:04d}"
    return atomic_write_bytes(Path(out_dir) / f"{stem}_sr.dcm", sr_bytes(sr))


def write_sr_for_result(res: MeasureResult, source_path: Path, out_dir: Path, *, frame: int | None, stem: str,
                        algorithm: AlgorithmIdentity | None = None) -> tuple[Path | None, str | None]:
    """Batch helper: write the SR of ``res`` (measured on ``source_path``). Returns (the SR's path,
    None), or (None, an informative ``sr_not_written`` flag saying why) when no SR can be written
    (not DICOM, no ellipse); the flag leaves the reading's status as it is."""
    from fetalhc.flags import make_flag
    from fetalhc.reader import is_dicom

    if not is_dicom(Path(source_path)):
        return None, make_flag(FLAG_SR_NOT_WRITTEN, "input is not DICOM")
    try:
        content = sr_content_from_result(res)
        return write_sr(source_path, content, out_dir, frame=frame, algorithm=algorithm, stem=stem), None
    except ValueError as e:
        return None, make_flag(FLAG_SR_NOT_WRITTEN, str(e).removeprefix(f"{source_path}: "))
