# Sentinel: the two commands of README.md, and the steps they share.
#   make run    install, then the service, its worker, a sandbox PostgreSQL and Redis
#   make test   install, then lint, then the whole suite
#   make bench  install, then the benchmarks (never part of make test)
#   make fuzz   install, then a long fuzzing campaign of the API (make test runs a short one)
#   make dist   the wheel docs/install.md installs, in dist/

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
# Front-end files copied from node_modules into static/vendor (not committed).
VENDOR := static/vendor/pico.min.css static/vendor/uPlot.iife.min.js static/vendor/uPlot.min.css \
	static/vendor/swagger-ui-bundle.js static/vendor/swagger-ui.css

.PHONY: run test lint format bench fuzz dist install-run install-test system-run system-test assets clean

run: install-run
	$(PY) -m sentinel.dev.supervisor

# Two processes, each taking whole test files (a module's servers stay its
# own). A third made the suite no faster on two cores: it is bound by CPU.
test: install-test lint
	$(PY) -m pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=15

bench: install-test
	$(PY) bench/run.py

# Over 10,000 generated requests; the examples per route set how many.
FUZZ_EXAMPLES ?= 600
fuzz: install-test
	SENTINEL_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -n 2 --dist loadfile tests/test_fuzz.py tests/test_fuzz_plugins.py tests/test_fuzz_ui.py tests/test_fuzz_pool.py

# The wheel: templates, static files, front-end libraries and SQL inside,
# dependencies pinned to requirements.txt.
dist: install-test
	rm -rf dist build
	$(PY) -m build --wheel --outdir dist .

lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install-test
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

install-run: system-run $(VENV)/.runtime assets
install-test: system-test $(VENV)/.dev assets

# Debian packages: installed as root when missing, else named for the user.
system-run:
	@sh bin/system-deps redis-server npm
system-test:
	@sh bin/system-deps redis-server npm chromium systemd systemd-container debootstrap prometheus-postgres-exporter

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -r requirements-dev.txt
	touch $(VENV)/.runtime $@

assets: $(VENDOR)

node_modules/.package-lock.json: package.json package-lock.json
	# No install scripts: the packages are plain files to copy (and one would phone home).
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

static/vendor/pico.min.css: node_modules/.package-lock.json
	mkdir -p static/vendor
	cp node_modules/@picocss/pico/css/pico.min.css $@

static/vendor/uPlot.%: node_modules/.package-lock.json
	mkdir -p static/vendor
	cp node_modules/uplot/dist/uPlot.$* $@

static/vendor/swagger-ui%: node_modules/.package-lock.json
	mkdir -p static/vendor
	cp node_modules/swagger-ui-dist/swagger-ui$* $@

clean:
	rm -rf $(VENV) node_modules static/vendor .pytest_cache .ruff_cache dist build
