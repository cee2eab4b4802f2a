# The two commands of the README: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install serve test lint format schema bench lock image-test clean

install: $(STAMP)

# Reinstall only when the dependency list changes; the project itself is installed editable.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

serve: $(STAMP)
	$(BIN)/lain-console serve

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Benchmarks print tables (bench/RESULTS.md); BENCH_ARGS passes flags, e.g. BENCH_ARGS=--quick.
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

# requirements.lock pins (with hashes) what the image installs; run this after changing the
# [project] dependencies (LOCK_ARGS=--upgrade moves every pin to the newest allowed). uv is
# installed into .venv only for this: make test installs from pyproject.toml and needs none.
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet 'uv==0.13.9'
	$(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
		$(LOCK_ARGS) -o requirements.lock pyproject.toml

# Builds the Dockerfile's image and runs a console and one deploy in it (buildah, as root).
image-test:
	.ci/image-test

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .lain-console
