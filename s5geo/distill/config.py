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
    NON_NEGATIVE,
    POSITIVE,
    REGEX,
    Config,
    DataConfig,
    ModelConfig,
    TrainConfig,
    apply_overrides,
    from_dict,
    load_yaml,
    one_of,
)

METHODS = ("sskd", "mckd", "kd", "supervised")


@dataclass
class TermWeights:
    """Weights of the per-image loss terms: CE and Dice on hard targets, ``T^2`` KL on soft ones.

    Hard targets are the labels on labeled images and the argmax of the soft labels on
    pseudo-labeled ones; the KL term compares with the soft labels at the stage's temperature.
    """

    ce: float = field(default=1.0, metadata=NON_NEGATIVE)
    dice: float = field(default=0.0, metadata=NON_NEGATIVE)
    kl: float = field(default=0.0, metadata=NON_NEGATIVE)

    def active(self) -> bool:
        return bool(self.ce or self.dice or self.kl)


@dataclass
class StageConfig:
    """One training stage: schedule and ``J = labeled terms + unlabeled terms + pxl * L_pxl``."""

    steps: int = field(default=200, metadata=POSITIVE)
    lr: float = field(default=1.0e-3, metadata=POSITIVE)
    # labeled images per step; as many pseudo-labeled ones are added
    batch_size: int = field(default=4, metadata=POSITIVE)
    labeled: TermWeights = field(default_factory=TermWeights)
    unlabeled: TermWeights = field(default_factory=lambda: TermWeights(ce=0.0))
    temperature: float = field(default=1.0, metadata=POSITIVE)
    # weight of the instance-aware pixel contrastive loss (SSKD: 0.1)
    pxl: float = field(default=0.0, metadata=NON_NEGATIVE)


@dataclass
class ContrastConfig:
    """The pixel contrastive loss (docs/methods.md, SSKD)."""

    proj_dim: int = field(default=64, metadata=POSITIVE)
    negatives: int = field(default=200, metadata=POSITIVE)
    # anchors per step (the weight matrix is anchors x pool)
    anchors: int = field(default=256, metadata=POSITIVE)
    # candidate negatives per step, drawn from valid pixels
    pool: int = field(default=4096, metadata=POSITIVE)
    eps: float = field(default=1.0e-3, metadata=POSITIVE)
    tau_start: float = field(default=0.3, metadata=POSITIVE)
    tau_end: float = field(default=0.07, metadata=POSITIVE)
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
    # the run's student (``student.json``): "best_val" keeps the transferred student when it
    # scores higher on val than the refined one (refinement on a dozen labels can collapse a
    # class: docs/DISTILL.md); "refine" always keeps the refined one, as the paper does
    keep: str = field(default="best_val", metadata=one_of("best_val", "refine"))


def _mckd_stage() -> StageConfig:
    weights = TermWeights(ce=0.7, dice=0.2, kl=0.1)
    return StageConfig(steps=200, labeled=weights, unlabeled=weights, temperature=10.0)


@dataclass
class MCKDConfig:
    """MCKD: ``cross_stages`` pairs of fresh students relabelling each other's partition, then
    a final student on both partitions plus the labeled set (0.7 CE + 0.2 Dice + 0.1 T^2 KL)."""

    cross_stages: int = field(default=2, metadata=POSITIVE)
    # partitions keep whole groups (scenes) together
    group_regex: str = field(default=r"^(Tile\d+)_", metadata=REGEX)
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

    method: str = field(default="sskd", metadata=one_of(*METHODS))
    teacher: str = "runs/dubai/dubai_cpu_seed0/checkpoints/best.ckpt"
    skip: list[str] = field(default_factory=list)  # stage names (or "adapt") not to run
    contrast: ContrastConfig = field(default_factory=ContrastConfig)
    sskd: SSKDConfig = field(default_factory=SSKDConfig)
    mckd: MCKDConfig = field(default_factory=MCKDConfig)
    kd: StageConfig = field(default_factory=_kd_stage)  # plain KD baseline
    supervised: StageConfig = field(default_factory=lambda: StageConfig(steps=400))

    def skips(self, stage: str) -> bool:
        """Whether ``skip`` names ``stage`` or its group (``adapt`` for ``adapt_finetune``)."""
        return stage in self.skip or stage.split("_")[0] in self.skip


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
    """Read a distillation recipe: includes, overrides, typed validation of every value.

    ``train.method`` is not checked: every stage sets its own (``<method>:<stage>``).
    """
    tree = apply_overrides(load_yaml(Path(path)), overrides or [])
    return from_dict(DistillConfig, tree)
