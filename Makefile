# Frontdoor: `make run` runs the service on embedded defaults, `make test` checks everything.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: install run test lint typecheck pytest clean

install: $(VENV)/.installed web/static/dist/.built
	@$(BIN)/frontdoor kafka fetch

# The pages' assets: GOV.UK Frontend, MOJ Frontend and htmx from npm (package-lock.json), built
# into web/static/dist (ignored by git, served by the app at /static/dist).
web/static/dist/.built: package.json package-lock.json web/static/build.mjs $(wildcard web/static/src/*)
	npm ci --no-audit --no-fund
	npm run build
	@touch $@

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed: install it or run make PYTHON=python3.11")'
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

run: install
	@echo "Console: http://127.0.0.1:8000/console (an account: frontdoor users add EMAIL --role agent;"
	@echo "  a demo supervisor and enquiries on every channel: .venv/bin/frontdoor demo, in another terminal)"
	$(BIN)/frontdoor up

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest

test: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

clean:
	-$(BIN)/frontdoor kafka stop
	rm -rf var
