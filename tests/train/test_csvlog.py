"""The run logger keeps a resumed run's earlier metrics (Lightning's CSVLogger deletes them)."""

from __future__ import annotations

import csv
from pathlib import Path

from s5geo.train.csvlog import RunCSVLogger


def _log(logger: RunCSVLogger, steps: range, key: str = "train/loss") -> None:
    for step in steps:
        logger.log_metrics({key: float(step)}, step=step)
    logger.save()


def _rows(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_resume_keeps_rows_before_the_checkpoint_step(tmp_path: Path) -> None:
    _log(RunCSVLogger(tmp_path), range(30))  # interrupted at step 29, checkpoint from step 20
    resumed = RunCSVLogger(tmp_path, resumed_step=20)
    _log(resumed, range(20, 40))
    _log(resumed, range(40, 42), key="val/miou")  # a metric the first session never logged
    rows = _rows(tmp_path)
    assert [int(r["step"]) for r in rows] == list(range(42))
    assert rows[5]["train/loss"] == "5.0" and rows[41]["val/miou"] == "41.0"


def test_fresh_run_in_an_old_folder_starts_a_new_file(tmp_path: Path) -> None:
    _log(RunCSVLogger(tmp_path), range(10))
    _log(RunCSVLogger(tmp_path), range(3))
    assert [int(r["step"]) for r in _rows(tmp_path)] == [0, 1, 2]
