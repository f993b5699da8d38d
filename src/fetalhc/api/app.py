"""The FastAPI application: the web page (static files in ``fetalhc/web``) and the HTTP API.

* ``GET /`` — the page: upload, see the ellipse over the de-identified image, correct it, download.
* ``POST /api/measure`` — multipart ``image`` (+ ``pixel_size_mm``, ``ga_weeks``, ``crop_mode``,
  ``flips``, ``frame``) -> the automatic reading and the de-identified image.
* ``POST /api/readout`` — JSON ellipse (+ pixel size, GA, image size) -> its read-out.
* ``POST /api/export/{csv,json,pdf,sr}`` — the same form as measure plus an optional corrected
  ellipse -> the file. The server keeps no state: the page re-sends the image it holds.
* ``GET /api/health`` — model and pool state; answers at once while measurements run.

Measurements run on a bounded worker pool (503 + Retry-After when full, 504 after the time limit).
Uploads are held in memory only (never written to disk, not even by the multipart parser) and
nothing about them is logged; error messages name the image "upload", never a path.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Depends, FastAPI, File, Form, HTTPException, Path, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.formparsers import MultiPartParser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fetalhc.api import exports
from fetalhc.api.engine import Engine, Reading, Settings, png_base64
from fetalhc.api.models import (
    MAX_PIXEL_SIZE_MM,
    MIN_PIXEL_SIZE_MM,
    ErrorResponse,
    HealthResponse,
    MeasureResponse,
    ReadoutRequest,
    ReadoutResponse,
    ValidationErrorResponse,
)
from fetalhc.api.pool import PoolFull, PoolTimeout, WorkerPool
from fetalhc.api.readout import display_values, normalized_ellipse, readout_for_ellipse
from fetalhc.api.uploads import UploadError
from fetalhc.clinical import GA_INPUT_RANGE_WEEKS, validate_ga_weeks
from fetalhc.crops import DEFAULT_CROP_MODE
from fetalhc.ellipse import Ellipse
from fetalhc.overlay import draw_overlay
from fetalhc.pipeline import PipelineConfig

T = TypeVar("T")
RETRY_AFTER_S = 5
_E = {"model": ErrorResponse}
MEASURE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {**_E, "description": "unreadable image or bad value"},
    413: {**_E, "description": "upload too large"},
    415: {**_E, "description": "not PNG, JPEG, TIFF, BMP or DICOM"},
    422: {"model": ValidationErrorResponse, "description": "a field failed validation"},
    503: {**_E, "description": "all workers busy and the queue full; retry after Retry-After seconds"},
    504: {**_E, "description": "the measurement took longer than the time limit"},
}

CropModeName = Literal["corners", "full", "corners+full"]


class TableFormat(StrEnum):
    csv = "csv"
    json = "json"
    pdf = "pdf"


class ExportFormat(StrEnum):
    csv = "csv"
    json = "json"
    pdf = "pdf"
    sr = "sr"


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``limit`` bytes with 413 (by Content-Length
    at once, else while reading), before the multipart parser sees them."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await _send_413(send, self.limit)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    raise HTTPException(413, _too_large(self.limit))
            return msg

        await self.app(scope, limited, send)


def _too_large(limit: int) -> str:
    return f"upload larger than the limit of {limit / 2**20:g} MiB"


async def _send_413(send: Send, limit: int) -> None:
    body = json.dumps({"detail": _too_large(limit)}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def create_app(settings: Settings | None = None, model_path: str | None = None) -> FastAPI:
    """The application with its own worker pool and engine (the model loads on the first measurement)."""
    settings = settings or Settings()
    # uploads stay in memory: the multipart parser would spool parts over 1 MiB to a temporary file
    MultiPartParser.spool_max_size = max(MultiPartParser.spool_max_size, settings.max_upload_bytes + 1)
    engine = Engine(settings, model_path)
    pool = WorkerPool(settings.workers, settings.queue, settings.timeout_s)
    app = FastAPI(title="fetalhc", version=_version(),
                  description="Fetal head circumference from 2-D ultrasound (research use, not a medical device).")
    app.state.engine, app.state.pool, app.state.settings = engine, pool, settings
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes)
    _add_error_handlers(app)
    web = resources.files("fetalhc") / "web"
    app.mount("/static", StaticFiles(directory=str(web)), name="static")
    model = {"name": engine.info.path.name, "sha256": engine.info.sha256}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return (web / "index.html").read_text(encoding="utf-8")

    @app.get("/api/health", response_model=HealthResponse)
    async def health() -> HealthResponse:
        """Model and pool state; never waits for a measurement."""
        s = pool.stats()
        return HealthResponse(status="ok", model=model["name"], sha256=model["sha256"], workers=s.workers,
                              queue=s.queue, busy=s.admitted)

    @app.post("/api/measure", response_model=MeasureResponse, responses=MEASURE_ERRORS)
    async def measure(
        request: Request,
        image: Annotated[UploadFile, File(description="PNG, JPEG, TIFF, BMP or DICOM")],
        pixel_size_mm: Annotated[float | None, Form(ge=MIN_PIXEL_SIZE_MM, le=MAX_PIXEL_SIZE_MM,
                                                    description="overrides the file's own (mm)")] = None,
        ga_weeks: Annotated[float | None, Form(description="gestational age (weeks), 10-45")] = None,
        crop_mode: Annotated[CropModeName, Form()] = DEFAULT_CROP_MODE,  # type: ignore[assignment]
        flips: Annotated[bool, Form()] = False,
        frame: Annotated[int | None, Form(ge=0, le=100_000, description="0-based frame of a DICOM cine")] = None,
        overlay: Annotated[bool, Form(description="also return the overlay picture")] = False,
    ) -> MeasureResponse:
        """Measure one upload: the automatic reading and the de-identified image it was made on."""
        req = await read_request(image, pixel_size_mm, ga_weeks, crop_mode, flips, frame)
        return await run_job(request, req, lambda r: _measure_response(r, overlay, model))

    @app.post("/api/readout", response_model=ReadoutResponse,
              responses={400: {**_E, "description": "bad ellipse"},
                         422: {"model": ValidationErrorResponse, "description": "a field failed validation"}})
    def readout(req: ReadoutRequest) -> ReadoutResponse:
        """The read-out of an ellipse (e.g. one a person dragged), computed by the package's own
        formulas (:func:`fetalhc.api.readout.readout_for_ellipse`)."""
        try:
            e = normalized_ellipse(req.center_x_px, req.center_y_px, req.semi_axis_a_px, req.semi_axis_b_px,
                                   req.angle_deg)
            res = readout_for_ellipse(e, req.pixel_size_mm, req.ga_weeks, (req.image_height_px, req.image_width_px),
                                      pixel_size_source=req.pixel_size_source)
        except ValueError as err:
            raise HTTPException(400, str(err)) from None
        return ReadoutResponse.model_validate({"result": res.row(), "flag_list": list(res.flags),
                                               "display": display_values(res)})

    @app.post("/api/export/sr", response_class=Response, dependencies=[Depends(sr_required)], responses={
        **MEASURE_ERRORS, 501: {**_E, "description": "SR support not installed"},
        200: {"description": "a DICOM Comprehensive SR of the reading", "content": {"application/dicom": {}}}})
    async def export_sr(request: Request, req: Annotated[ReadRequest, Depends(export_inputs)]) -> Response:
        """The reading (corrected when an ellipse is given) as a DICOM SR; DICOM uploads only.
        The upload is measured again (deterministic) instead of being kept."""
        return await run_job(request, req, lambda r: _file_response(ExportFormat.sr, r, model))

    @app.post("/api/export/{fmt}", response_class=Response, responses={
        **MEASURE_ERRORS,
        200: {"description": "the file", "content": {"text/csv": {}, "application/json": {}, "application/pdf": {}}}})
    async def export(
        request: Request,
        fmt: Annotated[TableFormat, Path(description="csv, json or pdf (the one-page report)")],
        req: Annotated[ReadRequest, Depends(export_inputs)],
    ) -> Response:
        """The reading as a file; with all five ellipse fields, the reading of that corrected ellipse
        (marked as edited). The upload is measured again (deterministic) instead of being kept."""
        return await run_job(request, req, lambda r: _file_response(ExportFormat(fmt.value), r, model))

    return app


@dataclass(frozen=True)
class ReadRequest:
    """One upload (bytes in memory) with its checked settings and an optional corrected ellipse."""

    data: bytes
    pixel_size_mm: float | None
    ga_weeks: float | None
    config: PipelineConfig
    frame: int | None
    ellipse: Ellipse | None = None


async def read_request(image: UploadFile, pixel_size_mm: float | None, ga_weeks: float | None, crop_mode: str,
                       flips: bool, frame: int | None, ellipse: Ellipse | None = None) -> ReadRequest:
    """Read the upload into memory and check the settings (400 for a bad GA)."""
    return ReadRequest(await image.read(), pixel_size_mm, _checked_ga(ga_weeks),
                       PipelineConfig(crop_mode=crop_mode, flips=flips), frame, ellipse)


async def run_job(request: Request, req: ReadRequest, finish: Callable[[Reading], T]) -> T:
    """Measure ``req`` and turn the reading into the answer with ``finish``, both in one job on the
    app's worker pool (nothing CPU-heavy runs on the event loop)."""
    engine: Engine = request.app.state.engine
    pool: WorkerPool = request.app.state.pool

    def job() -> T:
        return finish(engine.read(req.data, pixel_size_mm=req.pixel_size_mm, ga_weeks=req.ga_weeks,
                                  config=req.config, frame=req.frame, ellipse=req.ellipse))

    return await pool.run(job)


