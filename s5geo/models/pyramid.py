"""Simple feature pyramid (ViTDet): strides 4/8/16/32 from one stride-16 map per level.

Stride 4: two 2x2 transposed convolutions with LayerNorm and GELU between; stride 8: one; stride 16:
identity; stride 32: 2x2 max-pool. Level ``i`` is built from the ``i``-th tapped block.
"""

from __future__ import annotations

import torch
from timm.layers import LayerNorm2d
from torch import nn


class SimpleFeaturePyramid(nn.Module):
    """Turns four stride-16 maps of ``dim`` channels into strides 4, 8, 16, 32."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fpn1 = nn.Sequential(
            nn.ConvTranspose2d(dim, dim, 2, stride=2),
            LayerNorm2d(dim),
            nn.GELU(),
            nn.ConvTranspose2d(dim, dim, 2, stride=2),
        )
        self.fpn2 = nn.ConvTranspose2d(dim, dim, 2, stride=2)
        self.fpn3 = nn.Identity()
        self.fpn4 = nn.MaxPool2d(2)
        self.out_channels = [dim] * 4

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        ops = (self.fpn1, self.fpn2, self.fpn3, self.fpn4)
        return [op(f) for op, f in zip(ops, feats, strict=True)]
