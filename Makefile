# Frontdoor: `make run` runs the service on embedded defaults, `make test` checks everything.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: install run test lint typecheck pytest clean

install: $(VENV)/.installed
	@$(BIN)/frontdoor kafka fetch

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed: install it or run make PYTHON=python3.11")'
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

run: install
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
