# The two quick-start commands: `make demo` and `make test`. Each sets up what it needs.
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin

.PHONY: demo test test-cluster lint typecheck imports fuzz bench-scan bench-anomaly bench-console \
	services-up services-down cluster-up cluster-down browser console-demo

# The modules setup.py compiles with mypyc: changing one means compiling again.
COMPILED := $(shell sed -n 's/^    "\(.*\.py\)",$$/\1/p' setup.py)

$(BIN)/.installed: setup.cfg pyproject.toml setup.py $(COMPILED)
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

# mypy over the whole tree, with modules named as installed (scripts/typecheck.sh says how).
typecheck: $(BIN)/.installed
	bash scripts/typecheck.sh $(BIN)

# The layers of docs/architecture.md (import-linter contracts in pyproject.toml).
imports: $(BIN)/.installed
	$(BIN)/lint-imports pyproject.toml

# The whole suite: unit tests and integration tests against the real Kafka and Elasticsearch,
# which scripts/services.sh fetches (first run), starts and waits for, and the scale-out test
# on the cluster beside them (test-cluster below: about five minutes, 3.5 GB of memory).
test: lint typecheck imports services-up cluster-up browser
	bash scripts/run-tests.sh $(BIN) -m "cluster or not cluster"

# Fuzzing for longer than `make test` does (20 s per target there): FUZZ_SECONDS per target,
# and the linear-work check on every hostile line (tests/hostile_lines.py), not a selection.
FUZZ_SECONDS ?= 600
fuzz: $(BIN)/.installed
	SOCPIPE_FUZZ_SECONDS=$(FUZZ_SECONDS) SOCPIPE_FUZZ_FULL=1 $(BIN)/python -m pytest \
		tests/test_fuzz.py tests/test_linear_parsers.py tests/test_fuzz_regressions.py

# The console's browser tests drive the system Chromium (Playwright cannot download its own
# browser here); Debian's packages, installed when missing.
browser:
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || \
		(apt-get update -qq && apt-get install -y -qq chromium chromium-driver)

# Kafka and Elasticsearch, two agencies' demo alerts (scans of samples/), an admin and two
# analysts, and the console on http://127.0.0.1:8080/ (scripts/console-demo.sh says more).
console-demo: $(BIN)/.installed services-up
	bash scripts/console-demo.sh $(BIN)

services-up:
	bash scripts/services.sh up

# The scale-out test alone (docs/cluster.md): a cluster of three Kafka brokers and two
# Elasticsearch nodes beside the single-node services (3.5 GB more memory), socpipe's stages
# scaled out on it while a broker, a search node and a detect process are lost under load.
test-cluster: $(BIN)/.installed cluster-up
	bash scripts/run-tests.sh $(BIN) -m cluster tests/integration/test_cluster.py

cluster-up:
	bash scripts/services.sh up --cluster

cluster-down:
	bash scripts/services.sh down --cluster

services-down:
	bash scripts/services.sh down

bench-scan: $(BIN)/.installed
	$(BIN)/python -m bench.scan

bench-anomaly: $(BIN)/.installed
	$(BIN)/python -m bench.anomaly

bench-console: $(BIN)/.installed services-up
	$(BIN)/python -m bench.console
