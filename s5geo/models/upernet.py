"""UperNet decoder (Xiao et al. 2018, mmseg layout): pyramid pooling on the top level, FPN, fuse.

Every convolution has no bias and is followed by BatchNorm and ReLU. Pooling scales 1, 2, 3, 6;
three 1x1 laterals and three 3x3 FPN convolutions for the lower levels; a 3x3 fuse of the four
levels; dropout; a 1x1 classifier with bias. Returns logits at the stride of the first level.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class AdaptiveAvgPool(nn.Module):
    """``nn.AdaptiveAvgPool2d(size)`` that also exports to ONNX with symbolic height and width.

    torch.onnx's exporter decomposes ``adaptive_avg_pool2d`` into gathers whose indices are
    computed from the example input's size, so a model exported with dynamic height/width gives
    wrong results or fails at any other size (``s5geo export --dynamic-size`` of a UperNet model
    failed at 512 px after export at 1024 px). While exporting, the same bins as PyTorch's
    (rows ``floor(i*H/s)`` to ``ceil((i+1)*H/s)``, likewise columns) are summed from an integral
    image with indices computed from the runtime size; otherwise the native kernel runs.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.compiler.is_exporting():
            return F.adaptive_avg_pool2d(x, self.size)
        s = self.size
        i = torch.arange(s, device=x.device)
        h, w = x.shape[-2], x.shape[-1]
        top, bottom = (i * h) // s, ((i + 1) * h + s - 1) // s
        left, right = (i * w) // s, ((i + 1) * w + s - 1) // s
        integral = F.pad(x.cumsum(-2).cumsum(-1), (1, 0, 1, 0))  # [N, C, H + 1, W + 1]
        rows = integral.index_select(-2, bottom) - integral.index_select(-2, top)
        sums = rows.index_select(-1, right) - rows.index_select(-1, left)  # [N, C, s, s]
        area = (bottom - top)[:, None] * (right - left)[None, :]
        return sums / area.to(x.dtype)

    def extra_repr(self) -> str:
        return f"size={self.size}"


def conv_bn_relu(cin: int, cout: int, kernel: int) -> nn.Sequential:
    """Convolution without bias, BatchNorm, ReLU (the decoder's building block)."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class UperNetHead(nn.Module):
    """UperNet over feature maps of ``in_channels`` (fine to coarse) with a ``num_classes`` head."""

    def __init__(
        self,
        in_channels: Sequence[int],
        num_classes: int,
        channels: int = 256,
        pool_scales: Sequence[int] = (1, 2, 3, 6),
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        top = in_channels[-1]
        self.ppm = nn.ModuleList(
            nn.Sequential(AdaptiveAvgPool(s), conv_bn_relu(top, channels, 1)) for s in pool_scales
        )
        self.bottleneck = conv_bn_relu(top + len(pool_scales) * channels, channels, 3)
        self.lateral_convs = nn.ModuleList(conv_bn_relu(c, channels, 1) for c in in_channels[:-1])
        self.fpn_convs = nn.ModuleList(
            conv_bn_relu(channels, channels, 3) for _ in in_channels[:-1]
        )
        self.fpn_bottleneck = conv_bn_relu(len(in_channels) * channels, channels, 3)
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        top = feats[-1]
        pooled = [
            F.interpolate(branch(top), size=top.shape[-2:], mode="bilinear", align_corners=False)
            for branch in self.ppm
        ]
        laterals = [conv(f) for conv, f in zip(self.lateral_convs, feats[:-1], strict=True)]
        laterals.append(self.bottleneck(torch.cat([top, *pooled], dim=1)))
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + F.interpolate(
                laterals[i], size=laterals[i - 1].shape[-2:], mode="bilinear", align_corners=False
            )
        outs = [conv(lat) for conv, lat in zip(self.fpn_convs, laterals[:-1], strict=True)]
        outs.append(laterals[-1])
        size = outs[0].shape[-2:]
        outs = [outs[0]] + [
            F.interpolate(o, size=size, mode="bilinear", align_corners=False) for o in outs[1:]
        ]
        fused = self.fpn_bottleneck(torch.cat(outs, dim=1))
        return self.classifier(self.dropout(fused))
