# flambe developer commands. `make install` builds .venv (torch CPU 2.13.0 first, then flambe[dev]).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install test test-all bench lint quickstart clean

install: $(BIN)/flambe

$(BIN)/flambe: setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/flambe

test: install
	$(BIN)/pytest -q

test-all: install
	$(BIN)/pytest -q -m "slow or not slow"

bench: install
	$(BIN)/python tests/benchmarks/run_all.py

lint: install
	$(BIN)/ruff check flambe tests extensions

quickstart: install
	$(BIN)/flambe configs/quickstart.yaml --force

clean:
	rm -rf flambe-output .pytest_cache build *.egg-info
