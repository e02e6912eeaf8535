# Two entry points for a fresh machine (see README.md):
#   make run    install into .venv and run the gateway on its embedded defaults
#   make test   install into .venv and run lint, type checks and the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint typecheck unit bench clean

# libmagic is the one system library we need (python-magic loads it at run time).
$(STAMP): setup.cfg pyproject.toml
	@ldconfig -p 2>/dev/null | grep -q 'libmagic\.so\.1' || \
	  { command -v apt-get >/dev/null && apt-get update -qq && apt-get install -y -qq libmagic1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/gateway inspect tests/fixtures/sample_envelope.edxml

lint: install
	$(BIN)/ruff check edxml gateway tests bench
	$(BIN)/ruff format --check edxml gateway tests bench

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest -q

test: lint typecheck unit

bench: install
	$(BIN)/python bench/edxml_bench.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
