# The README's commands. Each first sets up what it needs (harness/bootstrap.py).
#   make test    everything, on the host this machine has (CI runs it)
#   make check   the fast tiers (unit and model) while working: under a minute
#   make demo    the bundled example workflow on the bundled demo model
#   make lint    ruff over the repository
# Scripts run as modules from the repository root (python -m tools.make_workflows, ...),
# so that they import harness/ and each other without editing sys.path.
PYTHON ?= $(HOME)/comfy/venv/bin/python
# Bytecode caches on (some machines turn them off): ComfyUI's and the tests' modules are
# then compiled once, not at every run.
export PYTHONDONTWRITEBYTECODE =

.PHONY: test check demo lint setup
setup:
	python3 -m harness.bootstrap --python "$(PYTHON)"

test: setup
	"$(PYTHON)" -m pytest -q tests

check: setup
	"$(PYTHON)" -m pytest -q tests -m "unit or model"

demo: setup
	"$(PYTHON)" -m demo.run

lint: setup
	"$(PYTHON)" -m ruff check .
