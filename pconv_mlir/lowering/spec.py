"""Convolution spec and lowering result shared by the pattern and dense emitters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pconv_mlir.errors import PconvError

__all__ = ["ConvSpec", "LoweredConv", "PatternConvRefused"]


class PatternConvRefused(PconvError):
    """The pattern lowering will not handle this layer; the caller keeps it dense.

    ``reason`` says why (unsupported form, or predicted not faster than dense).
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _pair(v, name):
    if isinstance(v, (int, np.integer)):
        return (int(v), int(v))
    t = tuple(int(x) for x in v)
    if len(t) != 2:
        raise ValueError(f"{name} needs 2 values, got {v!r}")
    return t


@dataclass(frozen=True)
class ConvSpec:
    """A 2-D convolution, NCHW input / FCHW weight, as torch.nn.functional.conv2d sees it.

    ``padding`` is (top, left, bottom, right); an int or a (ph, pw) pair is expanded.
    """

    N: int
    C: int
    H: int
    W: int
    K: int
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (1, 1, 1, 1)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    KH: int = 3
    KW: int = 3

    def __post_init__(self):
        object.__setattr__(self, "stride", _pair(self.stride, "stride"))
        object.__setattr__(self, "dilation", _pair(self.dilation, "dilation"))
        p = self.padding
        if isinstance(p, (int, np.integer)):
            p = (int(p),) * 4
        p = tuple(int(x) for x in p)
        if len(p) == 2:
            p = (p[0], p[1], p[0], p[1])
        if len(p) != 4:
            raise ValueError(f"padding needs (top, left, bottom, right), got {self.padding!r}")
        object.__setattr__(self, "padding", p)
        if self.C % self.groups or self.K % self.groups:
            raise ValueError(f"C={self.C} and K={self.K} must be divisible by groups={self.groups}")

    @property
    def Cg(self) -> int:
        return self.C // self.groups

    @property
    def Kg(self) -> int:
        return self.K // self.groups

    @property
    def Hp(self) -> int:
        return self.H + self.padding[0] + self.padding[2]

    @property
    def Wp(self) -> int:
        return self.W + self.padding[1] + self.padding[3]

    @property
    def OH(self) -> int:
        return (self.Hp - self.dilation[0] * (self.KH - 1) - 1) // self.stride[0] + 1

    @property
    def OW(self) -> int:
        return (self.Wp - self.dilation[1] * (self.KW - 1) - 1) // self.stride[1] + 1

    @property
    def in_type(self) -> str:
        return f"tensor<{self.N}x{self.C}x{self.H}x{self.W}xf32>"

    @property
    def out_type(self) -> str:
        return f"tensor<{self.N}x{self.K}x{self.OH}x{self.OW}xf32>"

    @property
    def dense_macs(self) -> int:
        return self.N * self.K * self.OH * self.OW * self.Cg * self.KH * self.KW

    def torch_padding_ok(self) -> bool:
        t, l, b, r = self.padding
        return t == b and l == r


@dataclass
class LoweredConv:
    """Result of an emitter.

    ``mlir``: text of ``func.func private @name(%x: <in>, %a0: ..., ...) -> <out>`` (builtin,
    func, arith, tensor, linalg, math only). ``constants``: numpy arrays passed, in order, as
    the extra arguments (the caller materialises them as ``arith.constant dense<>``).
    ``arg_types``: the MLIR tensor types of those arguments. ``stats``: MACs, rows, bytes.
    """

    func_name: str
    spec: ConvSpec
    mlir: str
    constants: list[np.ndarray]
    arg_types: list[str]
    stats: dict[str, Any] = field(default_factory=dict)
    formulation: str = ""
    layout: str = "nchw"  # of the function's input and result: "nchw" or "nhwc"

    @property
    def in_type(self) -> str:
        s = self.spec
        return f"tensor<{s.N}x{s.H}x{s.W}x{s.C}xf32>" if self.layout == "nhwc" else s.in_type

    @property
    def out_type(self) -> str:
        s = self.spec
        return f"tensor<{s.N}x{s.OH}x{s.OW}x{s.K}xf32>" if self.layout == "nhwc" else s.out_type