async def export_inputs(
    image: Annotated[UploadFile, File(description="the same upload as for /api/measure")],
    pixel_size_mm: Annotated[float | None, Form(ge=MIN_PIXEL_SIZE_MM, le=MAX_PIXEL_SIZE_MM)] = None,
    ga_weeks: Annotated[float | None, Form()] = None,
    crop_mode: Annotated[CropModeName, Form()] = DEFAULT_CROP_MODE,  # type: ignore[assignment]
    flips: Annotated[bool, Form()] = False,
    frame: Annotated[int | None, Form(ge=0, le=100_000)] = None,
    center_x_px: Annotated[float | None, Form(ge=-1e5, le=1e5)] = None,
    center_y_px: Annotated[float | None, Form(ge=-1e5, le=1e5)] = None,
    semi_axis_a_px: Annotated[float | None, Form(ge=1, le=1e5)] = None,
    semi_axis_b_px: Annotated[float | None, Form(ge=1, le=1e5)] = None,
    angle_deg: Annotated[float | None, Form(ge=-3600, le=3600)] = None,
) -> ReadRequest:
    """The same form as /api/measure plus an optional corrected ellipse (all five fields or none)."""
    vals = (center_x_px, center_y_px, semi_axis_a_px, semi_axis_b_px, angle_deg)
    ellipse = None
    if any(v is not None for v in vals):
        if any(v is None for v in vals):
            raise HTTPException(400, "a corrected ellipse needs all of center_x_px, center_y_px, "
                                     "semi_axis_a_px, semi_axis_b_px and angle_deg")
        try:
            ellipse = normalized_ellipse(*(float(v) for v in vals if v is not None))
        except ValueError as err:
            raise HTTPException(400, str(err)) from None
    return await read_request(image, pixel_size_mm, ga_weeks, crop_mode, flips, frame, ellipse)


