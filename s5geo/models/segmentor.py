"""Encoder + decoder composition: backbone -> (neck) -> UperNet -> logits at the input size.

Encoders are interchangeable: the ViT with its simple feature pyramid (the S5 model) or any timm
backbone that offers ``features_only`` maps at four strides (for users without ViT weights and for
fast CPU recipes). Nothing is subclassed: the segmentor only composes the parts.
"""

from __future__ import annotations

import difflib
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from s5geo.errors import UserError
from s5geo.models.upernet import UperNetHead


def check_timm_name(arch: str, name: str) -> None:
    """UserError unless timm knows the architecture ``arch`` (``name``: the model.name it is in).

    The message suggests close timm names, as timm lists too many to name them all.
    """
    import timm

    if timm.is_model(arch):
        return
    close = difflib.get_close_matches(arch, timm.list_models(), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UserError(
        f"config key model.name: {name!r}: timm has no model {arch!r} "
        f"(timm.list_models() lists them){hint}"
    )


class TimmFeatures(nn.Module):
    """A timm backbone created with ``features_only``: four maps, fine to coarse."""

    def __init__(self, name: str, in_chans: int, pretrained: bool = False) -> None:
        super().__init__()
        import timm

        self.body = timm.create_model(
            name, features_only=True, pretrained=pretrained, in_chans=in_chans
        )
        info: Any = self.body.feature_info
        self.keep = list(range(len(info)))[-4:]
        self.out_channels = [info.channels()[i] for i in self.keep]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = self.body(x)
        return [feats[i] for i in self.keep]


class Segmentor(nn.Module):
    """``backbone`` features -> optional ``neck`` -> ``head`` logits, upsampled to the input."""

    def __init__(self, backbone: nn.Module, neck: nn.Module | None, head: UperNetHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = neck if neck is not None else nn.Identity()
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.neck(self.backbone(x)))
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
