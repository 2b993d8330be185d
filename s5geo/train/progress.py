"""Progress of a fit as plain lines on stderr: steps done, time per step, time left, val score.

Every s5geo fit (``s5geo train``, ``s5geo distill``'s stages, MoE-MDF) runs for tens of minutes
on a CPU. Lightning's progress bars redraw one terminal line per step, which leaves control
characters in a log file and nothing readable after a ``nohup``; s5geo's fits are step-based and
validate rarely, so one line per twentieth of the run and one per validation say what is needed:

    transfer: step 600/3000 (20 %), loss 1.342, 0.91 s/step, 36 min left
    transfer: step 800/3000, val/miou 40.14 (best this session 40.14)

Written by rank 0 only (DDP), flushed at once.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import lightning as L
from lightning.pytorch.utilities import rank_zero_only

# About this many lines per run: one every max(1, steps // 20) steps (a run of under 40 steps
# prints every step, a run of 50 steps every second one).
LINES_PER_RUN = 20


@rank_zero_only
def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    """``45 s``, ``12 min`` or ``1 h 05 min``: precise enough for a time left."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


class StepProgress(L.Callback):
    """Writes ``label: step N/TOTAL (P %), loss L, S s/step, T left`` and each validation's score.

    ``monitor`` is the metric the run keeps its best checkpoint by (``val/miou``; MoE-MDF's
    ``val/miou_mean``). Time per step is measured from this process's first step, so a resumed
    run's rate is not diluted by the steps of an earlier session.
    """

    def __init__(self, label: str, monitor: str) -> None:
        self.label = label
        self.monitor = monitor
        self.best: float | None = None
        self._start_time = 0.0
        self._start_step = 0
        self._last_line = -1

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start_time = time.perf_counter()
        self._start_step = trainer.global_step
        every = max(1, trainer.max_steps // LINES_PER_RUN)
        self._last_line = trainer.global_step // every
        if trainer.global_step:
            _say(f"{self.label}: resumed at step {trainer.global_step}/{trainer.max_steps}")

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        step, total = trainer.global_step, trainer.max_steps
        every = max(1, total // LINES_PER_RUN)
        if step // every == self._last_line and step != total:
            return
        self._last_line = step // every
        done = step - self._start_step
        per_step = (time.perf_counter() - self._start_time) / max(done, 1)
        loss = trainer.callback_metrics.get("train/loss")
        parts = [f"{self.label}: step {step}/{total} ({100 * step / total:.0f} %)"]
        if loss is not None:
            parts.append(f"loss {float(loss):.3f}")
        parts.append(f"{per_step:.2f} s/step")
        if step < total:
            parts.append(f"{_duration(per_step * (total - step))} left")
        _say(", ".join(parts))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if value is None or trainer.sanity_checking:
            return
        score = float(value)
        self.best = score if self.best is None else max(self.best, score)
        _say(
            f"{self.label}: step {trainer.global_step}/{trainer.max_steps}, "
            f"{self.monitor} {score:.2f} (best this session {self.best:.2f})"
        )
