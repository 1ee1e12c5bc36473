# The README's commands. Each does its own set-up on a fresh clone (tools/bootstrap.sh).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup test test-all lint demo bench sim clean

setup:
	@VENV=$(VENV) bash tools/bootstrap.sh

## The test command (.ci/run runs exactly this).
test: setup
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: setup
	$(PY) -m pytest $(PYTEST_ARGS)

## The main job: produce 200,000 records to an embedded broker and verify them all.
demo: setup
	$(PY) -m aioproducer demo $(DEMO_ARGS)

## Side-by-side benchmarks (results under benchmarks/results/).
bench: setup
	$(PY) benchmarks/run.py $(BENCH_ARGS)

## Deterministic simulation (tests/sim): the real producer against a simulated cluster.
SIM_SEEDS ?= 2000
sim: setup
	$(PY) -m tests.sim --seeds $(SIM_SEEDS)

## ruff (rules and formatting) over the code, benchmarks and tools; mypy --strict over the
## package and the tests (pyproject's [tool.mypy]). .ci/run runs it beside `make test`.
LINT_PATHS := aioproducer tests benchmarks tools
lint: setup
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
