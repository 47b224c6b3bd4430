# Argus: `make run` serves, `make test` checks everything. Both set themselves up.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ARGUS := $(VENV)/bin/argus
# Two stamps: `make run` installs the runtime only; `make test` adds the dev extras on top
# (torch among them, for the converter checks), so neither re-installs what the other did.
RUN_STAMP := $(VENV)/.runtime-stamp
DEV_STAMP := $(VENV)/.dev-stamp

setup: $(RUN_STAMP)
	$(ARGUS) models pull

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Argus needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(RUN_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e .
	touch $(RUN_STAMP)

$(DEV_STAMP): $(RUN_STAMP)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(DEV_STAMP)

PORT ?= 8000
GRPC_PORT ?= $(shell echo $$(($(PORT) + 1)))

# The page at http://127.0.0.1:$(PORT)/ trains and answers jobs, so a worker runs beside the server
# (ended with it).
run: setup
	$(ARGUS) worker --log-level warning & worker=$$!; trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	$(ARGUS) serve --host 127.0.0.1 --port $(PORT) --grpc-port $(GRPC_PORT)

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/mypy src/argus

# Two pytest workers (pytest-xdist): much of the suite waits on servers and subprocesses, so
# two share the 2 cores well. Work stealing keeps a file's tests (and its module fixtures)
# together while it can and gives the idle worker the rest. TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2

test: setup lint
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  echo "note: the web page's browser tests skip without chromium: apt-get install -y chromium chromium-driver"
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist worksteal

# The README's screenshots of the web page, taken by its browser tests.
screenshots: setup $(DEV_STAMP)
	ARGUS_SCREENSHOTS=docs/screenshots $(VENV)/bin/pytest -q tests/web

bench: setup $(DEV_STAMP)
	$(PY) benchmarks/run.py $(BENCH_ARGS)
	$(PY) benchmarks/bench_faces.py
	$(PY) benchmarks/bench_graphs.py
	$(PY) benchmarks/bench_jobs.py

protos: $(DEV_STAMP)
	$(PY) scripts/gen_protos.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .mypy_cache .ruff_cache .pytest_cache

# 10,000 malformed images against a real server over REST and gRPC (needs `models pull`).
fuzz: setup
	$(PY) benchmarks/fuzz.py --count 10000

# schemathesis over every REST operation, with and without tokens, many examples (issue 15).
schema-soak: setup $(DEV_STAMP)
	$(PY) benchmarks/schema_soak.py --examples 300
