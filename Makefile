# The task list: `make help`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: help install run test lint bench clean

help:  ## this list
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(BIN)/authz: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(BIN)/authz

install: $(BIN)/authz  ## create .venv and install authz with its dev tools

# Development mode, on the embedded store under ./instance, answering on http://$(HOST):$(PORT).
RUN_ENV := AUTHZ_DEV_MODE=1 AUTHZ_ISSUER=http://$(HOST):$(PORT) \
	AUTHZ_PORTAL_URL=http://$(HOST):$(PORT)/portal

run: install  ## seed the demo practice and family (instance/demo.json, demo.env) and serve on $(HOST):$(PORT)
	$(RUN_ENV) $(BIN)/authz init --demo
	$(RUN_ENV) $(BIN)/authz serve --host $(HOST) --port $(PORT)

# Three test workers on two cores: the suite waits on servers, browsers and timeouts, which left
# the cores 35 % idle with two workers (81 % busy with three; four were no faster).
test: install  ## lint, type-check and run the whole test suite
	$(BIN)/ruff check .
	$(BIN)/mypy authz api
	$(BIN)/pytest -q -n 3

bench: install  ## run every benchmark and print the tables
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache
