"""Request and response models of the HTTP API (pydantic), for validation and the OpenAPI schema.
Units are in the field names: ``_px`` pixels, ``_mm`` millimetres, ``_deg`` degrees, ``_weeks`` weeks."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fetalhc.clinical import GA_INPUT_RANGE_WEEKS
from fetalhc.image import MAX_PIXELS

#: Bounds of an ellipse the API accepts (pixels): generous, but finite and small enough to rasterise.
COORD_LIMIT_PX = 100_000.0
MAX_SIDE_PX = 40_000
#: Pixel sizes (mm) the API accepts: ultrasound images lie far inside (HC18: 0.05-0.39 mm).
MIN_PIXEL_SIZE_MM = 0.001
MAX_PIXEL_SIZE_MM = 10.0


class ErrorResponse(BaseModel):
    """Every error the API raises itself: a plain sentence, never a file path."""

    detail: str = Field(description="what went wrong, in words")


class ValidationErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorResponse(BaseModel):
    """422: FastAPI's validation errors (``detail`` is a list)."""

    detail: list[ValidationErrorItem]


class EllipseModel(BaseModel):
    """The clinical ellipse in image pixels: centre, semi-axes (a: major, b: minor) and the direction of
    the major axis from +x towards +y (down), degrees."""

    model_config = ConfigDict(allow_inf_nan=False)

    center_x_px: float = Field(ge=-COORD_LIMIT_PX, le=COORD_LIMIT_PX)
    center_y_px: float = Field(ge=-COORD_LIMIT_PX, le=COORD_LIMIT_PX)
    semi_axis_a_px: float = Field(ge=1, le=COORD_LIMIT_PX)
    semi_axis_b_px: float = Field(ge=1, le=COORD_LIMIT_PX)
    angle_deg: float = Field(ge=-3600, le=3600)


class ReadoutRequest(EllipseModel):
    """An ellipse (e.g. corrected by a person) with what its read-out needs."""

    pixel_size_mm: float | None = Field(default=None, ge=MIN_PIXEL_SIZE_MM, le=MAX_PIXEL_SIZE_MM,
                                        description="pixel size (mm); none: pixels only")
    ga_weeks: float | None = Field(default=None, ge=GA_INPUT_RANGE_WEEKS[0], le=GA_INPUT_RANGE_WEEKS[1],
                                   description="gestational age (weeks) for the INTERGROWTH-21st centile")
    pixel_size_source: str = Field(default="user", max_length=64)
    image_width_px: int = Field(gt=0, le=MAX_SIDE_PX, description="width of the image the ellipse lies on")
    image_height_px: int = Field(gt=0, le=MAX_SIDE_PX, description="height of the image the ellipse lies on")

    @model_validator(mode="after")
    def _image_not_too_large(self) -> ReadoutRequest:
        if self.image_width_px * self.image_height_px > MAX_PIXELS:
            raise ValueError(f"image of {self.image_width_px}x{self.image_height_px} pixels is larger than "
                             f"the limit of {MAX_PIXELS} pixels")
        return self


class ResultRow(BaseModel):
    """One row of the results table (``fetalhc.results.TABLE_COLUMNS``); ``None`` = not measured.
    Further columns a newer fetalhc adds (e.g. ``hc_low_mm``/``hc_high_mm``) pass through."""

    model_config = ConfigDict(extra="allow")

    file: str
    hc_mm: float | None = Field(None, description="clinical HC: Ramanujan perimeter of the fitted ellipse (mm)")
    patent_pixel_count_hc_mm: float | None = Field(None, description="the patent's pixel-count HC (biased, mm)")
    contour_length_mm: float | None = None
    hc_px: float | None = None
    patent_pixel_count_hc_px: float | None = None
    contour_length_px: float | None = None
    center_x_px: float | None = None
    center_y_px: float | None = None
    semi_axis_a_px: float | None = None
    semi_axis_b_px: float | None = None
    angle_deg: float | None = None
    pixel_size_mm: float | None = None
    pixel_size_source: str | None = None
    bpd_mm: float | None = Field(None, description="minor axis, outer-to-outer (mm)")
    ofd_mm: float | None = Field(None, description="major axis, outer-to-outer (mm)")
    cephalic_index: float | None = None
    ga_weeks: float | None = None
    ga_hadlock_weeks: float | None = None
    ga_intergrowth_weeks: float | None = None
    hc_z: float | None = None
    hc_centile: float | None = None
    status: str | None = None
    flags: list[str] = Field(default_factory=list, description='"code: reason" flags')
    crop_mode: str | None = None
    crop_hc_px: list[float] = Field(default_factory=list)
    hc_band_mm: float | None = Field(None, description="HC uncertainty band (mm)")
    hc_band_px: float | None = None
    edge_confidence: float | None = Field(None, description="mean |2p-1| along the mask's edge (0..1)")
    frame: int | None = None
    error: str | None = None
    sr_file: str | None = None


class Display(BaseModel):
    """The values as the page prints them (formatted by the package, not by the page)."""

    model_config = ConfigDict(extra="allow")

    hc_mm: str | None = Field(None, description="HC in mm with one decimal")
    status: str | None = None


class ImageInfo(BaseModel):
    """The de-identified image the reading was made on (the API never returns the raw upload)."""

    width_px: int
    height_px: int
    png_base64: str | None = Field(None, description="de-identified grey image, PNG, base64")
    kind: str = Field(description="png, jpeg, tiff, bmp or dicom")
    frames: int = 1
    frame: int | None = None


class ModelInfoModel(BaseModel):
    name: str
    sha256: str


class MeasureResponse(BaseModel):
    """The automatic reading of one upload."""

    result: ResultRow
    flag_list: list[str] = Field(description="every flag, 'code: reason' in words")
    display: Display
    image: ImageInfo
    model: ModelInfoModel
    sr_available: bool = Field(description="True when a DICOM SR can be downloaded for this upload")
    overlay_png_base64: str | None = None


class ReadoutResponse(BaseModel):
    """The read-out of one ellipse (computed by :func:`fetalhc.api.readout.readout_for_ellipse`)."""

    result: ResultRow
    flag_list: list[str]
    display: Display


class HealthResponse(BaseModel):
    status: str
    model: str
    sha256: str
    workers: int
    queue: int
    busy: int = Field(description="jobs admitted now (running or waiting)")
