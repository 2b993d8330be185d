"""Run folders: where a run lives, what it resumes from, its configs and session records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from s5geo.config import TrainConfig
from s5geo.errors import UserError
from s5geo.train.rundir import (
    append_session,
    chosen_checkpoint,
    resume_checkpoint,
    run_folder,
    session_record,
    write_config,
)


def test_the_folder_is_named_after_the_recipe_and_seed(tmp_path: Path) -> None:
    t = TrainConfig(out_dir=str(tmp_path), seed=3)
    assert run_folder(t, Path("configs/s4p/dubai_cpu.yaml")) == tmp_path / "dubai_cpu_seed3"
    t.run_name = "mine"
    assert run_folder(t, Path("configs/s4p/dubai_cpu.yaml")) == tmp_path / "mine"


def test_a_run_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    checkpoints = tmp_path / "checkpoints"
    assert resume_checkpoint(checkpoints, None) is None
    with pytest.raises(UserError, match="checkpoint to resume from not found"):
        resume_checkpoint(checkpoints, tmp_path / "gone.ckpt")
    checkpoints.mkdir()
    (checkpoints / "last.ckpt").write_bytes(b"")
    assert resume_checkpoint(checkpoints, None) == checkpoints / "last.ckpt"
    assert chosen_checkpoint(checkpoints) == checkpoints / "last.ckpt"
    (checkpoints / "best.ckpt").write_bytes(b"")
    assert chosen_checkpoint(checkpoints) == checkpoints / "best.ckpt"


def test_the_first_config_stays_and_a_changed_one_is_kept_beside_it(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_config(run, {"train": {"steps": 10}})
    write_config(run, {"train": {"steps": 10}})  # the same recipe again: nothing new
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml"]
    write_config(run, {"train": {"steps": 20}})
    assert "steps: 10" in (run / "config.yaml").read_text()
    [later] = run.glob("config.*.yaml")
    assert "steps: 20" in later.read_text()


def test_each_session_adds_a_record(tmp_path: Path) -> None:
    t = TrainConfig(seed=7)
    append_session(tmp_path, {**session_record(t), "fit_seconds": 1.5})
    append_session(tmp_path, {**session_record(t), "fit_seconds": 2.5})
    records = json.loads((tmp_path / "run.json").read_text())
    assert [r["fit_seconds"] for r in records] == [1.5, 2.5]
    assert records[0]["seed"] == 7
    assert {"s5geo", "torch", "lightning"} <= set(records[0]["versions"])
