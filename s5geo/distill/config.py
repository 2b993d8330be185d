"""Typed distillation recipes: the shared ``model``/``data``/``train`` sections plus ``distill``.

``model`` is the *student*; ``train`` holds the Trainer resources and defaults shared by every
stage (threads, batch size, val interval, run folder); ``distill`` says which method runs, where
the teacher checkpoint is, and each stage's schedule and loss weights. Files are read with
:func:`s5geo.config.load_yaml` (``defaults`` includes) and checked by
:func:`s5geo.config.from_dict`, so unknown keys and wrong types are errors naming the dotted key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from s5geo.config import (
    Config,
    DataConfig,
    ModelConfig,
    TrainConfig,
    apply_overrides,
    from_dict,
    load_yaml,
)
from s5geo.errors import UserError

METHODS = ("sskd", "mckd", "kd", "supervised")


@dataclass
class TermWeights:
    """Weights of the per-image loss terms: CE and Dice on hard targets, ``T^2`` KL on soft ones.

    Hard targets are the labels on labeled images and the argmax of the soft labels on
    pseudo-labeled ones; the KL term compares with the soft labels at the stage's temperature.
    """

    ce: float = 1.0
    dice: float = 0.0
    kl: float = 0.0

    def active(self) -> bool:
        return bool(self.ce or self.dice or self.kl)


@dataclass
class StageConfig:
    """One training stage: schedule and ``J = labeled terms + unlabeled terms + pxl * L_pxl``."""

    steps: int = 200
    lr: float = 1.0e-3
    batch_size: int = 4  # labeled images per step; as many pseudo-labeled ones are added
    labeled: TermWeights = field(default_factory=TermWeights)
    unlabeled: TermWeights = field(default_factory=lambda: TermWeights(ce=0.0))
    temperature: float = 1.0
    pxl: float = 0.0  # weight of the instance-aware pixel contrastive loss (SSKD: 0.1)


@dataclass
class ContrastConfig:
    """The pixel contrastive loss (METHODS.md section 2)."""

    proj_dim: int = 64
    negatives: int = 200
    anchors: int = 256  # anchors per step (the weight matrix is anchors x pool)
    pool: int = 4096  # candidate negatives per step, drawn from valid pixels
    eps: float = 1.0e-3
    tau_start: float = 0.3
    tau_end: float = 0.07
    same_image: bool = False  # also draw negatives from the anchor's own image


def _adapt_finetune() -> StageConfig:
    return StageConfig(steps=200, lr=2.0e-4, pxl=0.1)


def _adapt_selftrain() -> StageConfig:
    return StageConfig(steps=200, lr=2.0e-4, unlabeled=TermWeights(ce=1.0), pxl=0.1)


def _transfer() -> StageConfig:
    return StageConfig(steps=400, unlabeled=TermWeights(ce=1.0), pxl=0.1)


def _refine() -> StageConfig:
    return StageConfig(steps=100, lr=2.0e-4)


@dataclass
class SSKDConfig:
    """SSKD stages: teacher adaptation (fine-tune, pseudo-label, re-init and self-train),
    knowledge transfer into the student, student refinement on labels only."""

    adapt_finetune: StageConfig = field(default_factory=_adapt_finetune)
    adapt_selftrain: StageConfig = field(default_factory=_adapt_selftrain)
    transfer: StageConfig = field(default_factory=_transfer)
    refine: StageConfig = field(default_factory=_refine)


def _mckd_stage() -> StageConfig:
    weights = TermWeights(ce=0.7, dice=0.2, kl=0.1)
    return StageConfig(steps=200, labeled=weights, unlabeled=weights, temperature=10.0)


@dataclass
class MCKDConfig:
    """MCKD: ``cross_stages`` pairs of fresh students relabelling each other's partition, then
    a final student on both partitions plus the labeled set (0.7 CE + 0.2 Dice + 0.1 T^2 KL)."""

    cross_stages: int = 2
    group_regex: str = r"^(Tile\d+)_"  # partitions keep whole groups (scenes) together
    cross: StageConfig = field(default_factory=_mckd_stage)
    final: StageConfig = field(default_factory=_mckd_stage)


def _kd_stage() -> StageConfig:
    return StageConfig(
        steps=400, labeled=TermWeights(ce=1.0, kl=1.0), unlabeled=TermWeights(ce=0.0, kl=1.0),
        temperature=4.0,
    )  # fmt: skip


@dataclass
class DistillSection:
    """Which method, from which teacher, with which stages."""

    method: str = "sskd"
    teacher: str = "runs/dubai/dubai_cpu_seed0/checkpoints/best.ckpt"
    skip: list[str] = field(default_factory=list)  # stage names (or "adapt") not to run
    contrast: ContrastConfig = field(default_factory=ContrastConfig)
    sskd: SSKDConfig = field(default_factory=SSKDConfig)
    mckd: MCKDConfig = field(default_factory=MCKDConfig)
    kd: StageConfig = field(default_factory=_kd_stage)  # plain KD baseline
    supervised: StageConfig = field(default_factory=lambda: StageConfig(steps=400))


@dataclass
class DistillConfig:
    """A distillation run: student ``model``, ``data``, shared ``train`` resources, ``distill``."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    distill: DistillSection = field(default_factory=DistillSection)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (the run's resolved config)."""
        return dataclasses.asdict(self)

    def stage_run_config(self, model: ModelConfig, stage: StageConfig, name: str) -> Config:
        """The s5geo run :class:`Config` a stage's checkpoints store (so they load and export)."""
        train = dataclasses.replace(
            self.train,
            steps=stage.steps,
            lr=stage.lr,
            batch_size=stage.batch_size,
            method=f"{self.distill.method}:{name}",
        )
        return Config(
            model=dataclasses.replace(model, pretrained=None), data=self.data, train=train
        )


def load_distill_config(path: Path | str, overrides: list[str] | None = None) -> DistillConfig:
    """Read a distillation recipe: includes, overrides, typed validation, method check."""
    tree = apply_overrides(load_yaml(Path(path)), overrides or [])
    cfg = from_dict(DistillConfig, tree)
    if cfg.distill.method not in METHODS:
        raise UserError(
            f"unknown distill.method {cfg.distill.method!r}; known: {', '.join(METHODS)}"
        )
    if cfg.distill.mckd.cross_stages < 1:
        raise UserError("distill.mckd.cross_stages must be at least 1")
    return cfg
