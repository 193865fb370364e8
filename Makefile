# Two commands: `make dev` runs the app with a demo tenant; `make test` runs the whole suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test migrate lint install bench-rls bench-cw clean-dev

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

install: $(STAMP)

dev: install
	$(BIN)/python -m devtools.dev

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

migrate: install
	$(BIN)/flask --app wsgi db upgrade

lint: install
	$(BIN)/ruff check .

bench-rls: install
	$(BIN)/python -m bench.rls_overhead

bench-cw: install
	$(BIN)/python -m bench.cw_requests

clean-dev:
	rm -rf var
