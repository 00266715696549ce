# Set-up and everyday commands. `make demo` and `make test` install what they need first.
PYTHON ?= python3
VENV   ?= .venv
# The CPU build of PyTorch (a local file on our machines). GPU users: see the README.
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin

.PHONY: install demo test lint clean

$(BIN)/estilo: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[test]"
	touch $@

install: $(BIN)/estilo

demo: install
	$(BIN)/estilo examples/content.jpg examples/style.jpg -o out/demo.png --overwrite

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/pip install -q ruff mypy
	$(BIN)/ruff check src tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) out .pytest_cache
