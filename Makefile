# Set-up commands: `make run` starts Spyglass, `make test` runs every check.
# Both create (or reuse) the virtualenv in .venv and install what is missing.
PYTHON ?= python3
VENV ?= .venv
DATA_DIR ?= ./spyglass-data
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint typecheck unit venv

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

run: venv
	$(VENV)/bin/spyglass --data-dir $(DATA_DIR) serve --demo

lint: venv
	$(VENV)/bin/ruff check spyglass tests bench
	$(VENV)/bin/ruff format --check spyglass tests bench

typecheck: venv
	$(VENV)/bin/mypy

unit: venv
	$(VENV)/bin/pytest -q

test: lint typecheck unit
