# The two commands: `make demo` serves the demo, `make test` runs the whole suite.
# Both work on a fresh Debian machine with Python 3.11: they make their own virtualenv,
# install the project, and make sure a Redis answers (scripts/ensure-redis.sh).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DB ?= var/demo-warehouse.sqlite
DEMO_LOTS ?= 3000
DEMO_SEED ?= 1
HOST ?= 127.0.0.1
PORT ?= 8080
PYTEST_ARGS ?=

.PHONY: venv test lint demo demo-db bench clean

$(VENV)/.installed: setup.py
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "installing Debian's python3-venv" >&2; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; \
	  $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

venv: $(VENV)/.installed

lint: venv
	$(PY) -m ruff check .

test: venv lint
	@url=$$(scripts/ensure-redis.sh $(PY) --need-binary) || exit 1; \
	status=0; TRACE_TEST_REDIS_URL=$$url $(PY) -m pytest $(PYTEST_ARGS) tests || status=$$?; \
	scripts/stop-redis.sh; exit $$status

$(DEMO_DB): | venv
	$(VENV)/bin/sanic-trace demo-db $(DEMO_DB) --lots $(DEMO_LOTS) --seed $(DEMO_SEED)

demo-db: $(DEMO_DB)

demo: venv $(DEMO_DB)
	@url=$$(scripts/ensure-redis.sh $(PY)) || exit 1; \
	trap 'scripts/stop-redis.sh' EXIT; \
	echo ""; \
	echo "sanic-trace demo: http://$(HOST):$(PORT)  (Redis: $$url, warehouse: $(DEMO_DB))"; \
	echo "try:  curl -s http://$(HOST):$(PORT)/health"; \
	echo ""; \
	REDIS_URL=$$url TRACE_DB_URL=sqlite:///$(DEMO_DB) $(VENV)/bin/sanic-trace serve --host $(HOST) --port $(PORT)

bench: venv
	@url=$$(scripts/ensure-redis.sh $(PY)) || exit 1; \
	trap 'scripts/stop-redis.sh' EXIT; \
	REDIS_URL=$$url $(VENV)/bin/sanic-trace bench

clean:
	scripts/stop-redis.sh
	rm -rf $(VENV) var *.egg-info .pytest_cache .ruff_cache
