"""Shared fixtures: synthetic phantoms, the shipped model, and HC18 (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fetalhc.hc18 import default_data_dir
from fetalhc.segment import default_model_path


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
