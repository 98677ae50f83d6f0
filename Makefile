# Every target sets itself up: a fresh clone needs only python3 (>= 3.11) and make.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench bench-smoke clean sandbox

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/reconciler demo --report demo-report.html

test: $(STAMP) lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider
	$(MAKE) --no-print-directory bench-smoke

lint: $(STAMP)
	$(BIN)/ruff check reconciler tests benchmarks
	$(BIN)/ruff format --check reconciler tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy reconciler

sandbox: $(STAMP)
	$(BIN)/reconciler sandbox --systems ozmap,ixc --seed 42 --scale 1000 --write-config sandbox.toml

bench: $(STAMP)
	$(BIN)/pip install --quiet -e ".[dev,bench]"
	$(BIN)/python -m benchmarks.run
	$(BIN)/python -m benchmarks.run --entity client-coordinates --scales 10000,100000 --peer-scale 0 --state-rows 10000 --name clients

bench-smoke: $(STAMP)
	$(BIN)/python -m benchmarks.run --smoke

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache demo-report.html
