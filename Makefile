# The two commands a new user needs: `make run` and `make test`. Both set up .venv on their own.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Pinned versions with the sha256 of every file (`make lock` writes them from pyproject.toml).
LOCK     := requirements.lock
DEV_LOCK := requirements-dev.lock
# Install exactly the locked files, then the project itself. The build backend (setuptools) is in the
# lock too, hence --no-build-isolation: nothing is downloaded unchecked.
INSTALL_PROJECT := $(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .

.PHONY: run test lint typecheck check-lock check-minimums lock lock-upgrade format bench sync clean i18n-extract

# A failed step removes the half-made .venv, so that the next run starts over instead of failing
# with "No module named pip" (Debian and Ubuntu ship venv without pip: install python3-venv).
$(BIN)/python:
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
		echo "Could not create $(VENV) with $(PYTHON) -m venv: on Debian or Ubuntu, install python3-venv" \
			"(apt install python3-venv), then run make again." >&2; exit 1; }
	@$(BIN)/python -m pip install -q --upgrade pip || { rm -rf $(VENV); \
		echo "Could not upgrade pip in $(VENV): check the network, then run make again." >&2; exit 1; }

# Reinstall only when the locked versions (or the project's metadata) change.
$(VENV)/.runtime: $(LOCK) pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --require-hashes -r $(LOCK)
	$(INSTALL_PROJECT)
	touch $@

# The dev lock holds the runtime lock's versions plus the tools (pytest, ruff, mypy, uv).
$(VENV)/.dev: $(DEV_LOCK) pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --require-hashes -r $(DEV_LOCK)
	$(INSTALL_PROJECT)
	touch $@ $(VENV)/.runtime

run: check-lock $(VENV)/.runtime
	$(BIN)/python -m bot

sync: check-lock $(VENV)/.runtime
	$(BIN)/python -m bot sync

# pyproject.toml's dependencies changed since the last `make lock`? (reads files only)
check-lock: | $(BIN)/python
	@$(BIN)/python -m tools.deps check

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev
	$(BIN)/mypy

# The lowest versions pyproject.toml allows, in a throwaway venv: imports, lint, mypy, smoke tests.
check-minimums: $(VENV)/.dev
	$(BIN)/python -m tools.deps minimums

test: check-lock lint typecheck check-minimums
	$(BIN)/pytest

# After editing pyproject.toml's dependencies: re-resolve, keeping the versions already locked.
lock: $(VENV)/.dev
	$(BIN)/python -m tools.deps lock

# Move every locked version to the newest that pyproject.toml allows.
lock-upgrade: $(VENV)/.dev
	$(BIN)/python -m tools.deps lock --upgrade

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
