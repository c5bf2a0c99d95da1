# The two set-up commands of the README:
#   make demo   install into .venv and run the self-contained demo (simulated OSDs)
#   make test   install system and Python test dependencies, lint, type-check, run every test
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test lint unit install clean

$(BIN)/osd-watchdog: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/osd-watchdog

demo: install
	$(BIN)/osd-watchdog demo

lint: install
	$(BIN)/ruff check watchdog tests bench mgr
	$(BIN)/ruff format --check watchdog tests bench mgr
	$(BIN)/mypy

unit: install
	$(BIN)/pytest -q -m "not integration"

test: install
	./scripts/test-deps.sh
	$(MAKE) lint
	$(BIN)/pytest -q --durations=30

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
