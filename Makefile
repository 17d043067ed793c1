# Two commands for a new user: `make run` and `make test`. See README.md.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: run test test-citus test-clock lint format bench soak check-deploy clean-local

$(INSTALLED): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

## run: web + Celery worker + beat (embedded PostgreSQL/Redis unless DATABASE_URL/REDIS_URL are set)
run: $(INSTALLED)
	$(PY) -m its_camera.devservices run

## test: the whole suite against real PostgreSQL and Redis; PYTEST_ARGS="-k name" narrows it
test: $(INSTALLED)
	$(PY) -m its_camera.devservices test $(PYTEST_ARGS)

## test-citus: tests/citus against a Citus coordinator database with registered workers (docs/scaling.md):
## make test-citus CITUS_URL=postgresql://postgres@127.0.0.1:9700/its_ci
test-citus: $(INSTALLED)
	@test -n "$(CITUS_URL)" || { echo "test-citus needs CITUS_URL (see docs/scaling.md)"; exit 2; }
	DATABASE_URL=$(CITUS_URL) CITUS_URL=$(CITUS_URL) $(PY) -m its_camera.devservices test tests/citus $(PYTEST_ARGS)

## test-clock: the whole suite under libfaketime at each moment of CLOCKS: PostgreSQL, Redis and the tests all see
## the same fixed, ticking clock, so a test that depends on the hour fails here first. The library comes from the
## `libfaketime` wheel (Debian bookworm's 0.9.10 stalls Python's timed waits); the monotonic clock stays real. The
## fake time is an offset from the real one, so processes started later (servers, workers) agree with the tests.
## FAKETIME_FORCE_MONOTONIC_FIX=0: libfaketime's pthread_cond_timedwait shifts the deadline of a CLOCK_MONOTONIC
## condition variable by the *faked* monotonic time even though the monotonic clock is not faked, so every such
## wait expired at once; CPython's GIL waits on one, and every process with two threads thrashed its GIL (3-20x
## the CPU, requests of seconds). With 0, the deadline the program computed is passed through unchanged.
CLOCKS ?= 2026-12-31T23:55:00 2027-01-01T00:05:00 2026-11-30T12:00:00
LIBFAKETIME = $(shell $(PY) -c "import importlib.util as u, pathlib as p; \
	print(p.Path(u.find_spec('libfaketime').origin).parent / 'vendor/libfaketime/src/libfaketime.so.1')")
test-clock: $(INSTALLED)
	@set -e; for clock in $(CLOCKS); do echo "== make test at $$clock UTC"; \
		offset=$$(( $$(date -d "$$(echo $$clock | tr T ' ') UTC" +%s) - $$(date +%s) )); \
		TZ=UTC FAKETIME_DONT_FAKE_MONOTONIC=1 FAKETIME_FORCE_MONOTONIC_FIX=0 FAKETIME="$$( [ $$offset -ge 0 ] && echo +)$$offset" LD_PRELOAD=$(LIBFAKETIME) \
		$(PY) -m its_camera.devservices test $(PYTEST_ARGS); done

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

format: $(INSTALLED)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## bench: every benchmark in bench/, each printing our path beside the reference path (the soak has its own target)
bench: $(INSTALLED)
	@set -e; for script in bench/*.py; do case "$$script" in bench/soak.py|bench/_*) continue;; esac; \
		echo "== $$script"; $(PY) -m its_camera.devservices exec $(PY) $$script; done

## soak: make run's whole stack under the seed's fleet (100 cameras x 30 fps) for SOAK_MINUTES (bench/soak.py)
SOAK_MINUTES ?= 10
soak: $(INSTALLED)
	flock /tmp/bench.lock $(PY) bench/soak.py --minutes $(SOAK_MINUTES)

## check-deploy: deploy/ files parse with the installed PostgreSQL (also part of `make test`)
check-deploy: $(INSTALLED)
	$(PY) -m its_camera.devservices test tests/deploy

## clean-local: forget the embedded servers' data (.local/)
clean-local:
	rm -rf .local
