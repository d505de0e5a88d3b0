# The two quick-start commands (see README): `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_HOME := $(CURDIR)/.sluice-demo
# The demo server's port: `make demo PORT=8080`.
PORT ?= 4200

.PHONY: demo test lint install bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Everything `make test` needs: the plain install (engine, CLI, server, UI,
# client, PostgreSQL) plus Dask and the dev tools. The distribution used to be
# called `sluice`: that editable install (and its src/sluice.egg-info) would
# shadow this one's metadata.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	rm -rf src/sluice.egg-info
	$(BIN)/pip uninstall --quiet --yes sluice 2>/dev/null || true
	$(BIN)/pip install --quiet -e ".[dev,dask]"
	touch $@ $(VENV)/.installed-demo

# What the demo needs and nothing more: the plain install (no pytest, mypy,
# Django, Playwright or Dask).
$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	rm -rf src/sluice.egg-info
	$(BIN)/pip uninstall --quiet --yes sluice 2>/dev/null || true
	$(BIN)/pip install --quiet -e .
	touch $@

install: $(VENV)/.installed

## Run the demo flow into a fresh embedded store, show what was recorded, then
## serve that store on http://127.0.0.1:$(PORT) (Ctrl-C stops the server).
demo: $(VENV)/.installed-demo
	rm -rf $(DEMO_HOME)
	SLUICE_HOME=$(DEMO_HOME) $(BIN)/python examples/demo.py
	@echo
	SLUICE_HOME=$(DEMO_HOME) $(BIN)/sluice flow-run ls
	@echo
	SLUICE_HOME=$(DEMO_HOME) $(BIN)/sluice flow-run inspect \
	  $$(SLUICE_HOME=$(DEMO_HOME) $(BIN)/sluice flow-run ls --flow-name etl-pipeline --limit 1 -o json \
	     | $(BIN)/python -c "import json,sys; print(json.load(sys.stdin)[0]['id'])")
	@echo
	@echo "Recorded in $(DEMO_HOME)/sluice.db. Try: SLUICE_HOME=$(DEMO_HOME) $(BIN)/sluice flow-run logs <id>"
	@echo
	@echo "Serving it: web UI http://127.0.0.1:$(PORT)/, API /api, OpenAPI docs /docs (Ctrl-C to stop)"
	SLUICE_HOME=$(DEMO_HOME) $(BIN)/sluice server start --host 127.0.0.1 --port $(PORT)

## Lint, type-check, check the layer contract (docs/architecture.md) and run the
## whole test suite.
test: $(VENV)/.installed
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests bench examples
	$(BIN)/mypy
	$(BIN)/lint-imports

## Sluice vs Prefect 3.9.1 benchmarks (creates bench/.prefect-venv on first use).
bench: $(VENV)/.installed
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) $(DEMO_HOME) .pytest_cache .mypy_cache .ruff_cache
