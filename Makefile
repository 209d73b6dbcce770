# Two entry points for a newcomer: `make demo` (the end-to-end demo) and `make test`.
# Both create the environment when it is missing and reuse it when present.
# The environment lives outside the clone, keyed on the dependency files, so fresh
# clones (CI) reuse an existing 7 GB install while a new machine installs from nothing.
PYTHON ?= python3
DEPS_KEY := $(shell cat setup.cfg constraints.txt pyproject.toml | sha256sum | cut -c1-12)
VENV ?= $(HOME)/.cache/rtdl/venv-$(DEPS_KEY)
STAMP := $(VENV)/.rtdl-deps-installed
BIN := $(VENV)/bin

.PHONY: env demo test bench clean-env

$(STAMP): setup.cfg constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -c constraints.txt -e '.[test]'
	touch $(STAMP)

# (re)point the editable install at this clone: cheap, and a fresh clone may live elsewhere
env: $(STAMP)
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e . >/dev/null

demo: env
	$(BIN)/rtdl demo $(DEMO_ARGS)

test: env
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean-env:
	rm -rf $(VENV)
