"""The web page in a real headless Chromium (Playwright for Python, Debian's /usr/bin/chromium):
upload a phantom, read the HC, drag the handles, see the values change and the edited mark, reset,
download CSV/JSON/PDF, bad uploads, at 1280 px and at tablet width (768 px)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import httpx
import pytest

from conftest import require_tool

pytest.importorskip("fastapi", reason="serving needs the serve extra")

CHROMIUM = require_tool("chromium", "apt-get install chromium; make setup-dev does")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install -e '.[dev]')")

from fetalhc.api import create_app  # noqa: E402
from fetalhc.api.readout import readout_for_ellipse  # noqa: E402
from fetalhc.ellipse import Ellipse  # noqa: E402
from web_helpers import phantom_png, running_server  # noqa: E402

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
PIXEL_SIZE = "0.15"
GA = "22"


@pytest.fixture(scope="module")
def base_url(model_path):
    with running_server(create_app()) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def png():
    return phantom_png(seed=5)


@pytest.fixture(scope="module")
def api_reading(base_url, png):
    r = httpx.post(f"{base_url}/api/measure", files={"image": ("h.png", png, "image/png")},
                   data={"pixel_size_mm": PIXEL_SIZE, "ga_weeks": GA}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def _page(browser, base_url, width, height=900):
    page = browser.new_page(viewport={"width": width, "height": height}, accept_downloads=True)
    page.goto(base_url + "/")
    return page


def _measure(page, png, pixel_size=PIXEL_SIZE, ga=GA):
    page.get_by_test_id("image-input").set_input_files({"name": "head.png", "mimeType": "image/png", "buffer": png})
    page.get_by_test_id("pixel-size-input").fill(pixel_size)
    page.get_by_test_id("ga-input").fill(ga)
    page.get_by_test_id("measure-button").click()
    sync_api.expect(page.get_by_test_id("hc-value")).not_to_be_empty(timeout=60_000)


def _drag(page, testid, dx, dy):
    box = page.get_by_test_id(testid).bounding_box()
    assert box is not None, f"{testid} is not visible"
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx, y + dy, steps=8)
    page.mouse.up()


def _wait_value_change(page, testid, old):
    page.wait_for_function("([id, old]) => { const e = document.querySelector(`[data-testid=${id}]`);"
                           " return e && e.textContent.trim() !== '' && e.textContent.trim() !== old; }",
                           arg=[testid, old], timeout=20_000)
    return page.get_by_test_id(testid).text_content().strip()


def _download(page, testid):
    with page.expect_download(timeout=60_000) as info:
        page.get_by_test_id(testid).click()
    return Path(info.value.path()).read_bytes()


def test_measure_drag_reset_and_downloads(browser, base_url, png, api_reading):
    page = _page(browser, base_url, 1280)
    _measure(page, png)
    hc_text = page.get_by_test_id("hc-value").text_content()
    # the HC in mm, one decimal, nothing else; the same as the API's automatic reading
    assert hc_text == f"{api_reading['result']['hc_mm']:.1f}"
    assert page.get_by_test_id("status").text_content() == api_reading["result"]["status"] == "ok"
    assert "weeks" in page.get_by_test_id("ga-hadlock").text_content()
    assert "+" in page.get_by_test_id("ga-intergrowth").text_content()  # weeks+days
    assert "user" in page.get_by_test_id("pixel-size").text_content()
    assert page.get_by_test_id("centile").is_visible()
    assert page.get_by_test_id("hc-band").text_content().startswith(api_reading["display"]["hc_band_mm"])
    assert page.get_by_test_id("edited").is_hidden()
    assert page.get_by_test_id("reset-button").is_disabled()
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280

    # lengthen the major axis: HC, OFD and the edited mark change
    ofd_before = page.get_by_test_id("ofd-value").text_content()
    _drag(page, "ellipse-handle-major", 60, 0)
    hc_major = _wait_value_change(page, "hc-value", hc_text)
    assert float(hc_major) != float(hc_text)
    assert page.get_by_test_id("edited").is_visible()
    assert page.get_by_test_id("ofd-value").text_content() != ofd_before

    # the minor axis and the centre too
    _drag(page, "ellipse-handle-minor", 0, 40)
    hc_minor = _wait_value_change(page, "hc-value", hc_major)
    bpd_edit = page.get_by_test_id("bpd-value").text_content()
    _drag(page, "ellipse-handle-center", -30, 10)
    page.wait_for_timeout(600)  # moving the centre keeps the HC; wait for the debounced read-out
    assert page.get_by_test_id("hc-value").text_content() == hc_minor

    # downloads carry the edited reading, computed by the package's own functions
    data = json.loads(_download(page, "download-json"))
    res = data["result"]
    assert data["edited"] is True and res["edited"] is True
    assert any(f.startswith("edited:") for f in data["flags"])
    assert f"{res['hc_mm']:.1f}" == hc_minor
    assert f"{res['bpd_mm']:.1f} mm" == bpd_edit
    expect = readout_for_ellipse(Ellipse(res["center_x_px"], res["center_y_px"], res["semi_axis_a_px"],
                                         res["semi_axis_b_px"], res["angle_deg"]), float(PIXEL_SIZE), float(GA),
                                 (540, 800))
    assert res["hc_mm"] == pytest.approx(expect.hc_mm, abs=1e-3)
    auto = data["automatic_result"]
    assert res["center_x_px"] < auto["center_x_px"] - 5  # the centre moved left
    assert data["model"]["sha256"] == api_reading["model"]["sha256"]

    rows = list(csv.DictReader(io.StringIO(_download(page, "download-csv").decode())))
    assert len(rows) == 1 and rows[0]["edited"] == "True"
    assert f"{float(rows[0]['hc_mm']):.1f}" == hc_minor and rows[0]["file"] == "upload"

    pdf_edit = _download(page, "download-pdf")
    assert pdf_edit.startswith(b"%PDF") and pdf_edit.count(b"/Type /Page\n") + pdf_edit.count(b"/Type /Page ") == 1

    # reset restores the automatic ellipse and values
    page.get_by_test_id("reset-button").click()
    sync_api.expect(page.get_by_test_id("edited")).to_be_hidden()
    assert page.get_by_test_id("hc-value").text_content() == hc_text
    data = json.loads(_download(page, "download-json"))
    assert data["edited"] is False and f"{data['result']['hc_mm']:.1f}" == hc_text
    pdf_auto = _download(page, "download-pdf")
    assert pdf_auto.startswith(b"%PDF") and pdf_auto != pdf_edit  # the edited ellipse shows in its report
    assert page.get_by_test_id("download-sr").is_hidden()  # PNG input: no SR
    page.close()


@pytest.mark.parametrize(
    ("payload", "pixel_size", "needle"),
    [
        ({"name": "notes.txt", "mimeType": "text/plain", "buffer": b"patient notes"}, PIXEL_SIZE,
         "unsupported file type"),
        ({"name": "broken.png", "mimeType": "image/png", "buffer": b"\x89PNG\r\n\x1a\n" + b"\0" * 20}, PIXEL_SIZE,
         "not a readable image"),
        ({"name": "empty.png", "mimeType": "image/png", "buffer": b""}, PIXEL_SIZE, "empty"),
        (None, "-1", "pixel_size_mm: Input should be greater than"),  # a FastAPI 422 list, rendered
    ],
)
def test_bad_upload_messages(browser, base_url, png, payload, pixel_size, needle):
    page = _page(browser, base_url, 1280)
    page.get_by_test_id("image-input").set_input_files(payload or {"name": "h.png", "mimeType": "image/png",
                                                                    "buffer": png})
    page.get_by_test_id("pixel-size-input").fill(pixel_size)
    page.get_by_test_id("measure-button").click()
    err = page.get_by_test_id("error")
    sync_api.expect(err).to_be_visible(timeout=30_000)
    text = err.text_content()
    assert needle in text and "[object Object]" not in text and "/tmp" not in text
    page.close()


def test_no_file_chosen(browser, base_url):
    page = _page(browser, base_url, 1280)
    page.get_by_test_id("measure-button").click()
    sync_api.expect(page.get_by_test_id("error")).to_contain_text("Choose an image")
    page.close()


def test_tablet_width(browser, base_url, png):
    page = _page(browser, base_url, 768, 1024)
    _measure(page, png)
    # nothing wider than the screen; image above the values; the handles can be dragged
    assert page.evaluate("document.documentElement.scrollWidth") <= 768
    img = page.get_by_test_id("image").bounding_box()
    table = page.get_by_test_id("hc-value").bounding_box()
    assert img["width"] > 600 and table["y"] > img["y"] + img["height"]
    hc = page.get_by_test_id("hc-value").text_content()
    _drag(page, "ellipse-handle-minor", 0, -25)
    assert _wait_value_change(page, "hc-value", hc) != hc
    assert page.get_by_test_id("edited").is_visible()
    page.close()


def test_dicom_pixel_size_shown_with_its_source(browser, base_url, tmp_path):
    from dicom_builder import us_region, write_us_dicom
    from fetalhc.api import exports
    from fetalhc.phantom import make_phantom

    img, _ = make_phantom(540, 800, seed=3)
    dcm = write_us_dicom(tmp_path / "x.dcm", img, PatientName="Doe^Jane",
                         SequenceOfUltrasoundRegions=[us_region((0, 0, 799, 539), (0.015, 0.015))]).read_bytes()
    page = _page(browser, base_url, 1280)
    page.get_by_test_id("image-input").set_input_files({"name": "x.dcm", "mimeType": "application/dicom",
                                                        "buffer": dcm})
    page.get_by_test_id("measure-button").click()
    sync_api.expect(page.get_by_test_id("hc-value")).not_to_be_empty(timeout=60_000)
    assert "from the DICOM file" in page.get_by_test_id("pixel-size-source").text_content()
    assert "0.15 mm (source: dicom:SequenceOfUltrasoundRegions)" in page.get_by_test_id("pixel-size").text_content()
    if exports.sr_available():
        assert page.get_by_test_id("download-sr").is_visible()
        assert _download(page, "download-sr")[128:132] == b"DICM"
    else:
        assert "not installed" in page.get_by_test_id("sr-note").text_content()
    # the patient name in the header is never shown (base64 image data may contain any 3 letters)
    text = page.inner_text("body")
    assert "Doe" not in text and "Jane" not in text
    page.close()
