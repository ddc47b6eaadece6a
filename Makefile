# Two commands from a fresh clone: `make plan` and `make test`. Both create .venv and install
# the pinned dependencies (requirements.txt) plus this project, editable, on first use.
STACK ?= dev
FORMAT ?= table
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
# The project's own packages, compiled ahead: with PYTHONDONTWRITEBYTECODE set (as on our CI
# machines) an editable install never caches bytecode, so every gpustack process and every
# planned program would compile them from source again (~0.15 s a plan). compileall skips
# what is current, in ~0.05 s; a stale .pyc is only ever ignored, never run.
SOURCES := gpustack stacks components policies benchmarks bootstrap __main__.py
BYTECODE := @$(PY) -m compileall -q $(SOURCES) >&2

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
	$(BYTECODE)
	@$(VENV)/bin/gpustack plan --stack $(STACK) --format $(FORMAT)

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .

test: lint
	$(BYTECODE)
	$(PY) -m pytest

docs: $(INSTALLED)
	$(PY) -m stacks.config_reference > docs/config.md
	$(PY) -m policies.coverage > docs/policy-coverage.md
	$(PY) -m policies.coverage --rule-table docs/policies.md

bench: $(INSTALLED)
	$(BYTECODE)
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
