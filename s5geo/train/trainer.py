"""The Lightning Trainer behind every s5geo fit: S4P/supervised runs, MoE-MDF and distillation.

All fits are counted in steps, not epochs (the data modules sample windows without end), validate
every ``train.val_every`` steps, save ``checkpoints/last.ckpt`` every ``train.checkpoint_every``
steps and ``checkpoints/best.ckpt`` by a validation metric, log ``metrics.csv`` into the run
folder (kept across resumes, see ``csvlog``) and write their progress to stderr (``progress``).
"""

from __future__ import annotations

import logging
import warnings
from datetime import timedelta
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint

from s5geo.config import TrainConfig
from s5geo.train.csvlog import RunCSVLogger, checkpoint_step
from s5geo.train.progress import StepProgress


class _NoAdvert(logging.Filter):
    """Drops the litlogger tip Lightning logs at every Trainer: an advert for a cloud service."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


_NO_ADVERT = _NoAdvert()


def _quiet_lightning() -> None:
    """Silences two kinds of library noise each fit printed, which users can do nothing about.

    Lightning 2.6 logs a litlogger tip at every Trainer and builds torch's deprecated
    ``LeafSpec`` (a FutureWarning, twice per fit); neither says anything about the run.
    The tip goes to whichever of Lightning's two rank-zero loggers was imported last, so both
    get the filter. Idempotent: a logger keeps one filter, ``filterwarnings`` one entry.
    """
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).addFilter(_NO_ADVERT)
    warnings.filterwarnings(
        "ignore",
        message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        category=FutureWarning,
    )


def make_trainer(
    run: Path,
    t: TrainConfig,
    *,
    steps: int,
    resume: Path | None,
    monitor: str = "val/miou",
    distributed: bool = True,
) -> L.Trainer:
    """A step-based Trainer writing into ``run``; ``distributed=False`` pins one device."""
    _quiet_lightning()
    ckpt_dir = run / "checkpoints"
    last = ModelCheckpoint(
        dirpath=ckpt_dir, every_n_train_steps=t.checkpoint_every, save_last=True, save_top_k=0
    )
    best = ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor=monitor, mode="max",
                           save_top_k=1)  # fmt: skip
    return L.Trainer(
        default_root_dir=run,
        max_steps=steps,
        max_epochs=-1,
        max_time=timedelta(minutes=t.max_minutes) if t.max_minutes else None,
        val_check_interval=min(t.val_every, steps),
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        accelerator=t.accelerator,
        devices=t.devices if distributed else 1,
        num_nodes=t.num_nodes if distributed else 1,
        strategy=t.strategy if distributed else "auto",
        precision=t.precision,  # type: ignore[arg-type]
        logger=RunCSVLogger(run, checkpoint_step(resume)),
        callbacks=[last, best, LearningRateMonitor("step"), StepProgress(run.name, monitor)],
        log_every_n_steps=max(1, min(10, steps // 4)),
        enable_progress_bar=False,
        enable_model_summary=False,
    )
