# Set-up commands: `make run` starts Spyglass, `make test` runs every check.
# Both create (or reuse) the virtualenv in .venv and install what is missing.
PYTHON ?= python3
VENV ?= .venv
DATA_DIR ?= ./spyglass-data
PORT ?= 9292
# One stamp per install: `make run` installs what serving needs, `make test` adds the test tools
# and the openstack client plugin (osc-plugin/, a distribution of its own).
CKSUM := $(shell cat pyproject.toml osc-plugin/pyproject.toml | cksum | cut -d' ' -f1)
SERVE_STAMP := $(VENV)/.serve-$(CKSUM)
STAMP := $(VENV)/.installed-$(CKSUM)

.PHONY: run test lint typecheck unit unit-postgres venv serve-venv screenshots tempest

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip

$(SERVE_STAMP): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install -q -e .
	rm -f $(VENV)/.serve-* && touch $@

$(STAMP): pyproject.toml osc-plugin/pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install -q -e '.[test]' -e ./osc-plugin
	rm -f $(VENV)/.installed-* $(VENV)/.serve-* && touch $@ $(SERVE_STAMP)

serve-venv: $(SERVE_STAMP)

venv: $(STAMP)

run: serve-venv
	$(VENV)/bin/spyglass --data-dir $(DATA_DIR) serve --port $(PORT) --demo

lint: venv
	$(VENV)/bin/ruff check spyglass osc-plugin tests bench scripts
	$(VENV)/bin/ruff format --check spyglass osc-plugin tests bench scripts
	$(VENV)/bin/lint-imports

typecheck: venv
	$(VENV)/bin/mypy

# Tests run in parallel worker processes (pytest-xdist); a worker that runs out of tests takes
# some from a busy one, so the long end-to-end tests do not end up queued behind each other.
# TEST_WORKERS=0 runs them in one process.
TEST_WORKERS ?= 4
PYTEST = $(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist worksteal
# End-to-end tests that run again on PostgreSQL: the sharing workflow through the openstack CLI,
# openstacksdk and glanceclient, restart and crash recovery, failed uploads. The other CLI tests
# go through the same SQL as the in-process tests, which run there whole.
POSTGRES_E2E = $(addprefix tests/e2e/,test_sharing_cli.py test_images_sdk.py \
	test_images_glanceclient.py test_restart.py test_crash_recovery.py test_upload_failures.py \
	test_smoke_cli.py test_nova_cinder_glanceclient.py)

# The longest modules go first: one worker starts on them at once while the others share the rest
# (and take work back from it), instead of one worker running them alone at the end.
SLOW_FIRST = tests/e2e/test_keystone_bus_cli.py tests/e2e/test_keystone_cli.py \
	tests/identity/test_keystone_service_tokens.py tests/e2e/test_readme_quickstart.py \
	tests/e2e/test_dashboard_browser.py

# The whole suite on SQLite (the embedded default), with one real Swift for the Swift and S3 stores...
unit: venv
	scripts/ensure-qemu-img.sh >/dev/null
	scripts/ensure-chromium.sh >/dev/null
	scripts/ensure-axe.sh >/dev/null
	# The real Keystone of the identity = "keystone" tests, installed and started before they run.
	scripts/ensure-keystone.sh >/dev/null
	scripts/ensure-rabbitmq.sh >/dev/null
	scripts/with-swift.sh $(PYTEST) $(SLOW_FIRST) tests

# ...and every test that reaches the database, and POSTGRES_E2E, again on a real PostgreSQL server.
POSTGRES_TESTS = tests/api tests/identity tests/images tests/data tests/sharing tests/audit tests/metadefs
# (The external Keystone's tests run once, in the SQLite pass: what they check is Keystone's side.)
unit-postgres: venv
	SPYGLASS_TEST_POSTGRES=$$(scripts/ensure-postgres.sh) $(PYTEST) $(POSTGRES_TESTS) $(POSTGRES_E2E) \
		--ignore-glob='tests/identity/test_keystone_*'


test: lint typecheck unit unit-postgres

# The dashboard screenshots in docs/, shown in the README (regenerated, never drawn by hand).
screenshots: venv
	scripts/ensure-chromium.sh >/dev/null
	$(VENV)/bin/python scripts/dashboard_screenshots.py

# The conformance suite's image tests (Tempest from PyPI, in its own virtualenv) against a fresh
# `spyglass serve` with pre-provisioned accounts; run by hand, not part of `make test`.
TEMPEST_VENV ?= .venv-tempest
$(TEMPEST_VENV)/bin/tempest:
	test -x $(TEMPEST_VENV)/bin/python || $(PYTHON) -m venv $(TEMPEST_VENV)
	$(TEMPEST_VENV)/bin/pip install -q tempest

tempest: venv $(TEMPEST_VENV)/bin/tempest
	scripts/ensure-qemu-img.sh >/dev/null
	$(VENV)/bin/python scripts/tempest.py --tempest $(TEMPEST_VENV)/bin/tempest
