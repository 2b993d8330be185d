"""Fixtures for distillation tests: a tiny subset of the real Dubai data and a tiny teacher.

The subset takes 8 real images (Tiles 1, 2, 3), each cropped to its top-left 256 x 256 pixels
(image and mask alike) into a temporary data root with its own splits: 2 labelled, 4 unlabelled
(two Tiles, so MCKD has two scene groups), 1 val, 1 test. Crops keep every whole-image pass
(labelling, evaluation) to one window, so the smoke runs stay fast.
The teacher is trained by ``s5geo.train`` itself for a few steps (no S4P checkpoint needed).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from s5geo.config import data_root

CROP = 256
SPLITS = {
    "train_labeled": ["Tile3_image_part_001", "Tile3_image_part_005"],
    "train_unlabeled": [
        "Tile1_image_part_002", "Tile1_image_part_003", "Tile3_image_part_002",
        "Tile3_image_part_003",
    ],
    "val": ["Tile2_image_part_001"],
    "test": ["Tile2_image_part_002"],
}  # fmt: skip


@pytest.fixture(scope="session")
def tiny_dubai(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Root of the tiny Dubai subset (skips when the real data is absent)."""
    source = data_root() / "dubai"
    if not (source / "splits.json").is_file():
        pytest.skip(f"real Dubai data not found under {source} (set S5GEO_DATA)")
    root = tmp_path_factory.mktemp("dubai_tiny")
    from PIL import Image

    for folder, suffix in (("images", ".png"), ("masks", ".png")):
        (root / folder).mkdir()
        for names in SPLITS.values():
            for name in names:
                original = source / folder / f"{name}{'.jpg' if folder == 'images' else suffix}"
                with Image.open(original) as im:
                    im.crop((0, 0, CROP, CROP)).save(root / folder / f"{name}{suffix}")
    full = json.loads((source / "splits.json").read_text())
    (root / "splits.json").write_text(json.dumps({**full, **SPLITS}))
    return root


@pytest.fixture(scope="session")
def tiny_overrides(tiny_dubai: Path) -> list[str]:
    """Overrides that shrink a CPU recipe to a smoke run on the tiny subset."""
    root = tiny_dubai
    return [
        f"data.root={root}", "data.crop_size=64", "train.eval_tile=256", "train.threads=2",
        "train.num_workers=0", "train.val_every=2", "train.checkpoint_every=1",
        "model.name=smp:FPN:tu-mobilenetv3_small_100",
        "model.decoder_channels=32",
    ]  # fmt: skip


@pytest.fixture(scope="session")
def tiny_teacher(tiny_dubai: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A teacher checkpoint trained for a few steps by ``s5geo.train`` on the tiny subset."""
    from s5geo.config import load_config
    from s5geo.train.runner import train

    out = tmp_path_factory.mktemp("teacher")
    recipe = Path(__file__).resolve().parents[2] / "configs" / "s4p" / "dubai_cpu_supervised.yaml"
    cfg = load_config(recipe, [
        f"data.root={tiny_dubai}", "data.crop_size=64", "model.img_size=64",
        "model.name=timm:mobilenetv3_small_100",
        "model.decoder_channels=16", "train.steps=3", "train.batch_size=2", "train.val_every=3",
        "train.checkpoint_every=3", "train.eval_tile=256", "train.num_workers=0",
        "train.threads=2", f"train.out_dir={out}", "train.run_name=teacher",
    ])  # fmt: skip
    run = train(cfg, recipe)
    return run / "checkpoints" / "last.ckpt"
