# fetalhc developer commands. `make demo` measures an image with the shipped model;
# `make test` runs ruff, mypy and the test suite. Both set up .venv first.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export NO_ALBUMENTATIONS_UPDATE := 1

.PHONY: demo test bench bench-load setup setup-dev tesseract chromium clean

$(BIN)/fetalhc:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .

setup: $(BIN)/fetalhc

$(VENV)/.dev: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -e ".[train,dev]"
	touch $@

setup-dev: $(VENV)/.dev tesseract chromium

# Tesseract OCR (Debian) for the de-identification proof; skipped where apt is unavailable.
tesseract:
	@command -v tesseract >/dev/null || { command -v apt-get >/dev/null && (apt-get update -qq && apt-get install -y -qq tesseract-ocr >/dev/null) || echo "tesseract not installed: OCR tests will skip"; }

# Chromium (Debian) for the web page tests (Playwright drives /usr/bin/chromium; no browser download);
# skipped where apt is unavailable.
chromium:
	@command -v chromium >/dev/null || { command -v apt-get >/dev/null && (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "chromium not installed: web page tests will skip"; }

demo: setup
	$(BIN)/fetalhc demo

test: setup-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

bench: setup-dev
	$(BIN)/python benchmarks/bench_measure.py

bench-load: setup-dev
	$(BIN)/python benchmarks/load_api.py --json benchmarks/load_results.json

clean:
	rm -rf $(VENV) build dist *.egg-info
