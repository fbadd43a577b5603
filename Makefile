# pconv-mlir: every target does set-up first (idempotent, quick when nothing changed).
VENV := .venv/bin

.PHONY: setup test test-lit test-py test-slow demo bench
setup:
	@bash scripts/setup.sh

test: setup
	$(VENV)/lit -sv test
	$(VENV)/python -m pytest -q

test-slow: setup
	$(VENV)/python -m pytest -q -m slow

demo: setup
	$(VENV)/python -m pconv_mlir.demo

bench: setup
	$(VENV)/python benchmarks/layer_bench.py
