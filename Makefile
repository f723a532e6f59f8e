# The course's two front doors: `make test` and `make book`.
# Each creates .venv on first use (python3 -m venv), installs requirements.txt and this package
# (editable), then does its job. Later runs reuse the environment until requirements change.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# nbgrader shells out to `alembic`; the venv's bin/ must come first on PATH.
RUN    := PATH="$(CURDIR)/$(BIN):$$PATH"

.PHONY: all venv test lint format test-grading-all book vendor bench bench-grading clean help \
	sandbox-deps browser-deps

help:
	@echo "make test    create .venv if needed, install, lint, run every test"
	@echo "make lint    ruff format --check and ruff check: package, tests, benchmarks, chapter cells"
	@echo "make format  ruff format the same files, chapter and solution code cells included"
	@echo "make test-grading-all   every bad and wrong submission on every chapter (make test: a sample)"
	@echo "make book    create .venv if needed, install, build the book into _build/html"
	@echo "make bench   time every attention variant (QUICK=1 for a short run)"
	@echo "make bench-grading   notebooks/s of the parallel grader on 1 and 2 workers"

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

# The autograder runs each notebook's kernel in a bubblewrap sandbox (selfattn_course/grading/autograde/sandbox.py).
sandbox-deps:
	@command -v bwrap >/dev/null && command -v prlimit >/dev/null && command -v choom >/dev/null || \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && apt-get install -y -qq bubblewrap util-linux; \
	else \
		echo "sandbox-deps: install bubblewrap (sudo apt-get install bubblewrap); sandbox tests will skip" >&2; \
	fi

# tests/test_book.py opens the built book in headless Chromium: Playwright (requirements.txt)
# drives Debian's `chromium` and never downloads a browser (no `playwright install`).
browser-deps:
	@command -v chromium >/dev/null || \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && apt-get install -y -qq chromium; \
	else \
		echo "browser-deps: install chromium (sudo apt-get install chromium); browser tests skip" >&2; \
	fi

test: $(STAMP) sandbox-deps browser-deps lint
	$(RUN) $(BIN)/python -m pytest

# The formatter and linter (settings: [tool.ruff] in pyproject.toml). The code cells of the
# chapters (book/) and of the solution sources (solutions/) are checked cell by cell by
# selfattn_course/authoring/cells.py, which reports them at the page's own line numbers.
PY_SOURCES := selfattn_course tests benchmarks nbgrader_config.py

lint: $(STAMP)
	$(BIN)/ruff format --check $(PY_SOURCES)
	$(BIN)/ruff check $(PY_SOURCES)
	$(BIN)/python -m selfattn_course.authoring.cells book solutions

format: $(STAMP)
	$(BIN)/ruff format $(PY_SOURCES)
	$(BIN)/ruff check --fix $(PY_SOURCES)
	$(BIN)/python -m selfattn_course.authoring.cells --fix book solutions

# The bank of broken and malicious submissions (tests/bad_submissions/) on every chapter, not
# only on the sample `make test` grades; and every wrong submission of tests/grading_bank/
# graded by nbgrader (`make test` grades those that need the real pipeline, one more a chapter).
test-grading-all: $(STAMP) sandbox-deps
	SELFATTN_GRADING_ALL=1 $(RUN) $(BIN)/python -m pytest tests/test_grading_robustness.py \
		tests/test_grading_e2e.py

# Offline math and Chinese text: npm ci installs what package-lock.json pins, and the book's share
# of it goes to _extra/, which html_extra_path (_config.yml) copies to the root of _build/html.
# - MathJax: its es5/ folder, as _extra/mathjax.
# - Noto Sans SC (@fontsource/noto-sans-sc), as _extra/fonts/noto-sans-sc: the stylesheets of
#   weights 400 and 700 (regular, bold) in one, narrowed to CJK code points by
#   selfattn_course/authoring/cjk_font.py (its docstring says why), the woff2 slices it names
#   (88 per weight, 4.7 MB in all, of which a page downloads only the few holding its characters)
#   and the font's licence (SIL OFL 1.1).
# `make vendor` does both; node_modules/.package-lock.json is the mark npm ci leaves.
NPM_INSTALLED := node_modules/.package-lock.json
MATHJAX       := _extra/mathjax/tex-mml-chtml.js
CJK_FONT      := _extra/fonts/noto-sans-sc/noto-sans-sc.css
FONTSOURCE    := node_modules/@fontsource/noto-sans-sc
CJK_WEIGHTS   := 400 700

vendor: $(MATHJAX) $(CJK_FONT)

$(NPM_INSTALLED): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

$(MATHJAX): $(NPM_INSTALLED)
	rm -rf _extra/mathjax
	mkdir -p _extra
	cp -R node_modules/mathjax/es5 _extra/mathjax

# (cjk_font.py uses only the standard library: it runs as a script, without the venv.)
$(CJK_FONT): $(NPM_INSTALLED) selfattn_course/authoring/cjk_font.py
	rm -rf _extra/fonts/noto-sans-sc
	mkdir -p _extra/fonts/noto-sans-sc/files
	cp $(FONTSOURCE)/LICENSE _extra/fonts/noto-sans-sc/LICENSE
	$(PYTHON) selfattn_course/authoring/cjk_font.py \
		$(foreach weight,$(CJK_WEIGHTS),$(FONTSOURCE)/$(weight).css) > $@.tmp
	cd $(FONTSOURCE) && cp $$(grep -o 'files/[^)]*\.woff2' $(CURDIR)/$@.tmp | sort -u) \
		$(CURDIR)/_extra/fonts/noto-sans-sc/files/
	mv $@.tmp $@

# Warnings are errors (-W), every cross-reference must resolve (-n). --all re-reads every page,
# so a page's warnings fail every build, not just the first after an edit; its code still runs
# only when it changed (the outputs are cached in _build/.jupyter_cache).
book: $(STAMP) vendor
	$(RUN) $(BIN)/jupyter-book build . -W -n --keep-going --all

# Each variant x N runs in its own process; results go to benchmarks/results/ (see its README).
bench: $(STAMP)
	$(RUN) $(BIN)/python benchmarks/run.py $(if $(QUICK),--quick)

# Grading a class (selfattn_course/grading/classroom/pipeline.py): 1 vs 2 workers, projected class times.
bench-grading: $(STAMP) sandbox-deps
	$(RUN) $(BIN)/python benchmarks/bench_grading_parallel.py

clean:
	rm -rf _build .pytest_cache .hypothesis
