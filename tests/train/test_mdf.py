"""MoE-MDF trainer: a few real steps on Dubai + SpaceNet + Swiss trees, resume, layer decay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from s5geo.models.mdf import load_mdf_config
from s5geo.train.mdf import MDFModule, layer_decay_groups, train_mdf

ROOT = Path(__file__).resolve().parents[2]
CPU = ROOT / "configs" / "mdf" / "cpu_three.yaml"


@pytest.fixture
def smoke_overrides(real_data: Path, tmp_path: Path) -> list[str]:
    return [
        f"train.out_dir={tmp_path}", "train.run_name=smoke", "train.steps=3", "train.val_every=3",
        "train.checkpoint_every=3", "train.batch_size=2", "model.img_size=64",
        "datasets.dubai.data.crop_size=64", "datasets.spacenet.data.crop_size=64",
        "datasets.swiss_trees.data.crop_size=64", "datasets.swiss_trees.start_step=2",
        "datasets.dubai.data.split_test=val", "model.decoder_channels=16", "train.eval_tile=256",
    ]  # fmt: skip


def test_three_dataset_smoke_run(smoke_overrides: list[str], tmp_path: Path) -> None:
    run = train_mdf(CPU, smoke_overrides)
    test = json.loads((run / "test.json").read_text())
    assert set(test["miou"]) == {"dubai", "spacenet", "swiss_trees"}
    assert all(0 <= v <= 100 for v in test["miou"].values())
    metrics = (run / "metrics.csv").read_text()
    assert "val/miou_mean" in metrics and "train/loss_spacenet" in metrics
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 3
    # Running again resumes from last.ckpt: nothing left to train, one more test record.
    train_mdf(CPU, smoke_overrides)
    assert len(json.loads((run / "run.json").read_text())) == 2


def test_start_step_and_layer_decay(real_data: Path) -> None:
    cfg = load_mdf_config(
        CPU, ["model.img_size=64", "model.decoder_channels=16", "train.layer_decay=0.9"]
    )
    module = MDFModule(cfg.to_dict())
    groups = layer_decay_groups(module.net, 1.0, 0.9)
    depth = len(module.net.backbone.blocks)
    assert len(groups) == depth + 2
    assert groups[0]["lr"] == pytest.approx(0.9 ** (depth + 1)) and groups[-1]["lr"] == 1.0
    assert sum(len(g["params"]) for g in groups) == len(list(module.net.parameters()))
