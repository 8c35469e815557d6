# Each target sets up what it needs: a virtualenv in .venv with torch pinned to 2.13.0, then
# the package with its test extras. Where the default pip index serves torch with CUDA packages,
# TORCH_INDEX=https://download.pytorch.org/whl/cpu takes the CPU build instead.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TORCH := torch==2.13.0
TORCH_INDEX ?=

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) $(TORCH)
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

# Train the BiGRU baseline and VSL-GG-Hier on Twitter POS (fetching the free datasets first
# if no data root is found) and print a dev/test table.
demo: $(STAMP)
	$(PY) scripts/demo.py

# One pytest worker per CPU core this process may use (pytest-xdist).
test: $(STAMP)
	$(PY) -m pytest -n auto tests

# VSL training throughput (Twitter, 1 and 2 threads), then HMM inference against its peers and
# NHMM updates (WSJ, one thread): the two tables of the README's Benchmarks section.
bench: $(STAMP)
	$(PY) scripts/bench.py --out results/bench.json --family vsl
	$(PY) scripts/bench.py --out results/bench_hmm.json --family hmm --threads 1

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