def sr_required() -> None:
    if not exports.sr_available():
        raise HTTPException(501, "SR support not installed: this build of fetalhc has no fetalhc.sr module")


def _measure_response(r: Reading, overlay: bool, model: dict[str, str]) -> MeasureResponse:
    res = r.automatic
    h, w = r.clean.pixels.shape[:2]
    over = png_base64(draw_overlay(r.clean.pixels, res)) if overlay else None
    return MeasureResponse.model_validate({
        "result": res.row(), "flag_list": list(res.flags), "display": display_values(res),
        "image": {"width_px": w, "height_px": h, "png_base64": png_base64(r.clean.pixels),
                  "kind": r.decoded.kind, "frames": r.decoded.frames, "frame": r.decoded.frame},
        "model": model, "sr_available": r.decoded.kind == "dicom" and exports.sr_available(),
        "overlay_png_base64": over,
    })


def _file_response(fmt: ExportFormat, r: Reading, model: dict[str, str]) -> Response:
    if fmt is ExportFormat.sr and r.decoded.kind != "dicom":
        raise UploadError(f"a DICOM SR needs a DICOM upload; this one is {r.decoded.kind.upper()}")
    res, edited = r.result, r.edited is not None
    row = exports.export_row(res, edited)
    name = f"fetalhc_result{'_edited' if edited else ''}"
    if fmt is ExportFormat.csv:
        body, media, ext = exports.csv_bytes(row), "text/csv; charset=utf-8", "csv"
    elif fmt is ExportFormat.json:
        auto = exports.export_row(r.automatic, False) if edited else None
        body, media, ext = exports.json_bytes(row, list(res.flags), auto, model), "application/json", "json"
    elif fmt is ExportFormat.pdf:
        body, media, ext = exports.pdf_bytes(res, r.clean.pixels), "application/pdf", "pdf"
    else:
        body, media, ext = exports.sr_bytes(res, r.decoded.dataset, edited, r.decoded.frame), "application/dicom", "dcm"
        name = f"fetalhc_sr{'_edited' if edited else ''}"
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}.{ext}"'})


def _checked_ga(ga_weeks: float | None) -> float | None:
    if ga_weeks is None:
        return None
    try:
        return validate_ga_weeks(ga_weeks)
    except ValueError as e:
        lo, hi = GA_INPUT_RANGE_WEEKS
        raise HTTPException(400, f"{e} (give the GA in weeks, {lo:g}-{hi:g}, or leave it empty)") from None


def _add_error_handlers(app: FastAPI) -> None:
    def handler(status: int, headers: dict[str, str] | None = None) -> Callable[[Request, Exception], Awaitable[Any]]:
        async def h(_request: Request, exc: Exception) -> JSONResponse:
            code = getattr(exc, "status", status)
            return JSONResponse({"detail": str(exc)}, status_code=code, headers=headers)
        return h

    app.add_exception_handler(UploadError, handler(400))
    app.add_exception_handler(PoolFull, handler(503, {"Retry-After": str(RETRY_AFTER_S)}))
    app.add_exception_handler(PoolTimeout, handler(504))
    app.add_exception_handler(exports.SrUnavailable, handler(501))
    app.add_exception_handler(ValueError, handler(400))


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("fetalhc")
    except Exception:  # noqa: BLE001 - not installed (source tree): no version
        return "0"
