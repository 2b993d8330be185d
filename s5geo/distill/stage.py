"""Running one stage: Lightning fit in ``<run>/<stage>/``, resume, best checkpoint, scores.

A stage folder holds ``metrics.csv`` (Lightning's CSV log: losses, val mIoU), ``checkpoints/``
(``last.ckpt`` every ``train.checkpoint_every`` steps, ``best.ckpt`` by val mIoU), ``curves.png``
and, once finished, ``stage.json`` (val and test scores of the best checkpoint, wall time, size).
A stage with ``stage.json`` is complete and is not run again; one with ``last.ckpt`` continues.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from s5geo.config import DataConfig, ModelConfig
from s5geo.datasets.classes import get_class_map
from s5geo.distill.config import DistillConfig, StageConfig
from s5geo.distill.data import DistillDataModule, Sample, split_source
from s5geo.metrics import confusion_matrix, percent, scores
from s5geo.models.loading import load_checkpoint_model
from s5geo.train.inference import predict_probs


@dataclass
class StageResult:
    """A finished stage: its folder, chosen checkpoint and scores (see ``stage.json``)."""

    name: str
    checkpoint: Path
    metrics: dict[str, Any]


@torch.no_grad()
def evaluate_net(net: nn.Module, data: DataConfig, split: str, tile: int) -> dict[str, Any]:
    """Scores (percent) of ``net`` on the whole images of ``split``, as s5geo evaluate computes."""
    class_map = get_class_map(data.class_map)
    k = class_map.num_classes
    source = split_source(data, split)
    mean = torch.tensor(data.mean).view(-1, 1, 1)
    std = torch.tensor(data.std).view(-1, 1, 1)
    cm = np.zeros((k, k), dtype=np.int64)
    net.eval().to(memory_format=torch.channels_last)
    for i in range(len(source)):
        sample = source[i]
        x = (sample["image"].float() / data.input_scale - mean) / std
        pred = predict_probs(net, x, k, tile=tile, channels_last=True).argmax(0)
        cm += confusion_matrix(sample["mask"].numpy(), pred.numpy(), k, class_map.ignore_index)
    result = percent(scores(cm), list(class_map.names))
    result["confusion"] = cm.tolist()
    return result


def finished(stage_dir: Path) -> StageResult | None:
    """The result of a completed stage, or None."""
    path = stage_dir / "stage.json"
    if not path.is_file():
        return None
    metrics = json.loads(path.read_text())
    return StageResult(stage_dir.name, Path(metrics["checkpoint"]), metrics)


def fit_stage(
    cfg: DistillConfig,
    stage_dir: Path,
    model: ModelConfig,
    stage: StageConfig,
    labeled: Sequence[Sample],
    unlabeled: Sequence[Sample],
    init: dict[str, torch.Tensor] | None = None,
) -> StageResult:
    """Train one stage (or continue it from ``last.ckpt``); score its best checkpoint."""
    from s5geo.distill.module import DistillModule
    from s5geo.plots import plot_curves
    from s5geo.train.rundir import chosen_checkpoint, resume_checkpoint, seed_run
    from s5geo.train.trainer import make_trainer

    done = finished(stage_dir)
    if done is not None:
        return done
    t = cfg.train
    name = stage_dir.name
    run_cfg = cfg.stage_run_config(model, stage, name)
    ignore = get_class_map(cfg.data.class_map).ignore_index
    module = DistillModule(run_cfg.to_dict(), asdict(stage), asdict(cfg.distill.contrast), ignore)
    ckpt_dir = stage_dir / "checkpoints"
    resume = resume_checkpoint(ckpt_dir, None)
    if init is not None and resume is None:
        module.net.load_state_dict(init)
    data = DistillDataModule(
        cfg.data, labeled, unlabeled, stage.steps, stage.batch_size, t.num_workers
    )
    seed_run(t)
    trainer = make_trainer(stage_dir, t, steps=stage.steps, resume=resume, distributed=False)
    started = time.time()
    trainer.fit(module, datamodule=data, ckpt_path=resume, weights_only=True)
    seconds = time.time() - started
    if (stage_dir / "metrics.csv").is_file():
        plot_curves(stage_dir / "metrics.csv", stage_dir / "curves.png")
    chosen = chosen_checkpoint(ckpt_dir)
    net, _ = load_checkpoint_model(chosen)
    metrics: dict[str, Any] = {
        "stage": name,
        "checkpoint": str(chosen),
        "model": model.name,
        "parameters": sum(p.numel() for p in net.parameters()),
        "steps": stage.steps,
        "fit_seconds_this_session": round(seconds, 1),
        "resumed": resume is not None,
        "val": evaluate_net(net, cfg.data, cfg.data.split_val, t.eval_tile),
        "test": evaluate_net(net, cfg.data, cfg.data.split_test, t.eval_tile),
    }
    (stage_dir / "stage.json").write_text(json.dumps(metrics, indent=2))
    return StageResult(name, chosen, metrics)
