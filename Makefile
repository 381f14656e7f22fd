# The two quick-start commands: `make demo` and `make test`. Each sets up what it needs.
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin

.PHONY: demo test lint bench-scan

$(BIN)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(BIN)/.installed
	mkdir -p out
	$(BIN)/socpipe scan samples --agency so-tttt --agency-name "Sở Thông tin và Truyền thông" \
		--timezone Asia/Ho_Chi_Minh --out out/alerts.jsonl

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	bash scripts/run-tests.sh $(BIN)

bench-scan: $(BIN)/.installed
	$(BIN)/python -m bench.scan
