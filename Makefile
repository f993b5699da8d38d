# fetalhc developer commands. `make demo` measures an image with the shipped model;
# `make test` runs ruff, mypy and the test suite. Both set up .venv first.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export NO_ALBUMENTATIONS_UPDATE := 1

.PHONY: demo test bench bench-load setup setup-dev system-deps clean

$(BIN)/fetalhc:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .

setup: $(BIN)/fetalhc

$(VENV)/.dev: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -e ".[train,dev]"
	touch $@

setup-dev: $(VENV)/.dev system-deps

# System tools the tests use, from Debian: Tesseract (de-identification proof), dicom3tools and
# DCMTK (dciodvfy / dsrdump validate the DICOM SR), Chromium (web page tests, driven by Playwright
# at /usr/bin/chromium; no browser download). One apt-get for whatever is missing; where apt is
# unavailable their tests skip, except under FETALHC_REQUIRE_TOOLS=1 (CI), where they fail.
system-deps:
	@missing=""; for c in tesseract:tesseract-ocr dciodvfy:dicom3tools dsrdump:dcmtk chromium:chromium; do \
		command -v $${c%%:*} >/dev/null || missing="$$missing $${c##*:}"; done; \
	if [ -n "$$missing" ]; then \
		if command -v apt-get >/dev/null; then apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; \
		else echo "not installed:$$missing (their tests skip)"; fi; fi

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
