"""CNNs the pruner and the compiler are exercised on, in plain ``torch.nn``.

The ImageNet-size models follow torchvision's module layout and parameter names, so a
torchvision ``state_dict`` loads into them (torchvision itself is not needed). Every
constructor is registered in :data:`MODELS` and records its own name and full keyword
arguments on the model as ``model.pconv_arch = (name, kwargs)``: a pruned model is saved
as that pair plus a ``state_dict``, so it can be rebuilt without pickling classes.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

__all__ = [
    "MODELS", "MAX_PARAMETERS", "build_model", "small_cnn", "small_resnet", "small_mobilenet", "vgg16_cifar",
    "vgg16_imagenet", "resnet50", "mobilenet_v2",
]

ModelFn = Callable[..., nn.Module]

#: Registered constructors by name.
MODELS: dict[str, ModelFn] = {}


def _register(fn: ModelFn) -> ModelFn:
    """Register ``fn`` and make it record its name and bound kwargs on the model it builds."""
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def build(**kwargs: Any) -> nn.Module:
        bound = sig.bind(**kwargs)
        bound.apply_defaults()
        model = fn(**bound.arguments)
        model.pconv_arch = (fn.__name__, dict(bound.arguments))
        return model

    MODELS[fn.__name__] = build
    return build


#: Most parameters a built model may have (4 GiB of fp32; VGG-16 ImageNet has 138 M): constructor
#: arguments asking for more (``width=10**6`` from a checkpoint or the command line) are an error.
MAX_PARAMETERS = 1 << 30


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model by name. ValueError names the known models for an unknown name,
    and refuses arguments the constructor rejects, or that give an empty layer or more than
    :data:`MAX_PARAMETERS` parameters (checked on the meta device first: nothing allocated)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Initializing zero-element tensors": refused just below
            sizes = [p.numel() for p in MODELS[name](**kwargs).parameters()]
    except (TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"cannot build {name!r} from {kwargs}: {e}") from None
    if 0 in sizes:
        raise ValueError(f"cannot build {name!r} from {kwargs}: a layer would be empty (a size-0 dimension)")
    if sum(sizes) > MAX_PARAMETERS:
        raise ValueError(f"{name!r} from {kwargs} would have {sum(sizes):,} parameters (at most {MAX_PARAMETERS:,})")
    return MODELS[name](**kwargs)


def _init_weights(model: nn.Module) -> None:
    """torchvision's initialisation: He (fan-out) convs, unit BN, small-normal linears."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


@_register
def small_cnn(*, num_classes: int = 10, in_channels: int = 1, width: int = 32) -> nn.Module:
    """Six 3x3 conv+BN+ReLU layers (width, 2*width, 4*width; two max-pools), global average
    pool, linear head. Any input of at least 4x4 works; the demo feeds 16x16 digits."""
    w = width
    layers = (
        _conv_bn_relu(in_channels, w) + _conv_bn_relu(w, w) + [nn.MaxPool2d(2)]
        + _conv_bn_relu(w, 2 * w) + _conv_bn_relu(2 * w, 2 * w) + [nn.MaxPool2d(2)]
        + _conv_bn_relu(2 * w, 4 * w) + _conv_bn_relu(4 * w, 4 * w)
    )
    model = nn.Sequential(
        nn.Sequential(*layers), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * w, num_classes)
    )
    _init_weights(model)
    return model


