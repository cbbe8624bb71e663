PYTHON ?= $(HOME)/comfy/venv/bin/python

.PHONY: test demo
test:
	PYTHON="$(PYTHON)" bash tools/bootstrap.sh
	"$(PYTHON)" -m pytest -q tests

demo:
	PYTHON="$(PYTHON)" bash tools/bootstrap.sh
	"$(PYTHON)" tools/run_demo.py
