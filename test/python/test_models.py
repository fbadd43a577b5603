"""Model constructors: torchvision-equal sizes, 3x3 layers the pruner sees, rebuild by name."""

from __future__ import annotations

import pytest
import torch

from pconv_mlir import models
from pconv_mlir.models import MODELS, build_model, small_cnn, vgg16_cifar
from pconv_mlir.pruning import PruningConfig, find_prunable

pytestmark = pytest.mark.usefixtures("one_thread")


# (parameter count of torchvision's model with the same defaults, 3x3 convs, depthwise 3x3)
EXPECTED = {
    "vgg16_imagenet": (138_357_544, 13, 0),
    "resnet50": (25_557_032, 16, 0),
    "mobilenet_v2": (3_504_872, 18, 17),
    "vgg16_cifar": (14_728_266, 13, 0),
    "small_cnn": (72_666, 6, 0),
    "small_resnet": (145_146, 5, 0),  # this project's own small nets: their sizes as built
    "small_mobilenet": (37_594, 7, 6),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sizes_and_pattern_layers(name, monkeypatch):
    # Sizes only: meta tensors need no memory, and skipping the random init avoids the
    # seconds torch spends importing its compiler stack for meta-tensor normal_().
    monkeypatch.setattr(models, "_init_weights", lambda model: None)
    with torch.device("meta"):
        model = build_model(name, **({"width": 16} if name == "small_cnn" else {}))
    params, n3x3, n_depthwise = EXPECTED[name]
    assert sum(p.numel() for p in model.parameters()) == params
    layers = find_prunable(model, PruningConfig(prune_unaccelerated=True))
    assert len(layers) == n3x3
    convs = [model.get_submodule(n) for n in layers]
    assert sum(c.groups == c.in_channels > 1 for c in convs) == n_depthwise


def test_registry_records_full_kwargs():
    assert set(MODELS) == set(EXPECTED)
    model = small_cnn(num_classes=7, width=4)
    assert model.pconv_arch == ("small_cnn", {"num_classes": 7, "in_channels": 1, "width": 4})
    rebuilt = build_model(*model.pconv_arch[:1], **model.pconv_arch[1])
    assert rebuilt.state_dict().keys() == model.state_dict().keys()
    with pytest.raises(ValueError, match="known: mobilenet_v2"):
        build_model("alexnet")
    with pytest.raises(TypeError):
        small_cnn(depth=3)


def test_forward_shapes():
    torch.set_grad_enabled(False)
    try:
        assert small_cnn(num_classes=10, width=4)(torch.randn(2, 1, 16, 16)).shape == (2, 10)
        assert small_cnn(width=4, in_channels=3)(torch.randn(1, 3, 8, 8)).shape == (1, 10)
        assert vgg16_cifar(num_classes=10).eval()(torch.randn(1, 3, 32, 32)).shape == (1, 10)
        for name in ("small_resnet", "small_mobilenet"):
            assert build_model(name).eval()(torch.randn(2, 1, 16, 16)).shape == (2, 10)
            assert build_model(name, in_channels=3, num_classes=4).eval()(torch.randn(1, 3, 8, 8)).shape == (1, 4)
        for name in ("resnet50", "mobilenet_v2"):
            assert build_model(name, num_classes=3).eval()(torch.randn(1, 3, 32, 32)).shape == (1, 3)
    finally:
        torch.set_grad_enabled(True)


def test_small_residual_nets_structure():
    resnet = build_model("small_resnet")
    downsamples = [m.downsample[0] for m in resnet.modules() if getattr(m, "downsample", None) is not None]
    assert [(d.kernel_size, d.stride) for d in downsamples] == [((1, 1), (1, 1)), ((1, 1), (2, 2)), ((1, 1), (2, 2))]
    mobilenet = build_model("small_mobilenet")
    blocks = [m for m in mobilenet.modules() if hasattr(m, "use_res_connect")]
    assert [b.use_res_connect for b in blocks] == [True, True, False, True, False, True]
    assert any(isinstance(m, torch.nn.ReLU6) for m in mobilenet.modules())
