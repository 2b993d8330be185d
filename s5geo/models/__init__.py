"""Segmentation models: ViT + simple feature pyramid + UperNet (S5), or a timm CNN + UperNet.

:func:`build_model` makes a network from a :class:`~s5geo.config.ModelConfig` by name;
:func:`describe_config` reports a config's model and parameter count without allocating memory
(the model is built on the meta device), for ``s5geo info CONFIG``.

Holds the ViT (``vit``), the simple feature pyramid (``pyramid``), the UperNet decoder
(``upernet``), encoder + decoder composition and timm backbones (``segmentor``), the
segmentation_models_pytorch students (``smp``), weights-only reading of torch files and ViT
weight loading (``checkpoint``), networks rebuilt from training checkpoints (``loading``: the one
checkpoint loader of s5geo), the FFN-MoE ViT and its configs (``moe``, ``mdf``). Training
install: this package imports torch.

May import: ``s5geo.config``, ``s5geo.datasets`` (class maps) and ``s5geo.errors``; never
``s5geo.train`` or the packages above it (``make lint`` checks it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from s5geo.config import ModelConfig, load_config
from s5geo.errors import UserError
from s5geo.models.checkpoint import load_vit_weights
from s5geo.models.pyramid import SimpleFeaturePyramid
from s5geo.models.segmentor import Segmentor, TimmFeatures, check_timm_name
from s5geo.models.smp import SMP_PREFIX, build_smp, check_smp_name
from s5geo.models.upernet import UperNetHead
from s5geo.models.vit import VIT_VARIANTS, ViT

__all__ = [
    "VIT_VARIANTS",
    "Segmentor",
    "ViT",
    "build_model",
    "build_network",
    "check_model_name",
    "count_parameters",
    "describe_config",
]

TIMM_PREFIX = "timm:"


def check_model_name(name: str, *, smp: bool = False) -> None:
    """UserError naming ``model.name`` and the names it allows unless a builder knows ``name``.

    :func:`build_model` builds ViT variants and ``timm:<backbone>``; with ``smp``, names that
    :func:`build_network` builds (``smp:<Arch>:<encoder>`` students) are accepted too.
    """
    if name in VIT_VARIANTS:
        return
    if name.startswith(TIMM_PREFIX):
        check_timm_name(name[len(TIMM_PREFIX) :], name)
        return
    if smp and name.startswith(SMP_PREFIX):
        check_smp_name(name)
        return
    known = [*VIT_VARIANTS, TIMM_PREFIX + "<timm model>"]
    if smp:
        known.append(SMP_PREFIX + "<Unet|FPN>:<encoder>")
    raise UserError(f"config key model.name: unknown model {name!r}; known: {', '.join(known)}")


def build_model(cfg: ModelConfig) -> Segmentor:
    """The network named by ``cfg.name``: a ViT variant or ``timm:<backbone>``."""
    check_model_name(cfg.name)
    if cfg.name.startswith(TIMM_PREFIX):
        features = TimmFeatures(
            cfg.name[len(TIMM_PREFIX) :], cfg.in_chans, pretrained=cfg.pretrained == "timm"
        )
        backbone: torch.nn.Module = features
        neck: torch.nn.Module | None = None
        channels: list[int] = features.out_channels
    else:  # a ViT variant: check_model_name refused every other name
        v = VIT_VARIANTS[cfg.name]
        taps = tuple(cfg.taps) if cfg.taps is not None else v.taps
        if len(taps) != 4:
            raise UserError(f"model.taps must name 4 blocks, got {list(taps)}")
        vit = ViT(
            img_size=cfg.img_size,
            in_chans=cfg.in_chans,
            embed_dim=v.embed_dim,
            depth=v.depth,
            num_heads=v.num_heads,
            taps=taps,
            drop_path=cfg.drop_path,
            grad_checkpointing=cfg.grad_checkpointing,
        )
        if cfg.pretrained:
            load_vit_weights(vit, Path(cfg.pretrained))
        pyramid = SimpleFeaturePyramid(v.embed_dim)
        backbone, neck, channels = vit, pyramid, pyramid.out_channels
    head = UperNetHead(channels, cfg.num_classes, cfg.decoder_channels, dropout=cfg.dropout)
    return Segmentor(backbone, neck, head)


def build_network(cfg: ModelConfig) -> torch.nn.Module:
    """Any network a run config names: ``smp:`` students or :func:`build_model`'s segmentors."""
    if cfg.name.startswith(SMP_PREFIX):
        return build_smp(cfg)
    return build_model(cfg)


def count_parameters(module: torch.nn.Module) -> int:
    """Number of parameters (buffers such as BatchNorm statistics are not parameters)."""
    return sum(p.numel() for p in module.parameters())


def describe_config(path: Path, overrides: list[str]) -> dict[str, Any]:
    """Model name and parameter counts of a run config, built on the meta device (no memory).

    MoE-MDF configs (a ``moe`` or ``datasets`` section) are described by
    :func:`s5geo.models.mdf.describe_moe_config`.
    """
    from s5geo.config import load_yaml
    from s5geo.models.mdf import describe_moe_config, is_mdf_tree

    if is_mdf_tree(load_yaml(Path(path))):
        return describe_moe_config(Path(path), overrides)
    cfg = load_config(path, overrides)
    with torch.device("meta"):
        model = build_model(ModelConfig(**{**vars(cfg.model), "pretrained": None}))
    return {
        "model": cfg.model.name,
        "parameters": count_parameters(model),
        "backbone_parameters": count_parameters(model.backbone),
        "neck_parameters": count_parameters(model.neck),
        "decoder_parameters": count_parameters(model.head),
        "num_classes": cfg.model.num_classes,
        "img_size": cfg.model.img_size,
        "method": cfg.train.method,
        "steps": cfg.train.steps,
    }
