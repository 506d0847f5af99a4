# The two commands a new user needs: `make run` and `make test`. Both set up .venv on their own.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test lint typecheck format bench sync clean i18n-extract

# A failed step removes the half-made .venv, so that the next run starts over instead of failing
# with "No module named pip" (Debian and Ubuntu ship venv without pip: install python3-venv).
$(BIN)/python:
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
		echo "Could not create $(VENV) with $(PYTHON) -m venv: on Debian or Ubuntu, install python3-venv" \
			"(apt install python3-venv), then run make again." >&2; exit 1; }
	@$(BIN)/python -m pip install -q --upgrade pip || { rm -rf $(VENV); \
		echo "Could not upgrade pip in $(VENV): check the network, then run make again." >&2; exit 1; }

# Reinstall only when the dependency list changes.
$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.runtime

run: $(VENV)/.runtime
	$(BIN)/python -m bot

sync: $(VENV)/.runtime
	$(BIN)/python -m bot sync

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest

format: $(VENV)/.dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Refresh the message template from the source, then merge it into every catalog: new messages come in
# empty, changed ones fuzzy (both fail the tests until translated). See the README, "Translations".
LOCALES := bot/locales
i18n-extract: $(VENV)/.dev
	$(BIN)/pybabel -q extract -F babel.cfg -k locale_str --add-location=file --sort-output \
		--project=dscgg-bot --omit-header -o $(LOCALES)/messages.pot .
	@for po in $(LOCALES)/*.po; do \
		$(BIN)/pybabel -q update -i $(LOCALES)/messages.pot -o $$po -l $$(basename $$po .po) \
			--previous --ignore-obsolete || exit 1; \
	done

bench: $(VENV)/.dev
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info
