"""``s5geo train``: one run folder per run, Lightning Trainer, resume, final test evaluation.

A run folder ``<train.out_dir>/<run_name>`` holds ``config.yaml`` (the resolved config),
``run.json`` (seed, versions, wall time), ``metrics.csv`` (Lightning's CSV log), ``checkpoints/``
(``last.ckpt`` every ``checkpoint_every`` steps, ``best.ckpt`` by val mIoU), ``curves.png`` and,
after training, ``test.json`` + ``confusion_test.png`` from the best checkpoint. Starting a run
whose folder has ``checkpoints/last.ckpt`` continues it (interrupted runs resume where they
stopped).
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

from s5geo.config import Config


def run_dir_for(cfg: Config, config_path: Path) -> Path:
    """``out_dir/run_name``, the name defaulting to ``<config stem>_seed<seed>``."""
    name = cfg.train.run_name or f"{config_path.stem}_seed{cfg.train.seed}"
    return Path(cfg.train.out_dir) / name


def versions() -> dict[str, str]:
    """Library versions recorded with every run."""
    import lightning
    import timm
    import torch
    import torchgeo

    import s5geo

    return {
        "s5geo": s5geo.__version__,
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "timm": timm.__version__,
        "torchgeo": torchgeo.__version__,
        "python": platform.python_version(),
    }


def train(cfg: Config, config_path: Path, resume: Path | None = None) -> Path:
    """Train ``cfg`` into its run folder (resuming when possible); return the folder."""
    import lightning as L
    import torch
    import yaml

    from s5geo.data.module import SegmentationDataModule
    from s5geo.errors import UserError
    from s5geo.train.evaluate import evaluate_checkpoint
    from s5geo.train.modules import module_for
    from s5geo.train.plots import plot_curves
    from s5geo.train.preflight import check_run
    from s5geo.train.trainer import make_trainer

    t = cfg.train
    run = run_dir_for(cfg, config_path)
    ckpt_dir = run / "checkpoints"
    if resume is None and (ckpt_dir / "last.ckpt").is_file():
        resume = ckpt_dir / "last.ckpt"
    if resume is not None and not Path(resume).is_file():
        raise UserError(f"checkpoint to resume from not found: {resume}")
    check_run(cfg, resume)  # nothing is written or started before the recipe is known to work
    torch.set_num_threads(t.threads)
    L.seed_everything(t.seed, workers=True)
    data = SegmentationDataModule(
        cfg.data,
        labeled_split=t.labeled_split or cfg.data.split_labeled,
        semi_supervised=t.method == "s4p",
        steps=t.steps,
        batch_size=t.batch_size,
        num_workers=t.num_workers,
    )
    module = module_for(cfg, data.class_map.ignore_index)
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    trainer = make_trainer(run, t, steps=t.steps, resume=resume)
    started = time.time()
    record: dict[str, Any] = {"seed": t.seed, "versions": versions(), "resumed_from": None}
    if resume is not None:
        record["resumed_from"] = str(resume)
    trainer.fit(module, datamodule=data, ckpt_path=resume, weights_only=True)
    record["fit_seconds"] = round(time.time() - started, 1)
    if trainer.is_global_zero:
        if (run / "metrics.csv").is_file():
            plot_curves(run / "metrics.csv", run / "curves.png")
        chosen = (
            ckpt_dir / "best.ckpt" if (ckpt_dir / "best.ckpt").is_file() else ckpt_dir / "last.ckpt"
        )
        result = evaluate_checkpoint(chosen, cfg.data, cfg.data.split_test, run, threads=t.threads)
        record["test_miou"] = result["miou"]
        record["checkpoint"] = str(chosen)
        runs_file = run / "run.json"
        history = json.loads(runs_file.read_text()) if runs_file.is_file() else []
        history.append(record)
        runs_file.write_text(json.dumps(history, indent=2))
    return run
