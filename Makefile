# Two commands from a fresh clone: `make plan` and `make test`. Both create .venv and install
# the pinned dependencies (requirements.txt) plus this project, editable, on first use.
STACK ?= dev
FORMAT ?= table
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: plan test lint bench docs install clean

# Install output goes to stderr, so `make plan FORMAT=json > plan.json` holds only the report,
# first run included.
$(INSTALLED): requirements.txt pyproject.toml
	@echo "make: installing the pinned dependencies into $(VENV)" >&2
	@test -x $(PY) || python3 -m venv $(VENV) >&2
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt >&2
	@$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation \
		-e . >&2
	@touch $(INSTALLED)

install: $(INSTALLED)

plan: $(INSTALLED)
	@$(VENV)/bin/gpustack plan --stack $(STACK) --format $(FORMAT)

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .

test: lint
	$(PY) -m pytest

docs: $(INSTALLED)
	$(PY) -m stacks.config_reference > docs/config.md

bench: $(INSTALLED)
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
