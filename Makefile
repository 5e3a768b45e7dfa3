# The two commands of the README: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/chaosrunner demo

test: $(STAMP)
	$(BIN)/ruff check chaosrunner tests bench
	$(BIN)/mypy chaosrunner
	$(BIN)/pytest -W error

lint: $(STAMP)
	$(BIN)/ruff check chaosrunner tests bench
	$(BIN)/mypy chaosrunner

clean:
	rm -rf $(VENV) reports .chaosrunner
