# Two set-up commands: `make demo` and `make test`. Both create .venv on first use and
# reinstall only when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# loadgroup: the tests of one xdist_group run on one worker (they share a slow fixture).
PYTEST_ARGS ?= -n 2 --dist loadgroup

.PHONY: demo test test-slow lint bench clean notebooks docs

PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check

$(BIN)/python:
	@echo "Creating $(VENV) (first run only)"
	@$(PYTHON) -m venv $(VENV)
	@$(PIP) --upgrade pip setuptools wheel

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@echo "Installing keras-selfevo and its dependencies into $(VENV) (a few minutes, once)"
	@$(PIP) -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	@echo "Installing keras-selfevo[dev,docs] into $(VENV) (a few minutes, once)"
	@$(PIP) -e ".[dev,docs]"
	@touch $(VENV)/.installed $@

demo: $(VENV)/.installed
	@$(BIN)/keras-selfevo demo --output demo_output

# JupyterLab on the tutorials, figures inline.
notebooks: $(VENV)/.installed
	@$(PIP) -e ".[notebooks]"
	@$(BIN)/jupyter lab tutorials/

# The documentation site (README, guides, model cards, tutorials, API reference) at
# http://127.0.0.1:8000, rebuilt on every change.
docs: $(VENV)/.installed-dev
	@NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check keras_selfevo tests benchmarks docs

# The suite without the tests marked slow (more than ~20 s each): 6-8 minutes on 2 cores.
test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS) -m "not slow"

# The tests marked slow (the demo, the notebooks, the README snippets, the wheel in a new
# environment, resume after a kill, two workers, the full glyph build, language
# meta-training, ...): about 8 minutes. CI runs both targets (.ci/run).
test-slow: $(VENV)/.installed-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS) -m slow

bench: $(VENV)/.installed-dev
	@for script in benchmarks/[a-z]*.py; do \
		echo "== $$script"; $(BIN)/python $$script || exit 1; \
	done

clean:
	rm -rf $(VENV) build dist *.egg-info demo_output .pytest_cache site
