"""Wrap a LoweredConv into a runnable module, compile it with IREE, run and time it.

Used by tests and benchmarks/layer_bench.py; the compiler driver has its own path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from .mlir_util import dense_attr
from .spec import LoweredConv

#: Best dense flags measured for llvm-cpu (architecture.md and results/layer_bench.md).
DENSE_BEST_FLAGS = ["--iree-global-opt-use-im2col-for-convs"]
CPU_FLAGS = ["--iree-hal-target-device=local", "--iree-hal-local-target-device-backends=llvm-cpu",
             "--iree-llvmcpu-target-cpu=host"]


def wrap_module(low: LoweredConv, entry: str = "main", relu: bool = False) -> str:
    """Module with ``@entry(%x) -> out`` calling the lowered function on inline constants."""
    s = low.spec
    L = ["module {", low.mlir.rstrip(), f"  func.func @{entry}(%x: {s.in_type}) -> {s.out_type} {{"]
    names = []
    for i, c in enumerate(low.constants):
        L.append(f"    %c{i} = arith.constant {dense_attr(c)}")
        names.append(f"%c{i}")
    types = [s.in_type] + list(low.arg_types)
    L.append(f"    %y = func.call @{low.func_name}(%x{''.join(', ' + n for n in names)}) : "
             f"({', '.join(types)}) -> {s.out_type}")
    res = "%y"
    if relu:
        L.append(f"    %e = tensor.empty() : {s.out_type}")
        L.append("    %r = linalg.generic {indexing_maps = [affine_map<(a, b, c, d) -> (a, b, c, d)>, "
                 "affine_map<(a, b, c, d) -> (a, b, c, d)>], iterator_types = [\"parallel\", \"parallel\", "
                 f"\"parallel\", \"parallel\"]}} ins(%y : {s.out_type}) outs(%e : {s.out_type}) {{")
        L.append("    ^bb0(%v: f32, %o: f32):")
        L.append("      %z = arith.constant 0.0 : f32")
        L.append("      %m = arith.maximumf %v, %z : f32")
        L.append("      linalg.yield %m : f32")
        L.append(f"    }} -> {s.out_type}")
        res = "%r"
    L.append(f"    return {res} : {s.out_type}")
    L.append("  }")
    L.append("}")
    return "\n".join(L) + "\n"


def compile_text(text: str, flags: list[str] | None = None, target: str = "cpu") -> bytes:
    import iree.compiler as ic
    args = list(CPU_FLAGS if target == "cpu" else []) + list(flags or [])
    if target != "cpu":
        args = list(flags or [])
    return ic.compile_str(text, extra_args=args)


def run_vmfb(vmfb: bytes, x: np.ndarray, driver: str = "local-sync", entry: str = "main") -> np.ndarray:
    import iree.runtime as rt
    config = rt.Config(driver)
    ctx = rt.SystemContext(config=config)
    vm_module = rt.VmModule.copy_buffer(ctx.instance, vmfb)
    ctx.add_vm_module(vm_module)
    f = ctx.modules.module[entry]
    return np.asarray(f(x)).copy()


def conv_ref(spec, x, weight, bias):
    """torch.nn.functional.conv2d reference (asymmetric padding via F.pad)."""
    import torch
    import torch.nn.functional as F
    t, l, b, r = spec.padding
    xt = torch.from_numpy(x)
    xt = F.pad(xt, (l, r, t, b))
    y = F.conv2d(xt, torch.from_numpy(np.ascontiguousarray(weight, np.float32)),
                 None if bias is None else torch.from_numpy(np.asarray(bias, np.float32)),
                 stride=spec.stride, padding=0, dilation=spec.dilation, groups=spec.groups)
    return y.numpy()


def rel_err(a, b) -> float:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def bench_vmfb(vmfb_path: str, x_path: str, threads: int, reps: int = 5, min_time: float = 0.2,
               entry: str = "main") -> float:
    """Median real time (ms) of iree-benchmark-module over ``reps`` repetitions."""
    exe = os.path.join(os.path.dirname(sys.executable), "iree-benchmark-module")
    cmd = [exe, f"--module={vmfb_path}", f"--function={entry}", f"--input=@{x_path}",
           f"--benchmark_repetitions={reps}", f"--benchmark_min_time={min_time}s",
           "--benchmark_format=json", "--benchmark_report_aggregates_only=true"]
    if threads == 1:
        cmd += ["--device=local-sync"]
    else:
        cmd += ["--device=local-task", f"--task_topology_max_group_count={threads}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    for b in data["benchmarks"]:
        if b.get("aggregate_name") == "median":
            t = b["real_time"]
            unit = b.get("time_unit", "ms")
            return t * {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
    raise RuntimeError(f"no median in {out[:500]}")
