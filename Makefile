# Two commands matter: `make run` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install assets browser redis run test demo-backends lint bench docker-smoke clean

install: $(STAMP) assets

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Tessera needs Python 3.11 or newer; found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

# GraphiQL's files, fetched once from the npm registry (pinned, integrity-checked).
assets: $(STAMP)
	@$(BIN)/python -m tessera.web.assets

# Chromium and ChromeDriver for the browser test (Debian packages), where they can
# be installed; elsewhere that test is skipped and says why.
browser:
	@sh tests/debian.sh "browser test" "chromium chromedriver" chromium chromium-driver

# Debian's redis-server for the Redis test, where it can be installed (else skipped).
redis:
	@sh tests/debian.sh "redis test" redis-server redis-server

run: install
	$(BIN)/tessera serve

test: install browser redis
	$(BIN)/python -m pytest

demo-backends: install
	$(BIN)/tessera demo-backends

lint: install
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	$(BIN)/ruff check tessera tests benchmarks
	$(BIN)/mypy

# ddc6f77: the code the speed issue (15) measured, run in the same bench as today's
BENCH_BEFORE ?= ddc6f77
bench: install
	$(BIN)/python benchmarks/bench.py --before "$(BENCH_BEFORE)" $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info tessera/web/static

# Build the image and run docker/compose.yaml, then query it (needs a Docker daemon).
docker-smoke:
	@sh docker/smoke.sh
