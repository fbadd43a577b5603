"""Wrap a LoweredConv into a runnable module, compile it for this CPU, run it, and compute
PyTorch's answer for it.

Used by tests and benchmarks/layer_bench.py; the compiler driver has its own path.
"""

from __future__ import annotations

import numpy as np

from pconv_mlir.lowering.mlir_util import dense_attr
from pconv_mlir.lowering.spec import LoweredConv


def wrap_module(low: LoweredConv, entry: str = "main", relu: bool = False) -> str:
    """Module with ``@entry(%x) -> out`` calling the lowered function on inline constants."""
    L = ["module {", low.mlir.rstrip(), f"  func.func @{entry}(%x: {low.in_type}) -> {low.out_type} {{"]
    names = []
    for i, c in enumerate(low.constants):
        L.append(f"    %c{i} = arith.constant {dense_attr(c)}")
        names.append(f"%c{i}")
    types = [low.in_type] + list(low.arg_types)
    L.append(f"    %y = func.call @{low.func_name}(%x{''.join(', ' + n for n in names)}) : "
             f"({', '.join(types)}) -> {low.out_type}")
    res = "%y"
    if relu:
        L.append(f"    %e = tensor.empty() : {low.out_type}")
        L.append("    %r = linalg.generic {indexing_maps = [affine_map<(a, b, c, d) -> (a, b, c, d)>, "
                 "affine_map<(a, b, c, d) -> (a, b, c, d)>], iterator_types = [\"parallel\", \"parallel\", "
                 f"\"parallel\", \"parallel\"]}} ins(%y : {low.out_type}) outs(%e : {low.out_type}) {{")
        L.append("    ^bb0(%v: f32, %o: f32):")
        L.append("      %z = arith.constant 0.0 : f32")
        L.append("      %m = arith.maximumf %v, %z : f32")
        L.append("      linalg.yield %m : f32")
        L.append(f"    }} -> {low.out_type}")
        res = "%r"
    L.append(f"    return {res} : {low.out_type}")
    L.append("  }")
    L.append("}")
    return "\n".join(L) + "\n"


def compile_text(text: str, flags: list[str] | None = None) -> bytes:
    """``text`` compiled for this host's CPU (the ``llvm-cpu`` target) with extra ``flags``."""
    from pconv_mlir.targets import compile_mlir

    return compile_mlir(text, "llvm-cpu", extra_flags=flags or ())


def run_vmfb(vmfb: bytes, x: np.ndarray, driver: str = "local-sync", entry: str = "main") -> np.ndarray:
    """The one output of ``entry`` on ``x``."""
    from pconv_mlir.runtime import load_module

    y = load_module(vmfb, device=driver).run(x, function=entry)
    return y


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

