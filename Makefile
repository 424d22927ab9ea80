# `make demo` runs the main job, `make test` the whole suite; both set up .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# the CPU build of torch pinned for development machines; override for a CUDA machine
TORCH_SPEC ?= torch==2.13.0

.PHONY: demo test lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)" || $(BIN)/pip install -q torch
	$(BIN)/pip install -q -e ".[test]"
	touch $@

demo: $(BIN)/.installed
	$(BIN)/python -m examples.char_gpt

test: $(BIN)/.installed
	$(BIN)/ruff check ember tests benchmarks examples
	$(BIN)/python -m pytest -n 2 tests

lint: $(BIN)/.installed
	$(BIN)/ruff check ember tests benchmarks examples

bench: $(BIN)/.installed
	$(BIN)/python -m benchmarks.overhead

clean:
	rm -rf $(VENV)
