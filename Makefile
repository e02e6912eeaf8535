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

# Creates what gateway.conf names (data/, dev PKI, office token) once, then runs the node in the
# foreground on loopback until Ctrl-C.
run: install
	$(BIN)/gateway init -c gateway.conf
	@echo
	@echo "Node starting. In another terminal, send the bundled sample from UBND tỉnh Hà Nam"
	@echo "(000.00.00.H23) to its Văn phòng (000.00.01.H23), both hosted here, and watch it go:"
	@echo "  $(BIN)/gateway send tests/fixtures/sample_local.edxml"
	@echo "  $(BIN)/gateway queue --state sent && $(BIN)/gateway status"
	@echo "  $(BIN)/gateway show 000.00.00.H23,2025/03/05,123/UBND-VP"
	@echo "Office face WSDL: http://127.0.0.1:8440/office?wsdl  (token in data/office.token)"
	@echo
	$(BIN)/gateway run -c gateway.conf

lint: install
	$(BIN)/ruff check edxml gateway tests bench
	$(BIN)/ruff format --check edxml gateway tests bench

typecheck: install
	$(BIN)/mypy

# One pytest worker per core; a test file stays in one worker (end-to-end worlds are per class).
unit: install
	$(BIN)/pytest -q -n auto --dist loadfile

test: lint typecheck unit

bench: install
	$(BIN)/python bench/edxml_bench.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
