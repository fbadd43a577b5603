"""A real PyTorch CNN through torch-mlir's FX importer: the raising pass turns exactly its
pattern-sparse convolutions into pconv.conv2d, with the right per-kernel pattern ids."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from pconv_mlir.dialects.pconv import load_pconv_dialect
from pconv_mlir.mlir.ir import ir
from pconv_mlir.mlir.pipeline import build_pass_manager
from pconv_mlir.patterns import PRUNED

LIBRARY = [(1, 3, 4, 5), (0, 1, 4, 7), (3, 4, 5, 7), (1, 4, 5, 8)]


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)  # stays dense
        self.a = nn.Conv2d(8, 16, 3, padding=1, bias=False)  # pattern-sparse
        self.b = nn.Conv2d(16, 16, 3, stride=2, padding=1)  # pattern-sparse
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)  # pattern-sparse depthwise
        self.pw = nn.Conv2d(16, 8, 1)  # 1x1: never raised
        self.c = nn.Conv2d(8, 8, 3, padding=2, dilation=2)  # dense

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = torch.relu(self.a(x))
        x = self.dw(torch.relu(self.b(x)))
        return self.c(self.pw(x))


def _make_pattern_sparse(conv: nn.Conv2d, rng: np.random.Generator) -> np.ndarray:
    k, c = conv.weight.shape[:2]
    ids = rng.integers(0, len(LIBRARY), size=(k, c))
    if conv.groups == 1:
        ids[rng.random((k, c)) < 0.6] = PRUNED
    mask = np.zeros((k, c, 9), np.float32)
    for (i, j), pid in np.ndenumerate(ids):
        if pid != PRUNED:
            mask[i, j, list(LIBRARY[pid])] = 1
    with torch.no_grad():
        conv.weight.mul_(torch.from_numpy(mask.reshape(k, c, 3, 3)))
    return ids


def _pconv_ops(module) -> list:
    found = []
    module.operation.walk(lambda op: (found.append(op) if op.name == "pconv.conv2d" else None) or ir.WalkResult.ADVANCE)
    return found


def test_raises_exactly_the_pattern_sparse_convs():
    from torch_mlir import fx

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    net = Net().eval()
    expected = {name: _make_pattern_sparse(getattr(net, name), rng) for name in ("a", "b", "dw")}
    imported = fx.export_and_import(net, torch.randn(1, 3, 16, 16), output_type="linalg-on-tensors", func_name="main")
    with ir.Context() as ctx:
        load_pconv_dialect(ctx)
        module = ir.Module.parse(str(imported))
        build_pass_manager("pconv-raise-pattern-conv", ctx).run(module.operation)
        ops = _pconv_ops(module)
        text = str(module)
    assert len(ops) == 3, text
    assert text.count("linalg.conv_2d_nchw_fchw") == 3  # stem, 1x1 and the dilated dense conv remain
    assert "linalg.depthwise_conv_2d_nchw_chw" not in text
    for op, name in zip(ops, ("a", "b", "dw")):
        flat = list(ir.DenseI64ArrayAttr(op.attributes["patterns"]))
        library = [tuple(flat[i:i + 4]) for i in range(0, len(flat), 4)]
        ids = np.array(ir.DenseIntElementsAttr(op.attributes["kernel_patterns"]))
        want = expected[name]
        # Same kernels pruned, and each kept kernel mapped to a pattern with the same taps.
        assert ((ids == PRUNED) == (want == PRUNED)).all(), name
        for (i, j), pid in np.ndenumerate(want):
            if pid != PRUNED:
                assert library[ids[i, j]] == LIBRARY[pid], (name, i, j)
    groups = [ir.IntegerAttr(op.attributes["groups"]).value for op in ops]
    strides = [list(ir.DenseI64ArrayAttr(op.attributes["strides"])) for op in ops]
    assert groups == [1, 1, 16]
    assert strides == [[1, 1], [2, 2], [1, 1]]


@pytest.mark.parametrize("pipeline", ["pconv-raise-pattern-conv", "pconv-raise-pattern-conv,canonicalize,cse"])
def test_dense_model_is_untouched(pipeline):
    from torch_mlir import fx

    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3)).eval()
    imported = fx.export_and_import(net, torch.randn(1, 3, 8, 8), output_type="linalg-on-tensors")
    with ir.Context() as ctx:
        load_pconv_dialect(ctx)
        module = ir.Module.parse(str(imported))
        build_pass_manager(pipeline, ctx).run(module.operation)
        assert not _pconv_ops(module)
        assert str(module).count("linalg.conv_2d_nchw_fchw") == 2
