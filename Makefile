# Build and test pipeline of "Memorization in diffusion models: a reproducible study".
# `make help` lists the targets and the variables.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules
comma := ,

PROFILE ?= quick
PYTHON ?= python3
TORCH ?= torch==2.13.*
TORCH_INDEX ?=
VENV ?= .venv
PYTEST_ARGS ?=
MATHJAX_VERSION ?= 3
# make gpu-check runs under the GPU machine's own python (it has torch with CUDA); make gpu-wheels fills the folder
PUBLISH_REMOTE ?=
DRY_RUN ?=
GPU_PYTHON ?= python3
GPU_WHEELS ?= gpu-wheels
WHEELS ?=
# what a bare CUDA image with torch, numpy, pandas, scipy, scikit-learn/-image, transformers and matplotlib lacks
GPU_PACKAGES ?= diffusers papermill jupytext nbformat nbclient jupyter-client jupyter-core ipykernel ipython \
  traitlets pyzmq tornado comm debugpy nest-asyncio nest-asyncio2 tenacity ansicolors entrypoints fastjsonschema \
  jsonschema jsonschema-specifications referencing rpds-py matplotlib-inline jedi parso prompt-toolkit wcwidth \
  stack-data executing pure-eval asttokens decorator pexpect ptyprocess ipython-pygments-lexers mdit-py-plugins \
  markdown-it-py mdurl toml importlib-metadata lazy-importer zipp platformdirs
# papermill mirrors each cell's printed output (training, sampling and estimator progress) to the terminal
PAPERMILL_LOG ?= --log-output

PROFILES := tiny quick full
ifeq ($(filter $(PROFILE),$(PROFILES)),)
$(error PROFILE=$(PROFILE) is not a profile; use one of: $(PROFILES))
endif

BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BUILD := build/$(PROFILE)
SRC := $(BUILD)/src
NOTEBOOKS := $(sort $(wildcard notebooks/*.py))
EXECUTED := $(NOTEBOOKS:notebooks/%.py=$(SRC)/notebooks/%.ipynb)
MATHJAX_DIR := book/_vendor/mathjax

# BOOK_REPO=owner/name: the repository, issues, Binder and Colab buttons, and the chapters' re-execute boxes
# link to it; `make publish` then also pushes the chapters as notebooks (the Colab buttons open them)
BOOK_REPO ?=
export MEMPKG_BOOK_REPO := $(BOOK_REPO)
# mempkg writes its cache under $MEMPKG_RESULTS/<profile>/<notebook>/; pin it to this checkout.
export MEMPKG_RESULTS ?= $(CURDIR)/results
# Take the environment's python3 kernel, never a user-wide kernelspec of the same name.
export JUPYTER_PREFER_ENV_PATH := 1
# Keep debugpy's "frozen modules" warning out of every executed notebook.
export PYDEVD_DISABLE_FILE_VALIDATION := 1
# An inherited MPLBACKEND (pytest set-ups use Agg) would replace the kernel's inline backend
# and leave the executed notebooks without figures.
unexport MPLBACKEND

.PHONY: help venv notebooks book test bench clean clean-results distclean vendor-mathjax gpu-check gpu-wheels gpu-rehearsal publish

define HELP
Memorization in diffusion models: a reproducible study

  make book            execute the notebooks under PROFILE (if changed) and build the book;
                       the last line printed is the path of index.html
  make test            the whole test suite: package tests, every notebook under the tiny
                       profile, and a warnings-as-errors book build
  make notebooks       only execute notebooks/*.py into build/PROFILE/src/notebooks/
  make venv            create $(VENV) and install the package, torch and all extras
  make bench           run the benchmarks (FLIPD cost, volume-growth speed-up, W and C cost and
                       its growth with N) into results/benchmarks/; notebooks/06_performance
                       shows the same measurements in the book
  make publish         push build/PROFILE/html to the gh-pages branch of PUBLISH_REMOTE (default: origin) with
                       ghp-import; DRY_RUN=1 lists what would be pushed; with BOOK_REPO=owner/name, also
                       the chapters as notebooks to its notebooks branch (for the Colab buttons)
  make gpu-check       on a CUDA machine: GPU tests, every chapter under tiny on cuda, the papers' scale;
                       writes book/measurements/gpu-<device>.json (WHEELS= a folder from make gpu-wheels;
                       GPU_ARGS= more options, e.g. "--chapters-profile quick --stages install,chapters")
  make gpu-wheels      on a machine with PyPI: the wheels a bare GPU machine lacks, into $(GPU_WHEELS)
                       (INCEPTION_WEIGHTS= a file that FID needs offline, carried beside them)
  make gpu-rehearsal   on a machine with PyPI: make gpu-check on this CPU in a throw-away environment with the
                       GPU image's versions, from a wheel folder made here (build/gpu-rehearsal/; 7 min, 20 the first)
  make vendor-mathjax  refresh the MathJax copy in $(MATHJAX_DIR) from npm
  make clean           remove build/ (executed notebooks and HTML)
  make clean-results   remove results/ (the cached numbers, models and samples)
  make distclean       remove build/ and .venv; results/ stays

Profiles (PROFILE=..., default quick):
  tiny    the test suite: seconds per notebook, smoke-test numbers only
  quick   the CPU book: minutes per notebook; the papers' findings show
  full    the papers' settings: needs a CUDA GPU and internet (CIFAR-10, Stable Diffusion)

Variables (current value in brackets):
  PROFILE          profile to execute and build [$(PROFILE)]
  PYTHON           interpreter that creates .venv; Python >= 3.10, 3.11 expected [$(PYTHON)]
  TORCH            torch requirement, installed in the same pip command as the rest [$(TORCH)]
  TORCH_INDEX      extra package index for torch wheels (pip --extra-index-url) [$(TORCH_INDEX)];
                   for a given CUDA build, the index URL that PyTorch's install selector
                   shows: make venv TORCH_INDEX=<that URL>
  VENV             environment to install into and run from [$(VENV)];
                   conda users: make book VENV=$$CONDA_PREFIX
  PYTEST_ARGS      extra pytest arguments for make test, e.g. PYTEST_ARGS="-m slow" [$(PYTEST_ARGS)]
  JOBS             how many chapters execute at once, each with an equal share of the cores as its torch
                   threads; 06_performance then runs alone [$(JOBS)]
  PAPERMILL_LOG    papermill's output options; --log-output shows each notebook's own progress in the
                   terminal as it runs, PAPERMILL_LOG= keeps only the cell counter [$(PAPERMILL_LOG)]
  MATHJAX_VERSION  npm version of mathjax for make vendor-mathjax [$(MATHJAX_VERSION)]

Outputs: executed notebooks in build/PROFILE/src/notebooks/ (failed runs in build/PROFILE/failed/),
HTML in build/PROFILE/html/, cached results in results/PROFILE/.
endef
export HELP

help:
	@echo "$$HELP"

# ---- environment -------------------------------------------------------------------------

venv: $(STAMP)

# One pip command for torch and everything else, so the resolver never swaps the pinned torch
# for another build. Reinstalls when pyproject.toml changes.
$(STAMP): pyproject.toml
	@if [ ! -x $(BIN)/python ]; then \
	  $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
	    || { echo "PYTHON=$(PYTHON) is older than 3.10; pass PYTHON=python3.11." >&2; exit 1; }; \
	  echo "Creating $(VENV) with $$($(PYTHON) --version)"; \
	  $(PYTHON) -m venv $(VENV); \
	fi
	$(BIN)/python -m pip install "$(TORCH)" -e ".[all$(if $(filter full,$(PROFILE)),$(comma)full)]" \
	  $(if $(TORCH_INDEX),--extra-index-url "$(TORCH_INDEX)")
	@# cffconvert validates CITATION.cff (tests/test_citation.py); it pins jsonschema<4, which the notebook stack
	@# has outgrown, but works with jsonschema 4: installed without its pins
	$(BIN)/python -m pip install --no-deps "cffconvert==2.0.0" "pykwalify>=1.8" "docopt>=0.6" "ruamel.yaml>=0.17"
	touch $@

# ---- notebooks ---------------------------------------------------------------------------

# JOBS chapters execute at once (make -j), each with THREADS torch threads (OMP_NUM_THREADS, an equal share of
# the cores). The book's small CPU models keep one core busy better than two, so on 2 cores two chapters at one
# thread each finish sooner than one after the other at two. The longest chapters start first (LONGEST_FIRST),
# so no long one starts last. 06_performance times the estimators, so it runs after the others, alone, with
# every core. `full` runs one chapter at a time (they share one GPU); JOBS=1 runs any profile in sequence. An
# OMP_NUM_THREADS already set wins.
CORES := $(shell getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
JOBS ?= $(if $(filter full,$(PROFILE)),1,$(CORES))
THREADS ?= $(CORES)
# the chapters from the longest to the shortest under quick, as the build's own run-time table gives them
LONGEST_FIRST := 03_three_regimes 02_cifar10_overfit 05_three_lenses 04_laion_verbatims 01_von_mises
SOLO := $(filter $(SRC)/notebooks/06_performance.ipynb,$(EXECUTED))
FIRST := $(foreach n,$(LONGEST_FIRST),$(filter $(SRC)/notebooks/$(n).ipynb,$(EXECUTED)))
PARALLEL := $(FIRST) $(filter-out $(FIRST) $(SOLO),$(EXECUTED))
AT_ONCE := $(shell n=$(words $(PARALLEL)); j=$(JOBS); echo $$(( j < n ? j : (n > 0 ? n : 1) )))
SHARE := $(shell c=$(CORES); a=$(AT_ONCE); echo $$(( c / a > 0 ? c / a : 1 )))
KEEP_GOING = $(findstring k,$(firstword -$(MAKEFLAGS)))

notebooks: | $(STAMP)
	@SECONDS=0; status=0; \
	$(MAKE) --no-print-directory -s -j$(AT_ONCE) $(PARALLEL) THREADS=$(SHARE) TAG_OUTPUT=$(filter-out 1,$(AT_ONCE)) \
	  || status=$$?; \
	if [ -n "$(SOLO)" ] && { [ $$status -eq 0 ] || [ -n "$(KEEP_GOING)" ]; }; then \
	  $(MAKE) --no-print-directory -s $(SOLO) THREADS=$(CORES) || status=$$?; \
	fi; \
	echo "Notebooks under PROFILE=$(PROFILE): $$((SECONDS / 60)) min $$((SECONDS % 60)) s in all, $(AT_ONCE) at a time" \
	  "with $(SHARE) torch thread(s) each$(if $(SOLO),$(comma) then $(notdir $(SOLO:.ipynb=)) alone with $(CORES))"; \
	exit $$status

# papermill is the only executor (the book build executes nothing). It writes into build/.../tmp/
# and the result is moved into place only on success, so a failed run leaves no target; the
# partly executed notebook, with its traceback, is kept in build/PROFILE/failed/.
# The venv is order-only: reinstalling does not re-execute notebooks.
$(SRC)/notebooks/%.ipynb: notebooks/%.py | $(STAMP)
	@mkdir -p $(@D) $(BUILD)/tmp $(BUILD)/failed
	@rm -f $(BUILD)/failed/$*.ipynb
	@echo "Executing $< under PROFILE=$(PROFILE) with $${OMP_NUM_THREADS:-$(THREADS)} torch thread(s)"
	@SECONDS=0; if ! $(BIN)/jupytext --to ipynb --set-kernel python3 -o - $< \
	    | PYTHONWARNINGS=ignore::UserWarning:papermill.iorw OMP_NUM_THREADS=$${OMP_NUM_THREADS:-$(THREADS)} \
	      $(BIN)/papermill - $(BUILD)/tmp/$*.ipynb -p profile $(PROFILE) --cwd "$(CURDIR)" $(PAPERMILL_LOG) \
	      $(if $(TAG_OUTPUT),2>&1 | sed -u 's/^/[$*] /'); then \
	  mv -f $(BUILD)/tmp/$*.ipynb $(BUILD)/failed/$*.ipynb 2>/dev/null || true; \
	  echo "FAILED: $< under PROFILE=$(PROFILE) after $${SECONDS} s; the partly executed notebook is $(BUILD)/failed/$*.ipynb" >&2; \
	  exit 1; \
	fi; \
	echo "Executed $< under PROFILE=$(PROFILE) in $$((SECONDS / 60)) min $$((SECONDS % 60)) s"
	@mv -f $(BUILD)/tmp/$*.ipynb $@

# ---- book --------------------------------------------------------------------------------

# book/ holds the sources and is never written to: they are copied next to the executed
# notebooks in build/PROFILE/src/, the run-time table is generated there, and Jupyter Book
# builds that folder from scratch with warnings as errors.
book: $(STAMP) notebooks
	@mkdir -p $(SRC)
	@find $(SRC) -mindepth 1 -maxdepth 1 ! -name notebooks -exec rm -rf {} +
	cp -R book/. $(SRC)/
	$(if $(BOOK_REPO),$(BIN)/python tools/book_config.py $(SRC)/_config.yml --repo "$(BOOK_REPO)")
	@mkdir -p $(SRC)/_generated
	$(BIN)/python tools/runtimes.py --profile $(PROFILE) $(EXECUTED) > $(SRC)/_generated/runtimes.md
	$(BIN)/python tools/scorecard.py --profile $(PROFILE) --figure $(SRC)/_generated/scorecard.png \
	  > $(SRC)/_generated/scorecard.md
	$(BIN)/python tools/scorecard.py --profile $(PROFILE) --status > $(SRC)/_generated/status.md
	rm -rf $(BUILD)/_build $(BUILD)/html
	$(BIN)/jupyter-book build $(SRC) --path-output $(BUILD) -W -n --keep-going \
	  || { echo "Book build failed: the files under $(SRC)/ are copies; fix them in book/ or notebooks/." >&2; exit 1; }
	mv $(BUILD)/_build/html $(BUILD)/html
	@echo "Book: $(CURDIR)/$(BUILD)/html/index.html"

# ---- checks ------------------------------------------------------------------------------

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

publish: $(STAMP)
	$(BIN)/python tools/publish.py --profile $(PROFILE) $(if $(PUBLISH_REMOTE),--remote "$(PUBLISH_REMOTE)") \
	  $(if $(BOOK_REPO),--repo "$(BOOK_REPO)") $(if $(DRY_RUN),--dry-run)

gpu-check:
	$(GPU_PYTHON) tools/gpu_check.py $(if $(WHEELS),--wheels $(WHEELS)) $(GPU_ARGS)

# INCEPTION_WEIGHTS=path: torch-fidelity's weights-inception-2015-12-05-6726825d.pth, copied beside the wheels with
# torch-fidelity itself; gpu_check's install stage puts it in $TORCH_HOME/hub/checkpoints, where FID looks for it
gpu-wheels: $(STAMP)
	rm -rf $(GPU_WHEELS) && mkdir -p $(GPU_WHEELS)
	$(BIN)/python -m pip wheel -q --no-deps --no-build-isolation -w $(GPU_WHEELS) .
	$(BIN)/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
	  -d $(GPU_WHEELS) $(GPU_PACKAGES) $(if $(INCEPTION_WEIGHTS),torch-fidelity)
	$(if $(INCEPTION_WEIGHTS),cp $(INCEPTION_WEIGHTS) $(GPU_WHEELS)/weights-inception-2015-12-05-6726825d.pth)
	@du -sh $(GPU_WHEELS)

# the venv it makes (about 5.5 GB: PyPI's torch for Linux is the CUDA build) is kept for the next rehearsal
gpu-rehearsal: $(STAMP)
	$(MAKE) --no-print-directory gpu-wheels GPU_WHEELS=build/gpu-rehearsal/wheels
	tools/gpu_rehearsal.sh build/gpu-rehearsal

bench: $(STAMP)
	$(BIN)/python benchmarks/flipd_cost.py
	$(BIN)/python benchmarks/volume_speed.py
	$(BIN)/python benchmarks/regimes_cost.py
	$(BIN)/python benchmarks/regimes_scaling.py

# ---- MathJax, served from the book itself so that pages make no external request ----------

vendor-mathjax:
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	(cd "$$tmp" && npm pack --silent "mathjax@$(MATHJAX_VERSION)" > /dev/null); \
	tar -xzf "$$tmp"/mathjax-*.tgz -C "$$tmp"; \
	version=$$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$$tmp/package/package.json"); \
	find $(MATHJAX_DIR) -mindepth 1 ! -name README.md -delete 2>/dev/null || true; \
	mkdir -p $(MATHJAX_DIR)/output/chtml/fonts; \
	cp "$$tmp/package/es5/tex-chtml-full.js" "$$tmp/package/LICENSE" $(MATHJAX_DIR)/; \
	cp -R "$$tmp/package/es5/output/chtml/fonts/woff-v2" $(MATHJAX_DIR)/output/chtml/fonts/; \
	sed -i "s/^MathJax version: .*/MathJax version: $$version/" $(MATHJAX_DIR)/README.md; \
	echo "Vendored MathJax $$version into $(MATHJAX_DIR)"

# ---- cleaning ----------------------------------------------------------------------------

clean:
	rm -rf build

clean-results:
	rm -rf results

# Only the project's own .venv: VENV may name a conda environment, which is not ours to delete.
distclean: clean
	rm -rf .venv
