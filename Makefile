# pconv-mlir: every target does set-up first (idempotent, quick when nothing changed).
VENV := .venv/bin

.PHONY: setup test test-lit test-py test-slow demo bench lint
setup:
	@bash scripts/setup.sh

# ruff check only (rules in pyproject.toml); the tree is not ruff-formatted, so no format check.
lint: setup
	$(VENV)/ruff check .

test: setup
	$(VENV)/lit -sv test
	$(VENV)/python -m pytest -v --durations=15

test-slow: setup
	$(VENV)/python -m pytest -q -m slow

demo: setup
	$(VENV)/python -m pconv_mlir.demo

bench: setup
	$(VENV)/python benchmarks/layer_bench.py

# Benchmark against the peers (TFLite, ONNX Runtime, TVM, MNN, PyTorch, IREE dense): installs the
# `bench` extra once (stamp; torch stays 2.13.0), then runs benchmarks/peers_bench.py.
# make bench-peers BENCH_PEERS_ARGS="--models vgg16_cifar,resnet50 --threads 1,2"
.PHONY: bench-peers
BENCH_PEERS_ARGS ?= --models vgg16_cifar
bench-peers: setup
	@want=$$(cat pyproject.toml Makefile | sha256sum | cut -d' ' -f1); \
	if [ "$$(cat .venv/.pconv-bench-stamp 2>/dev/null)" != "$$want" ]; then \
	  echo "bench-peers: installing the bench extra"; \
	  $(VENV)/python -m pip install -q -e ".[test,bench]" "torch==2.13.0" || exit 1; \
	  $(VENV)/python -c "import tvm, tvm.relax.frontend.onnx" >/dev/null 2>&1 || \
	    $(VENV)/python -m pip install -q --upgrade typing_extensions "torch==2.13.0" || exit 1; \
	  $(VENV)/python -c "import tvm, tvm.relax.frontend.onnx" >/dev/null 2>&1 || { echo "bench-peers: import tvm still fails" >&2; exit 1; }; \
	  $(VENV)/python -c "import torch; v = torch.__version__.split('+')[0]; assert v == '2.13.0', v" || exit 1; \
	  echo "$$want" > .venv/.pconv-bench-stamp; \
	fi
	$(VENV)/python benchmarks/peers_bench.py $(BENCH_PEERS_ARGS)

# Robustness runs (long; each writes its count and result to results/).
.PHONY: fuzz test-long
fuzz: setup
	$(VENV)/python scripts/fuzz_pconv_opt.py --count 10000 --seed 0 -o results/fuzz_pconv_opt.json

test-long: setup
	$(VENV)/python scripts/differential_long.py --cases 1000 -o results/differential_long.json
