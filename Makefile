# The README's commands. Each does its own set-up on a fresh clone (tools/bootstrap.sh).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup test test-all test-packaging lint demo bench sim docs clean

setup:
	@VENV=$(VENV) bash tools/bootstrap.sh

## The tests whose record paths follow the selected appender, run again on the pure-Python one
## (AIOPRODUCER_PURE_PYTHON=1): the accumulator (new batches, splits), the sender, send() and
## the producer against the fake broker, the record handles. The builder's own tests
## (test_records, test_record_appender_safety, test_handles) run on both appenders in the
## main run already; test_handles is here for its check that the selection took. About 15 s.
PURE_PYTHON_TESTS := \
	tests/unit/test_handles.py \
	tests/unit/test_handle_future_protocol.py \
	tests/unit/test_public_api.py \
	tests/unit/test_accumulator.py \
	tests/unit/test_sender.py \
	tests/unit/test_sender_failure_paths.py \
	tests/unit/test_send_validation.py \
	tests/unit/test_producer_facade.py \
	tests/unit/test_metrics.py \
	tests/unit/test_memory_pool.py \
	tests/unit/test_incremental_allocation.py \
	tests/unit/test_event_loop.py \
	tests/unit/test_unknown_topic.py \
	tests/faults/test_catalogue_fake_broker.py \
	tests/faults/test_lifecycle_failure_paths.py
PURE_PYTHON_RUN = AIOPRODUCER_PURE_PYTHON=1 $(PY) -m pytest -m "not slow" $(PURE_PYTHON_TESTS)

## The test command (.ci/run runs exactly this): the suite, then the pure-Python appender run.
test: setup
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)
	$(PURE_PYTHON_RUN)

test-all: setup
	$(PY) -m pytest $(PYTEST_ARGS)
	$(PURE_PYTHON_RUN)

## The sdist and the wheel (python -m build), installed into fresh virtualenvs with and
## without a C compiler (tests/packaging). About 1.5 minutes; .ci/run runs it as its own step.
test-packaging: setup
	$(PY) -m pytest -m packaging tests/packaging $(PYTEST_ARGS)

## The documentation site (mkdocs.yml) into build/site; --strict: any warning fails it.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

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
LINT_PATHS := aioproducer tests benchmarks tools examples
lint: setup
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
