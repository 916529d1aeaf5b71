# The two commands a newcomer runs: `make run` and `make test`. Both create .venv themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONF ?= conf/demo

.PHONY: run test lint bench clean

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
	$(BIN)/bulkhead run --conf $(CONF)

test: $(BIN)/.installed-test
	$(BIN)/ruff check switch schemes hsm processors atmp settlement tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

lint: $(BIN)/.installed-test
	$(BIN)/ruff check switch schemes hsm processors atmp settlement tests bench
	$(BIN)/mypy

bench: $(BIN)/.installed-test
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var build *.egg-info
