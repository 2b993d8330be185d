"""MoE-MDF run configs: a ``moe`` section and a ``datasets`` mapping on top of model and train.

A MoE-MDF YAML has the sections ``model`` (the dense ViT, :class:`~s5geo.config.ModelConfig`;
its ``num_classes`` is that of the dense checkpoint being split), ``moe`` (:class:`MoEConfig`),
``datasets`` (name -> :class:`MDFDataset`, each with its own ``data`` section, loss weight, start
step and batch size) and ``train`` (:class:`MDFTrainConfig`). ``defaults`` includes and dotted
``--set`` overrides work as for every s5geo config (``--set moe.expert_dim=128``,
``--set datasets.spacenet.weight=0.5``); unknown keys are errors.

:func:`build_mdf_model` builds the network (optionally splitting a dense S4P checkpoint),
:func:`load_mdf_dataset_model` rebuilds one dataset's path of a MoE-MDF training checkpoint
and :func:`describe_moe_config` reports its parameter counts on the meta device for
``s5geo info``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from s5geo.config import (
    DataConfig,
    ModelConfig,
    TrainConfig,
    apply_overrides,
    from_dict,
    load_yaml,
)
from s5geo.errors import UserError
from s5geo.models.loading import load_checkpoint_model, read_checkpoint
from s5geo.models.moe import MoESegmentor, build_moe_segmentor, dataset_path, init_from_dense
from s5geo.models.segmentor import Segmentor


@dataclass
class MoEConfig:
    """Expert width and the dense checkpoint to initialise from."""

    expert_dim: int = 256  # p; 0: shared backbone with per-dataset decoders, no experts
    init_from: str | None = None  # an s5geo train checkpoint (.ckpt) of the dense model
    copy_classifiers: bool = False  # reuse the dense classifier where a dataset's K matches


@dataclass
class MDFDataset:
    """One dataset of the multi-dataset run."""

    data: DataConfig = field(default_factory=DataConfig)
    weight: float = 1.0  # loss weight
    # Per-class weights of the cross-entropy (one per class), e.g. [1, 4] to keep a rare class
    # such as buildings from being drowned by the background; None: unweighted.
    class_weights: list[float] | None = None
    start_step: int = 0  # the dataset's loss joins at this step (paper: Vaihingen at 70 % of steps)
    batch_size: int | None = None  # None: train.batch_size
    num_classes: int | None = None  # None: the class map's
    enabled: bool = True  # false: left out of the run (e.g. one dataset alone = a dense model)


@dataclass
class MDFTrainConfig(TrainConfig):
    """Training options of MoE-MDF: AdamW lr 5e-5, wd 0.05, cosine; optional layer-wise decay."""

    method: str = "mdf"
    weight_decay: float = 0.05
    layer_decay: float | None = None  # e.g. 0.9: block i's lr x decay^(depth - i)


@dataclass
class MDFConfig:
    """A whole MoE-MDF run."""

    model: ModelConfig = field(default_factory=ModelConfig)
    moe: MoEConfig = field(default_factory=MoEConfig)
    datasets: dict[str, MDFDataset] = field(default_factory=dict)
    train: MDFTrainConfig = field(default_factory=MDFTrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (stored in checkpoints and written as the resolved config)."""
        return dataclasses.asdict(self)

    def class_counts(self) -> list[int]:
        """Classes of every dataset, in ``datasets`` order."""
        from s5geo.datasets.classes import class_map_for

        return [
            d.num_classes
            if d.num_classes is not None
            else class_map_for(d.data.class_map).num_classes
            for d in self.datasets.values()
        ]


def is_mdf_tree(tree: dict[str, Any]) -> bool:
    """Whether a config mapping is a MoE-MDF config (it has a ``moe`` or ``datasets`` section)."""
    return "moe" in tree or "datasets" in tree


def mdf_config_from_dict(tree: dict[str, Any]) -> MDFConfig:
    """Typed :class:`MDFConfig` from a mapping, every key checked (datasets by name)."""
    tree = dict(tree)
    raw = tree.pop("datasets", None) or {}
    if not isinstance(raw, dict) or not raw:
        raise UserError("a MoE-MDF config needs a datasets mapping of name -> dataset")
    cfg = from_dict(MDFConfig, tree)
    parsed = {
        str(name): from_dict(MDFDataset, spec or {}, f"datasets.{name}.")
        for name, spec in raw.items()
    }
    cfg.datasets = {name: spec for name, spec in parsed.items() if spec.enabled}
    if not cfg.datasets:
        raise UserError("every dataset of the config is disabled")
    return cfg


