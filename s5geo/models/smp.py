"""Networks from segmentation_models_pytorch parts: the compact students distillation trains.

Named ``smp:<Arch>:<encoder>`` in a config's ``model.name`` (for example
``smp:FPN:tu-mobilenetv3_large_100``), so a checkpoint's stored config rebuilds them like any other
s5geo model (export, evaluate).
"""

from __future__ import annotations

import difflib
from typing import Any

from torch import nn

from s5geo.config import ModelConfig
from s5geo.errors import UserError

SMP_PREFIX = "smp:"
SMP_ARCHS = ("Unet", "FPN")
TIMM_ENCODER_PREFIX = "tu-"  # smp's name for a timm encoder


def check_smp_name(name: str) -> tuple[str, str]:
    """``(Arch, encoder)`` of an ``smp:<Arch>:<encoder>`` name; UserError unless smp builds it.

    The encoder is one of smp's own or ``tu-<timm model>``.
    """
    from segmentation_models_pytorch.encoders import get_encoder_names

    from s5geo.models.segmentor import check_timm_name

    parts = name.split(":", 2)
    if len(parts) != 3 or parts[1] not in SMP_ARCHS:
        raise UserError(
            f"config key model.name: {name!r} is not of the form "
            f"smp:<{'|'.join(SMP_ARCHS)}>:<encoder>"
        )
    arch, encoder = parts[1], parts[2]
    if encoder.startswith(TIMM_ENCODER_PREFIX):
        check_timm_name(encoder[len(TIMM_ENCODER_PREFIX) :], name)
    elif encoder not in get_encoder_names():
        close = difflib.get_close_matches(encoder, get_encoder_names(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UserError(
            f"config key model.name: {name!r}: unknown smp encoder {encoder!r} (known: "
            f"segmentation_models_pytorch's encoders or {TIMM_ENCODER_PREFIX}<timm model>){hint}"
        )
    return arch, encoder


def build_smp(cfg: ModelConfig) -> nn.Module:
    """An ``smp:<Arch>:<encoder>`` network, randomly initialised."""
    import segmentation_models_pytorch as smp

    arch, encoder = check_smp_name(cfg.name)
    c = cfg.decoder_channels
    common: dict[str, Any] = {
        "encoder_name": encoder,
        "encoder_weights": None,
        "in_channels": cfg.in_chans,
        "classes": cfg.num_classes,
    }
    if arch == "Unet":
        widths = [max(4, c * 2**i) for i in (3, 2, 1, 0)] + [max(4, c // 2)]
        return smp.Unet(decoder_channels=widths, **common)
    return smp.FPN(  # its GroupNorm(32, .) needs a segmentation width that is a multiple of 32
        decoder_pyramid_channels=c,
        decoder_segmentation_channels=max(32, c // 2 // 32 * 32),
        decoder_dropout=cfg.dropout,
        **common,
    )
