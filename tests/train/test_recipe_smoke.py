"""The Dubai S4P recipe end to end at toy size: train, resume, evaluate (real data, < 2 min)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from s5geo.config import DataConfig

pytestmark = [pytest.mark.realdata, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
DUBAI = DataConfig().resolved_root()


def s5geo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "s5geo.cli.main", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip


@pytest.fixture
def small_splits(tmp_path: Path) -> Path:
    if not (DUBAI / "splits.json").is_file():
        pytest.skip(f"Dubai data not found under {DUBAI} (set S5GEO_DATA)")
    path = tmp_path / "splits.json"
    path.write_text(
        json.dumps(
            {
                "train_labeled": ["Tile1_image_part_001", "Tile3_image_part_005"],
                "train_unlabeled": ["Tile1_image_part_002", "Tile3_image_part_003"],
                "val": ["Tile2_image_part_001"],
            }
        )
    )
    return path


def test_train_resume_evaluate(tmp_path: Path, small_splits: Path) -> None:
    common = [
        "configs/s4p/dubai_cpu.yaml",
        f"--set=data.splits_file={small_splits}",
        "--set=data.split_test=val",
        "--set=data.crop_size=64",
        "--set=model.decoder_channels=16",
        "--set=train.batch_size=2",
        "--set=train.val_every=2",
        "--set=train.checkpoint_every=1",
        "--set=train.num_workers=0",
        f"--set=train.out_dir={tmp_path}",
        "--set=train.run_name=smoke",
    ]
    first = s5geo("train", *common, "--set=train.steps=2")
    assert first.returncode == 0, first.stderr[-2000:]
    run = tmp_path / "smoke"
    for name in ("config.yaml", "metrics.csv", "curves.png", "val.json", "confusion_val.png"):
        assert (run / name).is_file(), name
    assert (run / "checkpoints" / "best.ckpt").is_file()

    second = s5geo("train", *common, "--set=train.steps=3")
    assert second.returncode == 0, second.stderr[-2000:]
    history = json.loads((run / "run.json").read_text())
    assert history[-1]["resumed_from"].endswith("last.ckpt")
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["global_step"] == 3

    result = s5geo(
        "evaluate", str(run / "checkpoints" / "last.ckpt"), "--data", "configs/data/dubai.yaml",
        "--split", "val", "--json", f"--set=data.splits_file={small_splits}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    scores = json.loads(result.stdout)
    assert 0 <= scores["miou"] <= 100
    assert set(scores["iou"]) == {"building", "land", "road", "vegetation", "water"}
