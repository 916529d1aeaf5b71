# The two commands a newcomer runs: `make run` and `make test`. Both create .venv themselves. `make test` runs
# ruff, mypy --strict, the import contracts of .importlinter (the dependency rule) and the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONF ?= conf/demo

.PHONY: run test lint bench faults clean

$(BIN)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(BIN)/.installed-test: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

run: $(BIN)/.installed
	$(BIN)/bulkhead db upgrade --conf $(CONF)
	$(BIN)/bulkhead cell seed --conf $(CONF)
	$(BIN)/bulkhead atm seed --conf $(CONF)
	$(BIN)/bulkhead run --conf $(CONF)

test: $(BIN)/.installed-test
	$(BIN)/ruff check switch schemes hsm processors atmp settlement tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -q

lint: $(BIN)/.installed-test
	$(BIN)/ruff check switch schemes hsm processors atmp settlement tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# `make bench` runs the codec figures and every end-to-end scenario (bench/__main__.py); BENCH_ARGS passes
# options, e.g. BENCH_ARGS="scenario fin-sim --duration 60 --rate 5000". The venv's interpreter runs it: to
# measure another one, give it a venv of its own, e.g. `make bench PYTHON=/usr/bin/python3 VENV=.venv-system`.
# A PYTHON given without such a VENV is refused rather than silently ignored.
BENCH_ARGS ?=
bench: $(BIN)/.installed-test
ifneq ($(filter command line environment,$(origin PYTHON)),)
	@want=$$($(PYTHON) -c 'import os, sys; print(os.path.realpath(sys.executable))'); \
	have=$$($(BIN)/python -c 'import os, sys; print(os.path.realpath(sys._base_executable))'); \
	if [ "$$want" != "$$have" ]; then \
		echo "make bench: $(VENV) runs $$have, not PYTHON=$(PYTHON) ($$want); add VENV=.venv-<name>" >&2; exit 2; \
	fi
endif
	$(BIN)/python -m bench $(BENCH_ARGS)

# `make faults`: the fault test's long form (bench/faults.py): the node and its cells killed at random moments
# under load for FAULT_ROUNDS rounds, then every card's money checked against what the acquirer saw. Exit 1 on any
# violation. Its short form runs in `make test` (tests/integration/test_faults.py).
FAULT_ROUNDS ?= 20
faults: $(BIN)/.installed-test
	$(BIN)/python -m bench faults --rounds $(FAULT_ROUNDS) $(FAULT_ARGS)

clean:
	rm -rf $(VENV) var build *.egg-info
