"""``s5geo train``: one run folder per run, Lightning Trainer, resume, final test evaluation.

The run folder (:mod:`s5geo.train.rundir`: ``<train.out_dir>/<run_name>``, ``config.yaml``,
``run.json`` with the seed, versions and wall time of each session, ``checkpoints/`` with
``last.ckpt`` every ``checkpoint_every`` steps and ``best.ckpt`` by val mIoU) also holds
``metrics.csv`` (Lightning's CSV log), ``curves.png`` and, after training, ``test.json`` +
``confusion_test.png`` from the best checkpoint. Starting a run whose folder has
``checkpoints/last.ckpt`` continues it (interrupted runs resume where they stopped).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from s5geo.config import Config


def train(cfg: Config, config_path: Path, resume: Path | None = None) -> Path:
    """Train ``cfg`` into its run folder (resuming when possible); return the folder."""
    from s5geo.data.module import SegmentationDataModule
    from s5geo.plots import plot_curves
    from s5geo.train.evaluate import evaluate_checkpoint
    from s5geo.train.modules import module_for
    from s5geo.train.preflight import check_run
    from s5geo.train.rundir import (
        append_session,
        chosen_checkpoint,
        resume_checkpoint,
        run_folder,
        seed_run,
        session_record,
        write_config,
    )
    from s5geo.train.trainer import make_trainer

    t = cfg.train
    run = run_folder(t, config_path)
    ckpt_dir = run / "checkpoints"
    resume = resume_checkpoint(ckpt_dir, resume)
    check_run(cfg, resume)  # nothing is written or started before the recipe is known to work
    seed_run(t)
    data = SegmentationDataModule(
        cfg.data,
        labeled_split=t.labeled_split or cfg.data.split_labeled,
        semi_supervised=t.method == "s4p",
        steps=t.steps,
        batch_size=t.batch_size,
        num_workers=t.num_workers,
    )
    module = module_for(cfg, data.class_map.ignore_index)
    write_config(run, cfg.to_dict())
    trainer = make_trainer(run, t, steps=t.steps, resume=resume)
    started = time.time()
    record: dict[str, Any] = {
        **session_record(t), "resumed_from": None if resume is None else str(resume)
    }  # fmt: skip
    trainer.fit(module, datamodule=data, ckpt_path=resume, weights_only=True)
    record["fit_seconds"] = round(time.time() - started, 1)
    if trainer.is_global_zero:
        if (run / "metrics.csv").is_file():
            plot_curves(run / "metrics.csv", run / "curves.png")
        chosen = chosen_checkpoint(ckpt_dir)
        result = evaluate_checkpoint(chosen, cfg.data, cfg.data.split_test, run, threads=t.threads)
        record["test_miou"] = result["miou"]
        record["checkpoint"] = str(chosen)
        append_session(run, record)
    return run
