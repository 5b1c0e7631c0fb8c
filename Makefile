# Set-up is part of every target: a fresh clone needs only `make demo` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
export UV_COMPILE_BYTECODE := 1
export DAGSTER_DISABLE_TELEMETRY := 1
export DAGSTER_HOME ?= $(CURDIR)/.dagster

.PHONY: install test demo lint bench soak lock dagster clean

$(VENV)/.installed: requirements.lock pyproject.toml setup.py mdplatform/book/_native.c mdplatform/collector/_batcher.pyx
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) venv --quiet --allow-existing --python python3 $(VENV)
	$(UV) pip install --quiet --python $(PY) -r requirements.lock
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	@mkdir -p $(DAGSTER_HOME) && cp -n dagster.yaml $(DAGSTER_HOME)/dagster.yaml 2>/dev/null || true
	@touch $@

# the project's own modules compiled here, as uv compiles the packages (UV_COMPILE_BYTECODE): where a process may not
# write bytecode (PYTHONDONTWRITEBYTECODE, a read-only checkout) every `mdp` compiled them again at its start (0.2 s);
# quick when they are current
install: $(VENV)/.installed
	@$(PY) -m compileall -q mdplatform assets sensors definitions.py > /dev/null

# Tests marked `waits` (storage outages, kill -9, daemons: minutes of waiting, little CPU) run in a second pytest (two
# workers of their own) beside the CPU-bound suite instead of holding its workers; their report follows the main one.
test: install
	@rm -f .pytest-waits.log; \
	$(PY) -m pytest -q -n 2 --dist loadfile -m waits -p no:cacheprovider > .pytest-waits.log 2>&1 & waits=$$!; \
	$(PY) -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder -m "not waits"; main=$$?; \
	wait $$waits; side=$$?; \
	echo "--- tests marked 'waits' (run beside the suite) ---"; cat .pytest-waits.log; \
	test $$main -eq 0 -a $$side -eq 0

demo: install
	$(PY) demo/run.py

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy

# every bench in bench/ (run_all.py: one summary table at the end, each figure beside its reference and limit)
bench: install
	$(PY) bench/run_all.py

# ten minutes: not part of `bench`
soak: install
	$(PY) bench/soak.py

# the UI on the demo lake (.demo/env.sh, written by `make demo`: its lake, healing off) unless MDP_LAKE names one
# the webserver and the daemon, what `dagster dev` runs, without its start-up warnings (`dagster dev` is superseded
# by `dg dev`, which needs a dg project; it also warns that the repo's dagster.yaml is ignored: DAGSTER_HOME has a copy)
# the instance's SQLite storages are created first: the daemon and the webserver creating them at once race
dagster: install
	@if [ -z "$$MDP_LAKE" ] && [ -f .demo/env.sh ]; then source .demo/env.sh; fi; \
	echo "Dagster UI on the lake $${MDP_LAKE:-./lake}: http://127.0.0.1:3000"; \
	$(PY) -c "from dagster import DagsterInstance; DagsterInstance.get()"; \
	$(VENV)/bin/dagster-daemon run -w workspace.yaml & daemon=$$!; \
	trap 'kill $$daemon 2>/dev/null; wait $$daemon' EXIT; \
	$(VENV)/bin/dagster-webserver -w workspace.yaml -h 127.0.0.1 -p 3000

# requirements.lock: what `make install` and the tests get; requirements-runtime.lock: the image's (Dockerfile), the
# same versions without the dev extra
lock:
	$(UV) pip compile pyproject.toml --extra dev -o requirements.lock --no-header --python-version 3.11
	$(UV) pip compile pyproject.toml -c requirements.lock -o requirements-runtime.lock --no-header --python-version 3.11

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
