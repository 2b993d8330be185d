# s5geo: the two commands of the README's Quickstart are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
S5GEO_DATA ?= $(abspath ../shared/data)
export S5GEO_DATA
SCENE ?= $(wildcard $(S5GEO_DATA)/naip/m_4709963_se_14_1_20200831.tif)
OUT ?= demo-output
# torch comes from the machine's local wheels (pip's cap on this machine); other machines get it
# from PyPI. Pinned here, not in pyproject.toml, so the `train` extra stays flexible.
TORCH ?= torch==2.14.1 torchvision==0.29.1

.PHONY: demo test lint typecheck unit docs qgis-test qgis-plugin bench results-s4p default-model dist clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# The deployment install: what `make demo` and GIS users need. No torch.
$(VENV)/.deploy: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

# Everything: training extras and the developer tools.
$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[train,dev]'
	touch $(VENV)/.deploy $@

# The demo fits a model for the NAIP scene from polygons drawn by eye on it (demo/README.md), then
# maps the scene with it. LABELS= (empty) maps SCENE with the bundled Dubai model instead.
LABELS ?= demo/naip_2020_labels.gpkg
demo: $(VENV)/.deploy
	@if [ -z "$(SCENE)" ]; then \
	  echo "No scene found: run 'make demo SCENE=path/to/scene.tif LABELS=polygons.gpkg'."; \
	  exit 2; fi
	@mkdir -p $(OUT)
	@if [ -n "$(LABELS)" ]; then \
	  $(BIN)/s5geo fit "$(SCENE)" --labels "$(LABELS)" --out $(OUT)/model.onnx --no-maps \
	    --overwrite; fi
	$(BIN)/s5geo predict "$(SCENE)" $(if $(LABELS),--model $(OUT)/model.onnx) \
	  --out $(OUT)/landcover.gpkg --min-area 200 --confidence $(OUT)/confidence.tif \
	  --quicklook $(OUT)/landcover.png --overwrite
	@echo "Outputs in $(abspath $(OUT)): landcover.gpkg (polygons), landcover.tif (COG)," \
	  "confidence.tif (low: unsure, draw polygons there next), landcover.png"
	@if [ -n "$(LABELS)" ]; then echo "The fitted model: model.onnx, its report model.fit.json" \
	  "and model.confusion.png (spatial cross-validation over the polygons)"; fi

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(VENV)/.dev
	$(BIN)/mypy s5geo

unit: $(VENV)/.dev
	$(BIN)/python -m pytest --ignore=tests/qgis

# The documentation site (mkdocs.yml) into site/: user guide, CLI and API reference generated from
# the code, methods, results. --strict: a broken link, page or reference fails the build.
docs: $(VENV)/.dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# Real QGIS 3.22 from Debian (installed when missing), its own venv, tests/qgis.
qgis-test:
	scripts/qgis/run_tests.sh

test: lint typecheck docs unit qgis-test

qgis-plugin:
	$(PYTHON) scripts/qgis/build_plugin.py

# The sdist and the wheel into dist/, the bundled model inside: `pip install dist/s5geo-*.whl`
# is the deployment install on a machine without the repository.
dist: $(VENV)/.dev
	rm -rf dist
	$(BIN)/python -m build --outdir dist .

bench: $(VENV)/.dev
	$(BIN)/python bench/run_all.py

# The Dubai S4P table of docs/RESULTS.md: 3 variants x 3 seeds, resumable (hours on 2 cores).
results-s4p: $(VENV)/.dev
	scripts/dubai_s4p_results.sh

# The bundled default model (docs/DEFAULT_MODEL.md): S4P teacher if missing, SSKD student, ONNX +
# INT8, Tile 8 scores, installed as s5geo/resources/default.onnx. Resumable.
default-model: $(VENV)/.dev
	scripts/default_model.sh

clean:
	rm -rf $(OUT) dist build site .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
