# One command to see it work, one to check it: `make demo`, `make test`.
# `make bench` measures it and writes BENCHMARKS.md (BENCH_ARGS=--quick for a rough run).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The project and its runtime dependencies (enough for the demo).
$(VENV)/.installed-base: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

# Plus the test extras (pytest, ruff, ...).
$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-base

# Plus the benchmarks' extras (profiler).
$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $@ $(VENV)/.installed-test $(VENV)/.installed-base

demo: $(VENV)/.installed-base
	$(BIN)/python -m tmapi_crawler.demo

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# In TEST_WORKERS processes (pytest-xdist; every test has its own ports,
# servers and directories), each taking the next test as it is free
# (worksteal: the long crawls do not hold one process up while another idles;
# tests/conftest.py starts the longest first on each). Three are faster on
# two cores (5:17 against 6:20): the crawls wait on the simulator's latency.
# TEST_ARGS for more: make test TEST_ARGS='tests/contract -x'.
TEST_WORKERS ?= 3
test: lint
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal $(TEST_ARGS)

bench: $(VENV)/.installed-bench
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
