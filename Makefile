# The two commands of the README: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean reliability

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

# The reliability campaign (reliability/README.md): one line of figures per check.
# Sizes: CHAOSRUNNER_RELIABILITY_RUNS (default 50 runs per check), CHAOSRUNNER_HOSTILE_*.
reliability: $(STAMP)
	$(BIN)/pytest -W error -q -s -p no:cacheprovider -o timeout=0 reliability

lint: $(STAMP)
	$(BIN)/ruff check chaosrunner tests bench
	$(BIN)/mypy chaosrunner

clean:
	rm -rf $(VENV) reports .chaosrunner
