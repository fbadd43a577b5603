"""The pconv passes, one module per pass, found by flag name.

``PASSES`` maps each flag to the module defining it; modules load on first use so
``pconv-opt --help`` stays fast. A test checks each pass's ``name`` equals its key and
its module is the snake_case of the flag without the ``pconv-`` prefix.
"""

from __future__ import annotations

import importlib

PASSES: dict[str, str] = {
    "pconv-eliminate-dead-channels": "eliminate_dead_channels",
    "pconv-raise-pattern-conv": "raise_pattern_conv",
    "pconv-reorder-kernels": "reorder_kernels",
    "pconv-compact-weights": "compact_weights",
    "pconv-eliminate-redundant-loads": "eliminate_redundant_loads",
    "pconv-lower-to-linalg": "lower_to_linalg",
    "pconv-trim-conv-inputs": "trim_conv_inputs",
    "pconv-im2col-dense-convs": "im2col_dense_convs",
    "pconv-convert-to-nhwc": "convert_to_nhwc",
}


def pass_class(flag: str):
    """The pass class registered under ``flag`` (KeyError when unknown)."""
    module = importlib.import_module(f"{__name__}.{PASSES[flag]}")
    for value in vars(module).values():
        if isinstance(value, type) and getattr(value, "name", None) == flag and value.__module__ == module.__name__:
            return value
    raise KeyError(f"module {module.__name__} defines no pass named {flag}")
