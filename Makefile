# Anakinra CDS. Two commands do everything from a fresh clone:
#   make run    virtualenv, pinned dependencies, migrate, clinical data, demo accounts, serve :8000 (SQLite);
#               another port: make run PORT=8001
#   make test   the whole suite against PostgreSQL (DATABASE_URL, else 127.0.0.1:5432)

SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
LOCAL := .local
# The interpreter named by .python-version: through pyenv, on PATH, or in pyenv's folder.
PYTHON_VERSION := $(shell cat .python-version)
PYTHON ?= $(shell for c in "pyenv which python$(PYTHON_VERSION)" "command -v python$(PYTHON_VERSION)" \
	"ls -d $$HOME/.pyenv/versions/$(PYTHON_VERSION)*/bin/python$(PYTHON_VERSION)"; do \
	p=$$(eval $$c 2>/dev/null | tail -n 1) && [ -n "$$p" ] && echo $$p && break; done)
RUN_ENV := DEBUG=true SECRET_KEY_FILE=$(LOCAL)/secret_key
PORT ?= 8000
TEST_ENV := DATABASE_URL=$${DATABASE_URL:-postgres://anakinra@127.0.0.1:5432/anakinra}

.PHONY: help run test setup venv bench lint docs check-data clean reset-password

help:
	@echo "make run    set everything up and serve http://127.0.0.1:8000 (embedded SQLite; PORT=8001 for another port)"
	@echo "make test   run the whole test suite against PostgreSQL"
	@echo "make bench  benchmarks (engine, POST and CDS Hooks against /healthz, bedside pages, 1 and 2 instances"
	@echo "            behind HAProxy; needs wrk and haproxy; BENCH_ARGS=\"--rounds 5\"); the scale drill: scripts/scale_drill.sh"
	@echo "make lint   ruff, and the import rules between layers (import-linter; docs/architecture/layers.md)"
	@echo "make docs   build the documentation (MkDocs, strict) into site/ (SITE_DIR=... for another folder)"
	@echo "make reset-password ACCOUNT=clinician   a new password for a demo account (shown once)"

# One virtualenv with the pinned dev lock (a superset of requirements.lock), rebuilt when the lock changes.
$(VENV)/.installed: requirements-dev.lock
	@test -n "$(PYTHON)" || { echo "Python >= 3.12 not found: install it (pyenv install 3.12) or set PYTHON=..."; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing pinned dependencies into $(VENV) ..."
	@$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r $<
	@touch $@

venv: $(VENV)/.installed

$(LOCAL)/secret_key:
	@mkdir -p $(LOCAL)
	@$(PYTHON) -c "import secrets; print(secrets.token_urlsafe(50))" > $@
	@chmod 600 $@

setup: venv $(LOCAL)/secret_key
	@$(RUN_ENV) $(PY) manage.py migrate --noinput -v 0
	@$(RUN_ENV) $(PY) manage.py load_clinical_data
	@echo "Demo accounts (passwords are shown once, when an account is made; lost one? make reset-password ACCOUNT=<name>):"
	@$(RUN_ENV) $(PY) manage.py create_demo_accounts

run: setup
	@echo "Serving http://127.0.0.1:$(PORT) (Ctrl-C to stop)"
	@$(RUN_ENV) $(PY) manage.py runserver 127.0.0.1:$(PORT)

# A lost demo password cannot be shown again (only its hash is stored): this sets a new one and prints it.
reset-password: venv $(LOCAL)/secret_key
	@test -n "$(ACCOUNT)" || { echo "Name the account: make reset-password ACCOUNT=clinician (or pharmacist1, pharmacist2)"; exit 1; }
	@$(RUN_ENV) $(PY) manage.py create_demo_accounts --reset "$(ACCOUNT)"

test: venv
	@$(TEST_ENV) $(PY) scripts/check_postgres.py
	@$(TEST_ENV) $(PY) -m pytest $(PYTEST_ARGS)

bench: venv
	@scripts/debian_packages.sh wrk haproxy
	@$(TEST_ENV) $(PY) scripts/check_postgres.py
	@$(TEST_ENV) $(PY) bench/run.py $(BENCH_ARGS)

lint: venv
	@$(PY) -m ruff check .
	@$(VENV)/bin/lint-imports

# The documentation site (mkdocs.yml, docs/), built strictly: a broken link or anchor, or a page left out of the
# nav, fails it. The built site is not committed (site/ is git-ignored); .ci/run builds into a throw-away folder.
# No page may load a script, style sheet or image from another host (no CDN).
SITE_DIR ?= site
docs: venv
	@$(PY) -m mkdocs build --strict --quiet --site-dir "$(SITE_DIR)"
	@if grep -rlE '<(script|link|img)[^>]*[[:space:]](src|href)="(https?:)?//' "$(SITE_DIR)" --include='*.html'; then \
		echo "The pages above load something from another host: vendor it instead."; exit 1; fi
	@echo "Documentation built in $(SITE_DIR)/ (open $(SITE_DIR)/index.html)"

# Validates the data file completely (every row through the models and the engine) in a throw-away
# SQLite database, so it works on a fresh clone and never touches a real one.
check-data: venv $(LOCAL)/secret_key
	@tmp=$$(mktemp -d); export DATABASE_URL=sqlite:///$$tmp/check.sqlite3 $(RUN_ENV); \
	$(PY) manage.py migrate --noinput -v 0 && $(PY) manage.py load_clinical_data --check; \
	status=$$?; rm -rf $$tmp; exit $$status

clean:
	rm -rf $(VENV) staticfiles .pytest_cache site
