# The two commands of the README. Each first sets up what it needs (tools/bootstrap.py).
PYTHON ?= $(HOME)/comfy/venv/bin/python

.PHONY: test demo
test:
	python3 tools/bootstrap.py --python "$(PYTHON)"
	"$(PYTHON)" -m pytest -q tests

demo:
	python3 tools/bootstrap.py --python "$(PYTHON)"
	"$(PYTHON)" tools/run_demo.py
