# The two commands a newcomer needs are `make run` and `make test`; everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
PORT ?= 8080
DATA_DIR ?= ./.data
export PORT DATA_DIR

.PHONY: lock run test lint typecheck layers openapi openapi-check pytest install bench bench-search bench-transaction clean

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

# Every benchmark, each beside raw SQL on the same database in the same run (docs/performance.md).
bench: bench-search bench-transaction

# Loads a fresh database (10,000 patients, 100,000 responses, 20,000 care plans) and times four searches;
# not part of `make test`. Figures go to docs/performance.md.
bench-search: install
	$(BIN)/python -m benchmarks.search

# A transaction of 100 QuestionnaireResponses and their new Patient, against raw asyncpg inserting the same
# rows, at one and eight clients; not part of `make test`. Figures go to docs/performance.md.
bench-transaction: install
	$(BIN)/python -m benchmarks.transaction

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
