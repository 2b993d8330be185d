"""MoE-MDF trainer: a few real steps on Dubai + SpaceNet + Swiss trees, resume, layer decay."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from s5geo.errors import UserError
from s5geo.models.mdf import load_mdf_config, load_mdf_dataset_model
from s5geo.train.mdf import MDFModule, check_mdf_config, layer_decay_groups, train_mdf

ROOT = Path(__file__).resolve().parents[2]
CPU = ROOT / "configs" / "mdf" / "cpu_three.yaml"


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One intra-op thread: on a shared 2-core machine two threads spin against other jobs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def smoke_overrides(real_data: Path, tmp_path: Path) -> list[str]:
    return [
        f"train.out_dir={tmp_path}", "train.run_name=smoke", "train.steps=3", "train.val_every=3",
        "train.checkpoint_every=3", "train.batch_size=2", "model.img_size=64",
        "datasets.dubai.data.crop_size=64", "datasets.spacenet.data.crop_size=64",
        "datasets.swiss_trees.data.crop_size=64", "datasets.swiss_trees.start_step=2",
        "datasets.dubai.data.split_test=val", "model.decoder_channels=16", "train.eval_tile=256",
        "datasets.spacenet.class_weights=[1.0, 4.0]",
    ]  # fmt: skip


def test_three_dataset_smoke_run(smoke_overrides: list[str], tmp_path: Path) -> None:
    run = train_mdf(CPU, smoke_overrides)
    test = json.loads((run / "test.json").read_text())
    assert set(test["miou"]) == {"dubai", "spacenet", "swiss_trees"}
    assert all(0 <= v <= 100 for v in test["miou"].values())
    # Per-class IoU by class name, averaging to each dataset's mIoU (classes absent from both the
    # labels and the predictions have no IoU and are left out of the mean).
    assert set(test["iou"]["spacenet"]) == {"background", "building"}
    for name, per_class in test["iou"].items():
        present = [v for v in per_class.values() if v is not None]
        assert abs(sum(present) / len(present) - test["miou"][name]) < 0.02
    metrics = (run / "metrics.csv").read_text()
    assert "val/miou_mean" in metrics and "train/loss_spacenet" in metrics
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 3
    # One dataset's path of the checkpoint is a dense model computing what the MoE computes.
    dense, cfg = load_mdf_dataset_model(run / "checkpoints" / "last.ckpt", "spacenet")
    module = MDFModule(cfg.to_dict(), load_weights=False).eval()
    module.load_state_dict(ckpt["state_dict"])
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(dense(x), module.net(x, 1), rtol=1e-4, atol=1e-4)
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


def test_init_from_a_dense_training_checkpoint(tmp_path: Path) -> None:
    """moe.init_from splits a dense s5geo checkpoint: every dataset computes the dense model."""
    from s5geo.config import load_config
    from s5geo.models import build_model
    from s5geo.models.mdf import build_mdf_model

    small = ["model.name=vit_tiny", "model.img_size=64", "model.decoder_channels=16"]
    dense_cfg = load_config(ROOT / "configs" / "s4p" / "dubai_cpu.yaml", small)
    torch.manual_seed(0)
    dense = build_model(dense_cfg.model).eval()
    path = tmp_path / "dense.ckpt"
    state = {f"net.{k}": v for k, v in dense.state_dict().items()}
    torch.save({"hyper_parameters": {"config": dense_cfg.to_dict()}, "state_dict": state}, path)
    cfg = load_mdf_config(CPU, [*small, f"moe.init_from={path}", "moe.copy_classifiers=true"])
    moe = build_mdf_model(cfg).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        ref = dense(x)
        torch.testing.assert_close(moe(x, 0), ref, rtol=1e-5, atol=1e-5)  # dubai: 5 classes
        feats = dense.neck(dense.backbone(x))
        for d in (1, 2):  # buildings, trees: new 2-class heads, the shared features are the dense
            for a, b in zip(moe.neck(moe.backbone(x, d)), feats, strict=True):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    with pytest.raises(UserError, match="predicts 5 classes"):
        build_mdf_model(
            load_mdf_config(CPU, [*small, f"moe.init_from={path}", "model.num_classes=7"])
        )


def test_disabled_datasets_are_left_out() -> None:
    cfg = load_mdf_config(CPU, ["datasets.dubai.enabled=false"])
    assert list(cfg.datasets) == ["spacenet", "swiss_trees"] and cfg.class_counts() == [2, 2]
    off = [f"datasets.{n}.enabled=false" for n in ("dubai", "spacenet", "swiss_trees")]
    with pytest.raises(UserError, match="disabled"):
        load_mdf_config(CPU, off)
    with pytest.raises(UserError, match="class_weights has 3 values; the dataset has 2"):
        MDFModule(load_mdf_config(CPU, ["datasets.spacenet.class_weights=[1, 2, 3]"]).to_dict())
    with pytest.raises(UserError, match="datasets.spacenet.wieght"):
        load_mdf_config(CPU, ["datasets.spacenet.wieght=2"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.lr=-1", "config key train.lr: -1.0 is not allowed; it must be > 0"),
        ("train.weight_decay=-0.1", "config key train.weight_decay: -0.1 is not allowed"),
        ("train.layer_decay=1.5", "train.layer_decay: 1.5 is not allowed; it must be in (0, 1]"),
        ("train.method=s4p", "train.method: 's4p' is not allowed; it must be one of mdf"),
        ("moe.expert_dim=-1", "config key moe.expert_dim: -1 is not allowed; it must be >= 0"),
        ("datasets.spacenet.batch_size=0", "datasets.spacenet.batch_size: 0 is not allowed"),
        ("datasets.spacenet.weight=-1", "datasets.spacenet.weight: -1.0 is not allowed"),
        ("datasets.dubai.start_step=600", "datasets.dubai.start_step: 600 is not allowed"),
        ("model.name=timm:resnet18", "MoE-MDF needs a ViT: one of vit_tiny"),
    ],
)
def test_bad_values_are_refused_before_the_run_folder(
    tmp_path: Path, override: str, message: str
) -> None:
    with pytest.raises(UserError, match=re.escape(message)):
        train_mdf(CPU, [f"train.out_dir={tmp_path}", override])
    assert list(tmp_path.iterdir()) == []


def test_missing_data_is_refused_before_the_run_folder(real_data: Path, tmp_path: Path) -> None:
    root = "datasets.spacenet.data.root=/nonexistent/s5geo"
    with pytest.raises(UserError, match=re.escape("datasets.spacenet.data.root")):
        train_mdf(CPU, [f"train.out_dir={tmp_path}", root])
    assert list(tmp_path.iterdir()) == []


def test_every_bundled_mdf_recipe_is_valid() -> None:
    for path in (ROOT / "configs" / "mdf").glob("*.yaml"):
        check_mdf_config(load_mdf_config(path))
