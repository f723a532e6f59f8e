# The course's two front doors: `make test` and `make book`.
# Each creates .venv on first use (python3 -m venv), installs requirements.txt and this package
# (editable), then does its job. Later runs reuse the environment until requirements change.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# nbgrader shells out to `alembic`; the venv's bin/ must come first on PATH.
RUN    := PATH="$(CURDIR)/$(BIN):$$PATH"

.PHONY: all venv test book bench clean help

help:
	@echo "make test    create .venv if needed, install, run every test"
	@echo "make book    create .venv if needed, install, build the book into _build/html"
	@echo "make bench   time every attention variant (QUICK=1 for a short run)"

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

test: $(STAMP)
	$(RUN) $(BIN)/python -m pytest

clean:
	rm -rf _build .pytest_cache .hypothesis