def load_mdf_config(path: Path | str, overrides: list[str] | None = None) -> MDFConfig:
    """Read a MoE-MDF YAML: includes, then overrides, then typed validation."""
    return mdf_config_from_dict(apply_overrides(load_yaml(Path(path)), overrides or []))


def build_mdf_model(cfg: MDFConfig, load_weights: bool = True) -> MoESegmentor:
    """The MoE-MDF network of ``cfg``: dense ViT built, converted, and (when ``moe.init_from`` and
    ``load_weights``) initialised by splitting the dense checkpoint's fc2."""
    from s5geo.models import build_model

    names = list(cfg.datasets)
    counts = cfg.class_counts()
    dense_cfg = dataclasses.replace(
        cfg.model, pretrained=cfg.model.pretrained if load_weights else None
    )
    dense = build_model(dense_cfg)
    source = None
    if load_weights and cfg.moe.init_from:
        source = load_dense_checkpoint(Path(cfg.moe.init_from), cfg.model)
        dense.load_state_dict(source.state_dict())
    try:
        moe = build_moe_segmentor(dense, names, counts, cfg.moe.expert_dim)
    except ValueError as exc:
        raise UserError(f"model {cfg.model.name!r} / moe.expert_dim: {exc}") from None
    if source is not None:
        init_from_dense(moe, source, copy_classifiers=cfg.moe.copy_classifiers)
    return moe


def load_dense_checkpoint(path: Path, model: ModelConfig) -> Segmentor:
    """The dense network of an s5geo train checkpoint; UserError when it is another model."""
    net, dense_cfg = load_checkpoint_model(path)
    ours = dataclasses.replace(model, pretrained=None, num_classes=0, grad_checkpointing=False)
    theirs = dataclasses.replace(
        dense_cfg.model, pretrained=None, num_classes=0, grad_checkpointing=False
    )
    if (ours.name, ours.img_size, ours.in_chans, ours.decoder_channels, ours.taps) != (
        theirs.name, theirs.img_size, theirs.in_chans, theirs.decoder_channels, theirs.taps
    ):  # fmt: skip
        raise UserError(
            f"{path} holds a {theirs.name} ({theirs.img_size} px, {theirs.decoder_channels} "
            f"decoder channels); the config's model is {ours.name} ({ours.img_size} px, "
            f"{ours.decoder_channels})"
        )
    if dense_cfg.model.num_classes != model.num_classes:
        raise UserError(
            f"{path} predicts {dense_cfg.model.num_classes} classes: set model.num_classes to it"
        )
    if not isinstance(net, Segmentor):
        raise UserError(f"{path} does not hold a segmentor")
    return net


def load_mdf_dataset_model(checkpoint: Path, dataset: str) -> tuple[Segmentor, MDFConfig]:
    """One dataset's path of a MoE-MDF training checkpoint as a dense segmentor (eval mode), for
    ``s5geo export``; the config gives that dataset's ``data`` section for the model metadata."""
    stored = read_checkpoint(checkpoint)
    cfg = mdf_config_from_dict(stored.config)
    if dataset not in cfg.datasets:
        raise UserError(
            f"{checkpoint} has no dataset {dataset!r}; known: {', '.join(cfg.datasets)}"
        )
    moe = build_mdf_model(cfg, load_weights=False)
    moe.load_state_dict(stored.net)
    return dataset_path(moe, dataset).eval(), cfg


def count(module: torch.nn.Module) -> int:
    """Number of parameters."""
    return sum(p.numel() for p in module.parameters())


def describe_moe_config(path: Path, overrides: list[str]) -> dict[str, Any]:
    """Parameter counts of a MoE-MDF config, built on the meta device (no memory, no weights)."""
    cfg = load_mdf_config(path, overrides)
    with torch.device("meta"):
        moe = build_mdf_model(cfg, load_weights=False)
    experts = sum(count(mlp.experts) for mlp in moe.backbone.mlps())
    # One dataset's path: shared weights + its expert + its decoder (what dataset_path exports).
    shared = count(moe.backbone) - experts + experts // len(cfg.datasets) + count(moe.neck)
    return {
        "model": f"{cfg.model.name} MoE-MDF",
        "parameters": count(moe),
        "backbone_parameters": count(moe.backbone),
        "expert_parameters": experts,
        "neck_parameters": count(moe.neck),
        "decoder_parameters": sum(count(h) for h in moe.heads),
        "dataset_path_parameters": {
            name: shared + count(head) for name, head in zip(cfg.datasets, moe.heads, strict=True)
        },
        "expert_dim": cfg.moe.expert_dim,
        "datasets": dict(zip(cfg.datasets, cfg.class_counts(), strict=True)),
        "img_size": cfg.model.img_size,
        "method": cfg.train.method,
        "steps": cfg.train.steps,
    }
