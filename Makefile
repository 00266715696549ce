# Set-up and everyday commands. `make demo` and `make test` install what they need first.
PYTHON ?= python3
VENV   ?= .venv
# The CPU build of PyTorch (a local file on our machines). GPU users: see the README.
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin

.PHONY: install demo video-demo test lint clean web seed-table report-table

$(BIN)/estilo: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[test]"
	$(BIN)/pip check
	touch $@

install: $(BIN)/estilo

demo: install
	$(BIN)/estilo demo -o out/demo.png --overwrite

# The bundled clip (2.5 s, 240x160, with sound) painted without flicker -> out/video-demo.mp4
video-demo: install
	$(BIN)/estilo video src/estilo/data/examples/pan.mp4 src/estilo/data/examples/style.jpg \
		-o out/video-demo.mp4 --overwrite

# The report's results table (estilo grid --preset report-table) on the bundled photo and
# paintings: docs/report-table/sheet.jpg and table.md, shown in the README (about 20 min on
# 2 CPU cores; the full-size rows go to out/report-table/). report-table is the same target.
seed-table report-table: install
	$(BIN)/python docs/report-table/make_sheet.py

# The web app on http://127.0.0.1:7860 (Ctrl-C to stop); `estilo web --help` for options.
# (Gradio comes with the test extra installed above; elsewhere: pip install 'estilo[web]'.)
web: install
	$(BIN)/estilo web

test: install
	$(BIN)/python -m pytest

# The package's layers and other import contracts (pyproject.toml), then ruff and mypy.
lint: install
	$(BIN)/lint-imports
	$(BIN)/ruff check src tests tools
	$(BIN)/mypy

clean:
	rm -rf $(VENV) out .pytest_cache
