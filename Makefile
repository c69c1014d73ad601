# Set-up commands: `make run` starts Spyglass, `make test` runs every check.
# Both create (or reuse) the virtualenv in .venv and install what is missing.
PYTHON ?= python3
VENV ?= .venv
DATA_DIR ?= ./spyglass-data
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint typecheck unit unit-postgres venv

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

run: venv
	$(VENV)/bin/spyglass --data-dir $(DATA_DIR) serve --demo

lint: venv
	$(VENV)/bin/ruff check spyglass spyglass_osc tests bench
	$(VENV)/bin/ruff format --check spyglass spyglass_osc tests bench

typecheck: venv
	$(VENV)/bin/mypy

# The whole suite on SQLite (the embedded default)...
unit: venv
	scripts/ensure-qemu-img.sh >/dev/null
	$(VENV)/bin/pytest -q

# ...and the API, identity, visibility and end-to-end tests again on a real PostgreSQL server.
unit-postgres: venv
	SPYGLASS_TEST_POSTGRES=$$(scripts/ensure-postgres.sh) $(VENV)/bin/pytest -q tests/api tests/identity tests/test_visibility.py tests/e2e

test: lint typecheck unit unit-postgres