_VGG16_CFG: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def _vgg_features(in_channels: int, batch_norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    cin = in_channels
    for v in _VGG16_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
            continue
        layers.append(nn.Conv2d(cin, int(v), 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(int(v)))
        layers.append(nn.ReLU(inplace=True))
        cin = int(v)
    return nn.Sequential(*layers)


class _VGG(nn.Module):
    """torchvision's VGG layout: ``features``, ``avgpool``, ``classifier``."""

    def __init__(self, features: nn.Sequential, pool: int, classifier: nn.Sequential) -> None:
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d(pool)
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


@_register
def vgg16_cifar(*, num_classes: int = 10, in_channels: int = 3, batch_norm: bool = True) -> nn.Module:
    """VGG-16 for 32x32 inputs: the 13 convs of VGG-16, then a single linear layer on the
    512 pooled features (the usual CIFAR head)."""
    model = _VGG(_vgg_features(in_channels, batch_norm), 1, nn.Sequential(nn.Linear(512, num_classes)))
    _init_weights(model)
    return model


@_register
def vgg16_imagenet(
    *, num_classes: int = 1000, in_channels: int = 3, batch_norm: bool = False, dropout: float = 0.5
) -> nn.Module:
    """VGG-16 with the ImageNet head (7x7 pool, 4096-4096 fully connected), torchvision names."""
    head = nn.Sequential(
        nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(dropout),
        nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(dropout),
        nn.Linear(4096, num_classes),
    )
    model = _VGG(_vgg_features(in_channels, batch_norm), 7, head)
    _init_weights(model)
    return model


class _Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck: the stride sits on the 3x3 conv, as in torchvision."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int, downsample: nn.Module | None) -> None:
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class _ResNet(nn.Module):
    def __init__(self, blocks: list[int], num_classes: int, in_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for i, (n, width) in enumerate(zip(blocks, (64, 128, 256, 512))):
            stride = 1 if i == 0 else 2
            cout = width * _Bottleneck.expansion
            down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            stage = [_Bottleneck(cin, width, stride, down)]
            stage += [_Bottleneck(cout, width, 1, None) for _ in range(n - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
            cin = cout
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


@_register
def resnet50(*, num_classes: int = 1000, in_channels: int = 3) -> nn.Module:
    """ResNet-50 (v1.5, torchvision names). Its 3x3 convs are the bottlenecks' ``conv2``;
    the 7x7 stem and the 1x1 convs are not pattern layers."""
    model = _ResNet([3, 4, 6, 3], num_classes, in_channels)
    _init_weights(model)
    return model


def _conv_bn_relu6(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(inplace=True),
    )


class _InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_res_connect = stride == 1 and cin == cout
        layers: list[nn.Module] = [] if expand == 1 else [_conv_bn_relu6(cin, hidden, 1)]
        layers += [
            _conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


def _make_divisible(v: float, divisor: int = 8) -> int:
    """Round channels as MobileNet does: to a multiple of 8, never dropping more than 10%."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


class _MobileNetV2(nn.Module):
    _SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                 (6, 320, 1, 1)]

    def __init__(self, num_classes: int, width_mult: float, in_channels: int, dropout: float) -> None:
        super().__init__()
        cin = _make_divisible(32 * width_mult)
        last = _make_divisible(1280 * max(1.0, width_mult))
        layers: list[nn.Module] = [_conv_bn_relu6(in_channels, cin, 3, 2)]
        for t, c, n, s in self._SETTINGS:
            cout = _make_divisible(c * width_mult)
            for i in range(n):
                layers.append(_InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
        layers.append(_conv_bn_relu6(cin, last, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


@_register
def mobilenet_v2(
    *, num_classes: int = 1000, width_mult: float = 1.0, in_channels: int = 3, dropout: float = 0.2
) -> nn.Module:
    """MobileNet-V2 (torchvision names). Its 3x3 convs are the stem and the depthwise convs."""
    model = _MobileNetV2(num_classes, width_mult, in_channels, dropout)
    _init_weights(model)
    return model


class _SmallResNet(nn.Module):
    """3x3 stem, then stages of ResNet-50's bottlenecks (1x1-3x3-1x1, stride on the 3x3, a
    1x1 downsample shortcut where the shape changes), global pool, linear head."""

    def __init__(self, num_classes: int, in_channels: int, width: int, blocks: tuple[int, ...]) -> None:
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn_relu(in_channels, width))
        stages, cin = [], width
        for i, n in enumerate(blocks):
            mid, stride = width * 2**i, 1 if i == 0 else 2
            cout = mid * _Bottleneck.expansion
            down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            stage = [_Bottleneck(cin, mid, stride, down)] + [_Bottleneck(cout, mid, 1, None) for _ in range(n - 1)]
            stages.append(nn.Sequential(*stage))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


@_register
def small_resnet(
    *, num_classes: int = 10, in_channels: int = 1, width: int = 16, blocks: tuple[int, ...] = (1, 2, 1)
) -> nn.Module:
    """A small ResNet with bottlenecks for 16x16 digits: 3x3 stem (``width`` channels), then one
    stage per entry of ``blocks`` with bottleneck width ``width * 2**i`` (output 4x that),
    stride 2 from the second stage on, each stage's first block with a 1x1 downsample
    shortcut (stride 2 after the first). Most MACs are in 1x1 convs, as in ResNet-50."""
    model = _SmallResNet(num_classes, in_channels, width, tuple(blocks))
    _init_weights(model)
    return model


class _SmallMobileNet(nn.Module):
    """3x3 stem, MobileNet-V2 inverted residuals (expand 1x1, depthwise 3x3, project 1x1,
    ReLU6, residual where stride 1 and channels match), a last 1x1 conv, pool, linear head."""

    def __init__(self, num_classes: int, in_channels: int, width: int, expand: int) -> None:
        super().__init__()
        # (output channels as multiples of width, blocks, first stride), like MobileNet-V2's table
        settings = [(1, 2, 1), (3 / 2, 2, 2), (2, 2, 2)]
        cin = width
        layers: list[nn.Module] = [_conv_bn_relu6(in_channels, cin, 3)]
        for mult, n, stride in settings:
            cout = _make_divisible(width * mult)
            for i in range(n):
                layers.append(_InvertedResidual(cin, cout, stride if i == 0 else 1, expand))
                cin = cout
        last = 4 * cin
        layers.append(_conv_bn_relu6(cin, last, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(last, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


@_register
def small_mobilenet(*, num_classes: int = 10, in_channels: int = 1, width: int = 16, expand: int = 4) -> nn.Module:
    """A small MobileNet-V2 for 16x16 digits: 3x3 stem (``width`` channels), six inverted
    residual blocks (``width``, ``1.5 width``, ``2 width`` channels, two blocks each, stride 2
    at the second and third pair; hidden ``expand`` x wider), a 1x1 conv to ``8 width``.
    Its 3x3 convs are the stem and the depthwise convs; the rest of the MACs are 1x1."""
    model = _SmallMobileNet(num_classes, in_channels, width, expand)
    _init_weights(model)
    return model
