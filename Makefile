# Two commands: `make dev` runs the app with a demo tenant; `make test` runs the whole suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OIDC_STAMP := devtools/oidc/node_modules/.installed
AXE_STAMP := devtools/axe/node_modules/.installed

.PHONY: dev test migrate lint typecheck lock install oidc axe browser bench-rls bench-cw bench-render bench-review bench-sweep bench-inbox bench-load bench-signin clean-dev screenshots

# The whole installed set comes from the lock (every package pinned with its hashes); requirements*.txt are what
# we ask for, and `make lock` turns them into the lock files.
$(STAMP): requirements-dev.lock
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/pip install -q --disable-pip-version-check --require-hashes -r requirements-dev.lock
	@touch $(STAMP)

install: $(STAMP)

# The local OpenID provider (npm oidc-provider) used by the SSO tests; same stamp as devtools/oidc_provider.py.
$(OIDC_STAMP): devtools/oidc/package.json devtools/oidc/package-lock.json
	@cd devtools/oidc && npm ci --no-audit --no-fund --loglevel=error
	@touch $(OIDC_STAMP)

oidc: $(OIDC_STAMP)

# axe-core for tests/browser/test_accessibility.py (Playwright injects it into the page under test; never served by
# the app); same stamp as that test's own npm ci.
$(AXE_STAMP): devtools/axe/package.json devtools/axe/package-lock.json
	@cd devtools/axe && npm ci --no-audit --no-fund --loglevel=error
	@touch $(AXE_STAMP)

axe: $(AXE_STAMP)

# Chromium for the browser tests comes from Debian; Playwright drives it and never downloads a browser of its own.
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

# devtools.dev takes the terminal's foreground while it runs, so Ctrl-C stops it (exit 0), not make ("Interrupt").
dev: install oidc
	@$(BIN)/python -m devtools.dev

test: install oidc axe browser
	@$(BIN)/python -m devtools.audit_deps
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)

screenshots: install browser
	$(BIN)/python -m devtools.screenshots

migrate: install
	$(BIN)/flask --app wsgi db upgrade

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

bench-rls: install
	$(BIN)/python -m bench.rls_overhead

bench-cw: install
	$(BIN)/python -m bench.cw_requests

bench-signin: install
	$(BIN)/python -m bench.sign_in_timing

bench-render: install
	$(BIN)/python -m bench.render

bench-review: install
	$(BIN)/python -m bench.review_rules

bench-sweep: install
	$(BIN)/python -m bench.sweep

bench-inbox: install
	$(BIN)/python -m bench.inbox $(BENCH_ARGS)

bench-load: install
	$(BIN)/python -m bench.load_public $(BENCH_ARGS)

# Regenerate the lock files after changing requirements*.txt (pip-tools in a throwaway venv under var/).
lock:
	@test -x var/piptools/bin/pip-compile || { $(PY) -m venv var/piptools && var/piptools/bin/pip install -q pip-tools==7.6.2; }
	var/piptools/bin/pip-compile --quiet --generate-hashes --allow-unsafe --no-strip-extras --no-emit-index-url \
		--no-emit-find-links --output-file requirements.lock requirements.txt
	var/piptools/bin/pip-compile --quiet --generate-hashes --allow-unsafe --no-strip-extras --no-emit-index-url \
		--no-emit-find-links --output-file requirements-dev.lock requirements-dev.txt

clean-dev:
	rm -rf var
