# Argus: `make run` serves, `make test` checks everything. Both set themselves up.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ARGUS := $(VENV)/bin/argus
STAMP := $(VENV)/.installed-stamp

.PHONY: setup run test lint bench protos clean

setup: $(STAMP)
	$(ARGUS) models pull

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Argus needs Python 3.11 or newer")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,convert]'
	touch $(STAMP)

run: setup
	$(ARGUS) serve --host 127.0.0.1 --port 8000

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/mypy src/argus

test: setup lint
	$(VENV)/bin/pytest -q

bench: setup
	$(PY) benchmarks/run.py $(BENCH_ARGS)
	$(PY) benchmarks/bench_faces.py
	$(PY) benchmarks/bench_graphs.py
	$(PY) benchmarks/bench_jobs.py

protos: $(STAMP)
	$(PY) scripts/gen_protos.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .mypy_cache .ruff_cache .pytest_cache

# 10,000 malformed images against a real server over REST and gRPC (needs `models pull`).
fuzz: setup
	$(PY) benchmarks/fuzz.py --count 10000
