"""The methods as sequences of stages: SSKD, MCKD, plain KD and the supervised-only student.

Each method walks its stages in order. A stage is run unless it is complete (``stage.json``),
skipped (``distill.skip``) or another stage was asked for (``only``); soft labels are written
once per labelling pass into ``<run>/soft/<tag>/`` and reused; the pre-trained teacher's labels
are shared by every run of the same teacher under ``<out_dir>/teacher_soft/``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from s5geo.config import ModelConfig
from s5geo.data.image_folder import ImageFolderSegmentation
from s5geo.distill.config import DistillConfig, StageConfig
from s5geo.distill.data import (
    Sample,
    read_soft_labels,
    split_source,
    with_soft,
    write_soft_labels,
)
from s5geo.distill.stage import StageResult, finished, fit_stage
from s5geo.errors import UserError
from s5geo.models.loading import load_checkpoint_model, load_checkpoint_state


@dataclass
class Context:
    """What every stage of a run shares: config, folder, sources, the stage filter."""

    cfg: DistillConfig
    run: Path
    only: str | None
    labeled: ImageFolderSegmentation
    pool: ImageFolderSegmentation
    _teacher: tuple[nn.Module, ModelConfig] | None = None

    def wanted(self, name: str) -> bool:
        """Whether stage ``name`` runs now (not skipped, not filtered out by ``--stage``)."""
        if self.cfg.distill.skips(name):
            return False
        return self.only is None or self.only == name

    def stage(
        self,
        name: str,
        model: Callable[[], ModelConfig],
        stage: StageConfig,
        labeled: Callable[[], Sequence[Sample]],
        unlabeled: Callable[[], Sequence[Sample]],
        init: Callable[[], dict[str, torch.Tensor] | None] = lambda: None,
    ) -> StageResult | None:
        """Run (or reuse) stage ``name``; None when it is skipped and has no earlier result.

        Inputs are callables so nothing is loaded for a stage that is complete or skipped.
        """
        stage_dir = self.run / name
        result = finished(stage_dir)
        if result is not None and result.metrics["steps"] != stage.steps:
            # A finished stage of another budget would be reused silently (and every later stage
            # built on it): refuse instead of mixing two recipes in one run folder.
            raise UserError(
                f"stage {name} of {self.run} finished at {result.metrics['steps']} steps but the "
                f"recipe asks for {stage.steps}: use a new run folder (train.run_name or "
                f"train.out_dir) or remove {stage_dir} to train it again"
            )
        if result is None and self.wanted(name):
            result = fit_stage(self.cfg, stage_dir, model(), stage, labeled(), unlabeled(), init())
        return result

    def teacher(self) -> tuple[nn.Module, ModelConfig]:
        """The pre-trained teacher of ``distill.teacher`` (loaded once): net and model config."""
        if self._teacher is None:
            path = Path(self.cfg.distill.teacher)
            if not path.is_file():
                raise UserError(f"teacher checkpoint not found: {path} (set distill.teacher)")
            net, tcfg = load_checkpoint_model(path)
            if tcfg.model.num_classes != self.cfg.model.num_classes:
                raise UserError(
                    f"the teacher predicts {tcfg.model.num_classes} classes, the student "
                    f"{self.cfg.model.num_classes}"
                )
            self._teacher = (net, tcfg.model)
        return self._teacher

    def soft(
        self,
        tag: str,
        make_net: Callable[[], nn.Module],
        source: ImageFolderSegmentation,
        indices: Sequence[int] | None = None,
    ) -> Path:
        """``<run>/soft/<tag>``, labelled by ``make_net()`` where images are still missing."""
        return self._label(self.run / "soft" / tag, make_net, source, indices)

    def _label(
        self,
        folder: Path,
        make_net: Callable[[], nn.Module],
        source: ImageFolderSegmentation,
        indices: Sequence[int] | None = None,
    ) -> Path:
        idx = range(len(source)) if indices is None else indices
        missing = [i for i in idx if not (folder / f"{source.names[i]}.pt").is_file()]
        if missing:
            write_soft_labels(
                make_net(), source, missing, folder, self.cfg.data, self.cfg.train.eval_tile
            )
        return folder

    def label_all(self, tag: str, make_net: Callable[[], nn.Module]) -> Path:
        """Soft labels of the labeled images and the unlabeled pool, under one tag."""
        self.soft(tag, make_net, self.labeled)
        return self.soft(tag, make_net, self.pool)

    def teacher_labels(self) -> Path:
        """Soft labels of the pre-trained teacher for the labeled images and the pool.

        The teacher's pass is the most expensive one and the same for every method, so it is
        shared by all runs under ``train.out_dir``: ``<out_dir>/teacher_soft/<digest>``, keyed by
        the teacher file's content and the window size.
        """
        path = Path(self.cfg.distill.teacher)
        folder = (
            Path(self.cfg.train.out_dir)
            / "teacher_soft"
            / teacher_digest(path, self.cfg.train.eval_tile)
        )
        self._label(folder, lambda: self.teacher()[0], self.labeled)
        return self._label(folder, lambda: self.teacher()[0], self.pool)

    def samples(
        self, which: str, folder: Path | None, indices: Sequence[int] | None = None
    ) -> Callable[[], list[Sample]]:
        """Loader of ``labeled``/``pool`` samples ``indices`` with the soft labels of ``folder``."""
        source = self.labeled if which == "labeled" else self.pool

        def load() -> list[Sample]:
            idx = list(range(len(source))) if indices is None else list(indices)
            names = [source.names[i] for i in idx]
            soft = None if folder is None else read_soft_labels(folder, names)
            return with_soft(source, idx, soft)

        return load


def teacher_digest(path: Path, tile: int) -> str:
    """Short content hash of a teacher checkpoint plus the labelling window size."""
    if not path.is_file():
        raise UserError(f"teacher checkpoint not found: {path} (set distill.teacher)")
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return f"{digest.hexdigest()[:16]}_t{tile}"


def _net(result: StageResult) -> Callable[[], nn.Module]:
    return lambda: load_checkpoint_model(result.checkpoint)[0]


def run_sskd(ctx: Context) -> None:
    """Teacher adaptation (fine-tune + pseudo-label + re-init and self-train), transfer, refine."""
    s = ctx.cfg.distill.sskd

    def teacher_model() -> ModelConfig:
        return ctx.teacher()[1]

    def teacher_weights() -> dict[str, torch.Tensor]:  # the pre-trained weights, every time
        return load_checkpoint_state(Path(ctx.cfg.distill.teacher))

    ref = ctx.teacher_labels()
    ft = ctx.stage(
        "adapt_finetune",
        teacher_model,
        s.adapt_finetune,
        ctx.samples("labeled", ref),
        ctx.samples("pool", ref),
        teacher_weights,
    )
    if ft is not None:
        ref = ctx.label_all("adapt_finetune", _net(ft))
        st = ctx.stage(
            "adapt_selftrain",
            teacher_model,
            s.adapt_selftrain,
            ctx.samples("labeled", ref),
            ctx.samples("pool", ref),
            teacher_weights,
        )
        if st is not None:
            ref = ctx.label_all("adapted", _net(st))
    student = ctx.cfg.model
    transfer = ctx.stage(
        "transfer",
        lambda: student,
        s.transfer,
        ctx.samples("labeled", ref),
        ctx.samples("pool", ref),
    )
    if transfer is None:
        if ctx.wanted("refine"):
            raise UserError("the refine stage needs a finished transfer stage")
        return
    ctx.stage(
        "refine",
        lambda: student,
        s.refine,
        ctx.samples("labeled", None),
        list,
        lambda: load_checkpoint_state(transfer.checkpoint),
    )


def partition(
    names: Sequence[str], group_regex: str, pixels: Sequence[int]
) -> tuple[list[int], list[int]]:
    """Two index lists keeping whole groups (scenes) together, balanced by pixel count.

    Groups are assigned largest first to the partition with fewer pixels (greedy).
    """
    pattern = re.compile(group_regex)
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        match = pattern.search(name)
        if match is None:
            raise UserError(
                f"image {name!r} does not match distill.mckd.group_regex {group_regex!r}"
            )
        groups.setdefault(match.group(1) if match.groups() else match.group(0), []).append(i)
    if len(groups) < 2:
        raise UserError("MCKD needs at least two groups (scenes) in the unlabeled pool")
    sizes = {g: sum(pixels[i] for i in idx) for g, idx in groups.items()}
    parts: tuple[list[int], list[int]] = ([], [])
    totals = [0, 0]
    for g in sorted(groups, key=lambda g: (-sizes[g], g)):
        side = 0 if totals[0] <= totals[1] else 1
        parts[side].extend(groups[g])
        totals[side] += sizes[g]
    return sorted(parts[0]), sorted(parts[1])


def run_mckd(ctx: Context) -> None:
    """Teacher soft labels; ``cross_stages`` fresh student pairs relabelling each other's
    partition; a final fresh student on both partitions plus the labeled set."""
    m = ctx.cfg.distill.mckd
    teacher_ref = ctx.teacher_labels()
    pixels = [int(ctx.pool[i]["image"][0].numel()) for i in range(len(ctx.pool))]
    parts = partition(ctx.pool.names, m.group_regex, pixels)
    (ctx.run / "partitions.txt").write_text(
        "\n".join(
            f"{side}: {' '.join(ctx.pool.names[i] for i in idx)}"
            for side, idx in zip("AB", parts, strict=True)
        )
        + "\n"
    )
    latest = [teacher_ref, teacher_ref]  # the newest soft labels of partition A and of B
    student = ctx.cfg.model
    for t in range(1, m.cross_stages + 1):
        made = [
            ctx.stage(
                f"cross{t}_{side}",
                lambda: student,
                m.cross,
                list,
                ctx.samples("pool", latest[j], parts[j]),
            )
            for j, side in enumerate("AB")
        ]
        if made[0] is None or made[1] is None:
            return
        # S_A relabels B and S_B relabels A: each labels the partition it has not seen
        latest = [
            ctx.soft(f"cross{t}_A", _net(made[1]), ctx.pool, parts[0]),
            ctx.soft(f"cross{t}_B", _net(made[0]), ctx.pool, parts[1]),
        ]
    final_a, final_b = (
        ctx.samples("pool", latest[0], parts[0]),
        ctx.samples("pool", latest[1], parts[1]),
    )
    ctx.stage(
        "final",
        lambda: student,
        m.final,
        ctx.samples("labeled", teacher_ref),
        lambda: final_a() + final_b(),
    )


def run_kd(ctx: Context) -> None:
    """Plain logit distillation: CE on labels + T^2 KL to the teacher on all images."""
    ref = ctx.teacher_labels()
    ctx.stage(
        "kd",
        lambda: ctx.cfg.model,
        ctx.cfg.distill.kd,
        ctx.samples("labeled", ref),
        ctx.samples("pool", ref),
    )


def run_supervised(ctx: Context) -> None:
    """The student on the labeled images only (no teacher): the baseline every method must beat."""
    ctx.stage(
        "supervised",
        lambda: ctx.cfg.model,
        ctx.cfg.distill.supervised,
        ctx.samples("labeled", None),
        list,
    )


PIPELINES = {"sskd": run_sskd, "mckd": run_mckd, "kd": run_kd, "supervised": run_supervised}
STAGES = {
    "sskd": ("adapt_finetune", "adapt_selftrain", "transfer", "refine"),
    "kd": ("kd",),
    "supervised": ("supervised",),
}


def stage_names(cfg: DistillConfig) -> tuple[str, ...]:
    """Stage names of the configured method, in order."""
    if cfg.distill.method == "mckd":
        cross = [f"cross{t}_{s}" for t in range(1, cfg.distill.mckd.cross_stages + 1) for s in "AB"]
        return (*cross, "final")
    return STAGES[cfg.distill.method]


def context(cfg: DistillConfig, run: Path, only: str | None) -> Context:
    """The shared state of a run: labeled images (with masks) and the unlabeled pool (without)."""
    labeled = split_source(cfg.data, cfg.train.labeled_split or cfg.data.split_labeled)
    pool = split_source(cfg.data, cfg.data.split_unlabeled, with_masks=False)
    return Context(cfg, run, only, labeled, pool)
