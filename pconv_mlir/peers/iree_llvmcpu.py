"""IREE on llvm-cpu: IREE's own dense compile (best dense flags) and pconv's compile.

Both go through :func:`pconv_mlir.compile` (torch-mlir FX import -> [pconv passes] ->
iree-compile, ``--iree-llvmcpu-target-cpu=host``); timed by ``iree-benchmark-module``
(:func:`pconv_mlir.runtime.bench_vmfb`), like ``benchmarks/model_bench.py``.
"""

from __future__ import annotations

import os
import time

import numpy as np

from .base import Peer, Runner, import_reason


class _IreeRunner(Runner):
    def __init__(self, path, x_path):
        super().__init__(path)
        self.x_path = x_path
        self._mod = None

    def run(self, x, threads=1):
        from pconv_mlir.runtime import load_module
        if self._mod is None:
            with open(self.artifact, "rb") as f:
                self._mod = load_module(f.read(), device="local-sync")
        return np.asarray(self._mod.run(x))

    def time_ms(self, x, threads, min_time=0.2):
        from pconv_mlir.runtime import bench_vmfb
        np.save(self.x_path, x)
        return bench_vmfb(self.artifact, self.x_path, threads, reps=3, min_time=min_time)


#: IREE's own channels-last rewrite of the imported NCHW network (its transposes propagated by
#: IREE), on top of the target's dense flags: on some models faster than IREE's NCHW code.
IREE_CHANNELS_LAST_FLAGS = (
    "--iree-preprocessing-pass-pipeline=builtin.module(util.func(iree-preprocessing-convert-conv-to-channels-last))",
    "--iree-global-opt-propagate-transposes",
)


class Iree(Peer):
    threads_how = ("iree-benchmark-module: 1 thread = --device=local-sync; n > 1 = --device=local-task "
                   "--task_topology_max_group_count=n")
    packages = ("iree-base-compiler", "iree-base-runtime")

    def __init__(self, dense: bool, channels_last: bool = False):
        self.dense = dense
        self.extra_flags = IREE_CHANNELS_LAST_FLAGS if channels_last else ()
        self.name = ("iree-dense-cl" if channels_last else "iree-dense") if dense else "pconv"
        dense_flags = " ".join(("--iree-global-opt-use-im2col-for-convs --iree-opt-data-tiling "
                                "--iree-llvmcpu-enable-ukernels=all",) + self.extra_flags)
        self.route = (f"pconv_mlir.compile(dense=True): torch-mlir FX import -> iree-compile llvm-cpu, {dense_flags}"
                      if dense else
                      "pconv_mlir.compile: torch-mlir FX import -> pconv passes -> iree-compile llvm-cpu")

    def unavailable(self):
        return import_reason("iree.compiler", "iree.runtime", "torch_mlir")

    def convert(self, model, x, workdir):
        import torch

        import pconv_mlir
        t0 = time.perf_counter()
        compiled = pconv_mlir.compile(model.eval(), [torch.from_numpy(x)], target="llvm-cpu", dense=self.dense,
                                      extra_flags=self.extra_flags)
        path = os.path.join(workdir, f"{self.name}.vmfb")
        compiled.save(path)
        runner = _IreeRunner(path, os.path.join(workdir, f"{self.name}_x.npy"))
        runner.info["compile_s"] = round(time.perf_counter() - t0, 1)
        if not self.dense:
            patterns = sum(r.lowering.startswith("pattern") for r in compiled.report)
            runner.info["pattern_convs"] = f"{patterns}/{len(compiled.report)}"
            blocks = sum(r.lowering.startswith("blocks") for r in compiled.report)
            if blocks:
                runner.info["pattern_convs"] += f", 1x1 block convs {blocks}"
        return runner
