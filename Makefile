PYTHON ?= $(HOME)/comfy/venv/bin/python

.PHONY: test
test:
	PYTHON="$(PYTHON)" bash tools/bootstrap.sh
	"$(PYTHON)" -m pytest -q tests
