"""Compact student networks built by name, and their cost (parameters, GFLOPs, CPU latency).

A student is described by a :class:`~s5geo.config.ModelConfig` like every s5geo model, so its
checkpoint stores everything needed to rebuild it:

- ``smp:<Arch>:<encoder>`` (``Arch`` = ``Unet`` or ``FPN``): a segmentation_models_pytorch
  encoder-decoder, random init (``encoder_weights=None``: nothing is downloaded).
  ``decoder_channels`` sets the decoder width ``c``: U-Net decoder blocks
  ``(8c, 4c, 2c, c, c/2)``; FPN pyramid ``c`` and segmentation branch ``c/2`` (rounded down to
  a multiple of 32, at least 32).
- ``timm:<backbone>``: any timm CNN with s5geo's UperNet head (:func:`s5geo.models.build_model`).

:data:`STUDENTS` names the presets measured in docs/DISTILL.md. All return logits ``[N, K, H, W]``
at the input size (inputs a multiple of 32).
"""

from __future__ import annotations

import time
from dataclasses import replace

import torch
from torch import nn

from s5geo.config import ModelConfig
from s5geo.errors import UserError
from s5geo.models.smp import SMP_PREFIX, build_smp

# Preset students: name -> (model name, decoder width). Measured in docs/DISTILL.md.
STUDENTS: dict[str, tuple[str, int]] = {
    "fpn_mnv3s": ("smp:FPN:tu-mobilenetv3_small_100", 32),
    "unet_mnv3s": ("smp:Unet:tu-mobilenetv3_small_100", 16),
    "unet_mnv3l": ("smp:Unet:tu-mobilenetv3_large_100", 16),
    "fpn_mnv3l": ("smp:FPN:tu-mobilenetv3_large_100", 64),
    # EfficientNet-Lite0 (ReLU6, no squeeze-excite): the student that gains from INT8 on CPU.
    "fpn_effl0": ("smp:FPN:tu-efficientnet_lite0", 64),
    # ResNet-10t (dense 3x3 convolutions, ReLU): 3.8x the FLOPs of fpn_mnv3l, but the most
    # accurate student measured and the one INT8 speeds up most (2.1x end to end).
    "fpn_r10t": ("smp:FPN:tu-resnet10t", 64),
    "unet_r18": ("smp:Unet:resnet18", 16),
    "upernet_mnv3l": ("timm:mobilenetv3_large_100", 48),
}


def student_config(preset: str, num_classes: int, in_chans: int = 3) -> ModelConfig:
    """The :class:`ModelConfig` of a preset in :data:`STUDENTS`."""
    if preset not in STUDENTS:
        raise UserError(f"unknown student {preset!r}; known: {', '.join(STUDENTS)}")
    name, width = STUDENTS[preset]
    return ModelConfig(
        name=name, num_classes=num_classes, in_chans=in_chans, decoder_channels=width, dropout=0.1
    )


def build_student(cfg: ModelConfig) -> nn.Module:
    """Any s5geo model: ``smp:`` students here, everything else by :func:`build_model`."""
    if cfg.name.startswith(SMP_PREFIX):
        return build_smp(cfg)
    from s5geo.models import build_model

    return build_model(replace(cfg, pretrained=None) if cfg.pretrained == "timm" else cfg)


def classifier_of(net: nn.Module) -> nn.Module:
    """The last layer producing logits: its input is the decoder feature map (for L_pxl)."""
    head = getattr(net, "segmentation_head", None)  # smp
    if head is not None:
        return head
    inner = getattr(getattr(net, "head", None), "classifier", None)  # s5geo Segmentor / UperNet
    if inner is None:
        raise UserError(f"cannot find the classifier of {type(net).__name__}")
    return inner


def gflops(net: nn.Module, tile: int = 512, in_chans: int = 3) -> float:
    """GFLOPs (2 x multiply-accumulates) of one forward of a ``tile`` x ``tile`` window."""
    from torch.utils.flop_counter import FlopCounterMode

    net.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(torch.zeros(1, in_chans, tile, tile))
    return counter.get_total_flops() / 1e9


def latency_ms(
    net: nn.Module, tile: int = 512, batch: int = 1, repeats: int = 5, in_chans: int = 3
) -> float:
    """Median CPU wall time in ms of one forward of ``batch`` windows (after one warm-up)."""
    net.eval()
    x = torch.randn(batch, in_chans, tile, tile)
    times = []
    with torch.inference_mode():
        net(x)
        for _ in range(repeats):
            start = time.perf_counter()
            net(x)
            times.append(1000 * (time.perf_counter() - start))
    return sorted(times)[len(times) // 2]


def measure(cfg: ModelConfig, tile: int = 512, repeats: int = 5) -> dict[str, float]:
    """Parameters (M), GFLOPs per tile and median CPU latency (ms) of the model of ``cfg``."""
    net = build_student(cfg)
    return {
        "params_m": sum(p.numel() for p in net.parameters()) / 1e6,
        "gflops": gflops(net, tile, cfg.in_chans),
        "latency_ms": latency_ms(net, tile, repeats=repeats, in_chans=cfg.in_chans),
    }
