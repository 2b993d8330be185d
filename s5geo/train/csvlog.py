"""The run folder's ``metrics.csv`` logger, which keeps the history of a resumed run.

Lightning's ``CSVLogger`` deletes an existing ``metrics.csv`` when it starts, so a run resumed
from ``last.ckpt`` would lose every row logged before the interruption (and its training-curve
plot would start at the resumed step). Lightning has no option for this, hence the subclass: on
resume it keeps the rows logged before the checkpoint's step and appends after them.
"""

from __future__ import annotations

import csv
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from s5geo.errors import UserError


class _KeepingWriter(ExperimentWriter):
    """Lightning's CSV writer, keeping an existing file's rows with ``step < keep_before``."""

    def __init__(self, log_dir: str, keep_before: int | None) -> None:
        self._keep_before = keep_before
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if not path.is_file():
            return
        if self._keep_before is None:  # a fresh run in an old folder: start a new file
            path.unlink()
            return
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            keys = list(reader.fieldnames or [])
            rows = [r for r in reader if _step(r) < self._keep_before]
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)
        self.metrics_keys = sorted(keys)  # new keys extend the header, old rows keep theirs


def _step(row: dict[str, str]) -> float:
    try:
        return float(row.get("step") or 0)
    except ValueError:
        return 0.0


class RunCSVLogger(CSVLogger):
    """``metrics.csv`` directly in ``run_dir``; ``resumed_step`` keeps the rows logged before it."""

    def __init__(self, run_dir: Path, resumed_step: int | None = None) -> None:
        super().__init__(run_dir, name="", version="")
        self._resumed_step = resumed_step

    @property
    def experiment(self) -> ExperimentWriter:
        if not isinstance(self._experiment, _KeepingWriter):
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _KeepingWriter(self.log_dir, self._resumed_step)
        return self._experiment


def checkpoint_step(checkpoint: Path | None) -> int | None:
    """The global step a Lightning checkpoint was saved at (None without a checkpoint)."""
    if checkpoint is None:
        return None
    from s5geo.models.checkpoint import load_torch_file

    state = load_torch_file(checkpoint, mmap=True)
    if not isinstance(state, dict):
        raise UserError(f"{checkpoint} is not a Lightning checkpoint (no global_step)")
    return int(state.get("global_step", 0))
