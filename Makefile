# near-intents-indexer: everyday commands.
#
#   make run      run the daemon on the embedded store (chdb://./data by default)
#   make test     install the test dependencies and run the test suite
#   make bench    run the benchmark scripts in benchmarks/ (they print their measurements)
#   make clean    remove the virtualenv, build output and caches (keeps ./data)
#
# Variables (pass on the command line, e.g. `make run ARGS="--source neardata --start-block 130000000"`):
#   ARGS         extra arguments for `intents-indexer run`
#   STORE        store DSN for `make run` (default: $INDEXER_STORE, else chdb://./data)
#   PYTEST_ARGS  extra arguments for pytest, e.g. PYTEST_ARGS="-k lake -x"
#   TEST_WORKERS pytest-xdist worker processes (default auto: one per core; 0 runs in this process)
#   BENCH        benchmark names to run, e.g. BENCH=decode or BENCH="decode s3_source" (default: all)
#   BENCH_ARGS   extra arguments for the benchmark scripts, e.g. make bench BENCH=decode BENCH_ARGS="--rounds 5"
#   PYTHON       interpreter used to create the virtualenv (default python3, 3.11 or newer)
#   VENV         virtualenv folder (default .venv)

PYTHON      ?= python3
VENV        ?= .venv
STORE       ?= $(or $(INDEXER_STORE),chdb://./data)
ARGS        ?=
PYTEST_ARGS ?=
TEST_WORKERS ?= auto
BENCH       ?=
BENCH_ARGS  ?=
PIP_FLAGS   ?= --disable-pip-version-check --progress-bar off

BIN   := $(VENV)/bin
PY    := $(BIN)/python
PIP_INSTALL := $(PY) -m pip install $(PIP_FLAGS)

# Stamp files: an install is redone only when pyproject.toml changes (or the venv is new).
STAMP_RUN   := $(VENV)/.stamp-install
STAMP_TEST  := $(VENV)/.stamp-install-test
STAMP_BENCH := $(VENV)/.stamp-install-bench

.DEFAULT_GOAL := help
.PHONY: help run test test-deps bench install install-test install-bench clean

help:
	@echo "make run     run the indexer daemon on $(STORE) (ARGS=... for more flags)"
	@echo "make test    install test dependencies into $(VENV) and run the tests (PYTEST_ARGS=...)"
	@echo "make bench   run the benchmarks in benchmarks/ (BENCH=name BENCH_ARGS=...)"
	@echo "make clean   remove $(VENV), build output and caches (keeps ./data)"

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP_RUN): pyproject.toml | $(PY)
	$(PIP_INSTALL) -e .
	@touch $@

$(STAMP_TEST): pyproject.toml | $(PY)
	$(PIP_INSTALL) -e '.[test]'
	@touch $@ $(STAMP_RUN)

$(STAMP_BENCH): pyproject.toml | $(PY)
	$(PIP_INSTALL) -e '.[bench]'
	@touch $@ $(STAMP_RUN)

install: $(STAMP_RUN)
install-test: $(STAMP_TEST)
install-bench: $(STAMP_BENCH)

# exec: the daemon replaces the recipe's shell, so Ctrl-C and SIGTERM reach it directly (it then
# finishes the current batch and writes the checkpoint) and make waits for it to exit.
run: $(STAMP_RUN)
	exec $(BIN)/intents-indexer run --store '$(STORE)' $(ARGS)

# The tests run real servers: redis-server, Prometheus (promtool), Alertmanager (amtool) and
# docker-compose (to validate docker-compose.yml). Missing ones are installed with apt-get when
# this runs as root on Debian/Ubuntu (as .ci/run does); otherwise make says what to install.
TEST_PACKAGES := redis-server:redis-server promtool:prometheus amtool:prometheus-alertmanager docker-compose:docker-compose

test-deps:
	@missing=""; for pair in $(TEST_PACKAGES); do \
		command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing Debian packages the tests need:$$missing"; \
			DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing \
				|| { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; }; \
		else \
			echo "the tests need these packages: sudo apt-get install$$missing" >&2; exit 2; \
		fi; \
	fi

# --dist loadfile keeps each test module on one worker: a module's fixtures (a simulated lake, the
# clean run its kill -9 tests compare against) are then built once, not once per worker.
test: $(STAMP_TEST) test-deps
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

bench: $(STAMP_BENCH)
	@set -e; ran=0; \
	for script in $(if $(BENCH),$(patsubst %,benchmarks/%.py,$(BENCH)),benchmarks/*.py); do \
		[ -f "$$script" ] || { echo "no such benchmark: $$script" >&2; exit 2; }; \
		grep -q '__name__ == "__main__"' "$$script" || continue; \
		echo "==> $(PY) $$script $(BENCH_ARGS)"; \
		$(PY) "$$script" $(BENCH_ARGS); ran=1; \
	done; \
	[ "$$ran" = 1 ] || echo "no benchmark scripts in benchmarks/"

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache benchmarks/out
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
