# The two commands a newcomer needs are `make run` and `make test`; everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
PORT ?= 8080
DATA_DIR ?= ./.data
export PORT DATA_DIR

.PHONY: lock run test lint typecheck layers openapi openapi-check pytest install bench bench-search bench-transaction bench-requests bench-soak bench-timing profile clean

# The virtualenv is rebuilt whenever the lock file changes.
$(BIN)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(UV) || $(BIN)/pip install --quiet --disable-pip-version-check "uv>=0.8,<1"
	$(UV) pip install --quiet --python $(BIN)/python --require-hashes -r requirements.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

# Re-resolve the pinned dependency set after editing pyproject.toml.
lock: install
	$(UV) pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 --universal -q -o requirements.lock
	$(UV) pip compile pyproject.toml --generate-hashes --python-version 3.11 --universal -q -o requirements-runtime.lock

install: $(BIN)/.installed

run: install
	$(BIN)/ipt-fhir serve --port $(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

layers: install
	$(BIN)/lint-imports

openapi: install
	$(BIN)/python -m service.openapi --write

openapi-check: install
	$(BIN)/python -m service.openapi --check

pytest: install
	$(BIN)/pytest -n 2 --dist loadfile

test: lint typecheck layers openapi-check pytest

# Every benchmark, each beside a baseline (raw SQL, or a floor app) on the same PostgreSQL in the same run
# (docs/performance.md).
bench: bench-search bench-transaction bench-requests bench-soak

# Loads a fresh database (10,000 patients, 100,000 responses, 20,000 care plans) and times four searches;
# not part of `make test`. Figures go to docs/performance.md.
bench-search: install
	$(BIN)/python -m benchmarks.search

# A transaction of 100 QuestionnaireResponses and their new Patient, against raw asyncpg inserting the same
# rows, at one and eight clients; not part of `make test`. Figures go to docs/performance.md.
bench-transaction: install
	$(BIN)/python -m benchmarks.transaction

# Create, read and search of one QuestionnaireResponse and GET /health, at 1, 8 and 32 clients, against a floor
# app (FastAPI and asyncpg over one jsonb table) in the same run; about 5 minutes, not part of `make test`.
# BENCH_ARGS=--quick checks the setup in about a minute. Figures go to docs/performance.md.
bench-requests: install
	$(BIN)/python -m benchmarks.requests $(BENCH_ARGS)

# One worker's resident memory over 100,000 mixed requests (docs/performance.md); not part of `make test`.
bench-soak: install
	$(BIN)/python -m benchmarks.soak

# Whether the time of a 404 tells another patient's record from no record (docs/security.md); about a minute,
# not part of `make test`.
bench-timing: install
	$(BIN)/python -m benchmarks.timing

# Where the CPU of a create, a read and a search goes, part by part (cProfile, in-process); not in `make test`.
profile: install
	$(BIN)/python -m benchmarks.profile_requests

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
