"""Shared fixtures: synthetic phantoms, the shipped model, and HC18 (skipped when absent)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import pytest

from fetalhc.ellipse import Ellipse
from fetalhc.hc18 import default_data_dir
from fetalhc.phantom import make_phantom
from fetalhc.segment import default_model_path

#: the outer skull ellipse of the shared phantom (pixels of a 540 x 800 image)
PHANTOM_TRUTH = Ellipse(400.0, 270.0, 250.0, 195.0, 15.0)


def require_tool(name: str, how: str) -> str:
    """The path of the program ``name``. Where it is missing the test is skipped with ``how`` to
    install it, except under FETALHC_REQUIRE_TOOLS=1 (CI, after ``make setup-dev`` installed
    everything), where it fails: a missing install step must not pass silently."""
    exe = os.environ.get(f"FETALHC_{name.upper()}") or shutil.which(name)
    if exe:
        return exe
    msg = f"{name} not installed ({how})"
    if os.environ.get("FETALHC_REQUIRE_TOOLS") == "1":
        pytest.fail(msg + " and FETALHC_REQUIRE_TOOLS=1", pytrace=False)
    pytest.skip(msg, allow_module_level=True)
    raise AssertionError  # unreachable: skip raises


@pytest.fixture(scope="session")
def hc18_dir() -> Path:
    d = default_data_dir()
    if d is None:
        pytest.skip("HC18 not found: set FETALHC_DATA or put it at ../shared/data/hc18")
    return d


@pytest.fixture(scope="session")
def model_path() -> Path:
    p = default_model_path()
    if not p.is_file():
        pytest.fail(f"the shipped model is missing: {p}")
    return p


@pytest.fixture(scope="session")
def phantom_png(tmp_path_factory) -> Path:
    """A 540 x 800 synthetic skull phantom (speckle, ellipse :data:`PHANTOM_TRUTH`) as PNG."""
    d = tmp_path_factory.mktemp("ph")
    img, _ = make_phantom(540, 800, PHANTOM_TRUTH, seed=7)
    p = d / "phantom.png"
    cv2.imwrite(str(p), img)
    return p
