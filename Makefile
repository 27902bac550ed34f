# The two commands: `make demo` serves the demo, `make test` runs the whole suite.
# Both work on a fresh Debian machine with Python 3.11: they make their own virtualenv,
# install the project, and make sure a Redis answers (scripts/ensure-redis.sh).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DB ?= var/demo-warehouse.sqlite
DEMO_LOTS ?= 20000
DEMO_ENV ?= config/demo.env
DEMO_SEED ?= 1
HOST ?= 127.0.0.1
PORT ?= 8080
PYTEST_ARGS ?=

.PHONY: venv test lint demo demo-db install-check bench clean

$(VENV)/.installed: setup.py
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "installing Debian's python3-venv" >&2; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; \
	  $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,tools]'
	@touch $@

venv: $(VENV)/.installed

lint: venv
	$(PY) -m ruff check .

test: venv lint
	@url=$$(scripts/ensure-redis.sh $(PY) --need-binary) || exit 1; \
	status=0; TRACE_TEST_REDIS_URL=$$url $(PY) -m pytest $(PYTEST_ARGS) tests || status=$$?; \
	scripts/stop-redis.sh; exit $$status

# --reuse keeps the file only if it was built with the same --lots and --seed (and generator):
# `make demo DEMO_LOTS=N` always serves an N-lot warehouse.
demo-db: venv
	@$(VENV)/bin/sanic-trace demo-db $(DEMO_DB) --lots $(DEMO_LOTS) --seed $(DEMO_SEED) --reuse

demo: venv
	@warehouse=$$($(VENV)/bin/sanic-trace demo-db $(DEMO_DB) --lots $(DEMO_LOTS) --seed $(DEMO_SEED) --reuse) \
	  || exit 1; \
	url=$$(scripts/ensure-redis.sh $(PY)) || exit 1; \
	trap 'scripts/stop-redis.sh' EXIT; \
	echo ""; \
	echo "sanic-trace demo: http://$(HOST):$(PORT)"; \
	echo "  $$warehouse"; \
	echo "  Redis: $$url; demo settings: $(DEMO_ENV)"; \
	echo "  try:  curl -s http://$(HOST):$(PORT)/health   (README: the API in one minute)"; \
	echo ""; \
	REDIS_URL=$$url TRACE_DB_URL=sqlite:///$(abspath $(DEMO_DB)) \
	  $(VENV)/bin/sanic-trace serve --env-file $(DEMO_ENV) --host $(HOST) --port $(PORT)

# A plain `pip install .` (no extras) into a fresh virtualenv serves: what a production install does.
install-check:
	scripts/install-check.sh

bench: venv
	@url=$$(scripts/ensure-redis.sh $(PY)) || exit 1; \
	trap 'scripts/stop-redis.sh' EXIT; \
	REDIS_URL=$$url $(VENV)/bin/sanic-trace bench

clean:
	scripts/stop-redis.sh
	rm -rf $(VENV) var *.egg-info .pytest_cache .ruff_cache
