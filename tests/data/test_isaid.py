"""configs/data/isaid.yaml reads a tiny synthetic copy of iSAID's distributed layout.

The copy uses iSAID's folder and file names (``train/images/P0000.png``,
``train/Semantic_masks/images/P0000_instance_color_RGB.png``, instance masks beside them, a test
split without labels) and its colour-coded labels (the iSAID devkit / mmsegmentation palette); it is
loaded with the real config file plus ``--set data.root=...``, through the data module the trainer
uses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from s5geo.config import Config, load_config
from s5geo.data.module import SegmentationDataModule, build_source, split_files
from s5geo.datasets.classes import get_class_map
from s5geo.datasets.splits import split_pairs
from s5geo.errors import UserError

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "data" / "isaid.yaml"
CROP = 16

# (R, G, B) of a few iSAID classes as the devkit writes them (background is black).
SHIP, PLANE, HARBOR, SMALL_VEHICLE = (0, 0, 63), (0, 127, 255), (0, 100, 155), (0, 0, 127)
OFF_PALETTE = (10, 200, 30)


def isaid_label(h: int, w: int) -> np.ndarray:
    """Colour-coded label [H, W, 3]: background, then patches of ship (rows 0-3), plane (4-5),
    harbor (6-7), small vehicle (8-9) and an off-palette colour (row 10)."""
    label = np.zeros((h, w, 3), np.uint8)
    label[0:4, 0:4] = SHIP
    label[4:6, 0:4] = PLANE
    label[6:8, 0:4] = HARBOR
    label[8:10, 0:4] = SMALL_VEHICLE
    label[10, :] = OFF_PALETTE
    return label


def write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def isaid_layout(root: Path) -> None:
    """train (2 images, one extracted a folder deeper), val (2, one grey-scale), test (no
    labels); instance-id masks beside the semantic ones, as distributed."""
    rng = np.random.default_rng(0)
    files = {
        "train": ["images/P0000.png", "images/images/P0001.png"],
        "val": ["images/P0003.png", "images/P0004.png"],
        "test": ["images/P0006.png"],
    }
    for split, names in files.items():
        for name in names:
            stem = Path(name).stem
            h, w = 24, 40
            image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            write_png(root / split / name, image[..., 0] if stem == "P0004" else image)
            if split == "test":  # iSAID withholds the test labels
                continue
            masks = root / split / "Semantic_masks" / "images"
            write_png(masks / f"{stem}_instance_color_RGB.png", isaid_label(h, w))
            instances = root / split / "Instance_masks" / "images"
            write_png(instances / f"{stem}_instance_id_RGB.png", np.full((h, w, 3), 9, np.uint8))


def isaid(root: Path, *overrides: str) -> Config:
    return load_config(CONFIG, [f"data.root={root}", f"data.crop_size={CROP}", *overrides])


def test_isaid_official_layout(tmp_path: Path) -> None:
    isaid_layout(tmp_path)
    cfg = isaid(tmp_path)
    d = cfg.data
    assert d.kind == "image_folder"  # PNGs without georeferencing, read on their pixel grid
    assert cfg.model.num_classes == get_class_map(d.class_map).num_classes == 16
    sizes = {
        "train": len(build_source(d, d.split_labeled)),  # type: ignore[arg-type]
        "unlabeled": len(build_source(d, d.split_unlabeled, with_masks=False)),  # type: ignore[arg-type]
        "val": len(build_source(d, d.split_val)),  # type: ignore[arg-type]
        "test": len(build_source(d, "test")),  # type: ignore[arg-type]  # evaluate --split test
    }
    assert sizes == {"train": 2, "unlabeled": 2, "val": 2, "test": 2}  # test labels withheld
    pairs = split_pairs(d, d.split_labeled)
    assert [(i.relative_to(tmp_path).as_posix(), m.name) for i, m in pairs] == [
        ("train/images/P0000.png", "P0000_instance_color_RGB.png"),
        ("train/images/images/P0001.png", "P0001_instance_color_RGB.png"),
    ]
    source = build_source(d, d.split_val)
    assert source.names == ["val_P0003", "val_P0004"]  # type: ignore[attr-defined]
    mask = source[0]["mask"]
    assert (mask[0:4, 0:4] == 1).all() and (mask[4:6, 0:4] == 14).all()  # ship, plane
    assert (mask[6:8, 0:4] == 15).all() and (mask[8:10, 0:4] == 9).all()  # harbor, small vehicle
    assert (mask[10] == 255).all()  # off-palette colours are ignored
    assert (mask[11:] == 0).all() and (mask[0:4, 4:] == 0).all()  # background is a class
    grey = source[1]["image"]  # a grey-scale PNG is read as RGB, as Pillow converts it
    assert grey.shape == (3, 24, 40) and torch.equal(grey[0], grey[2])

    assert [p.name for p in split_files(d, "dir=test")] == ["P0006.png"]
    with pytest.raises(UserError, match="withholds these labels"):
        build_source(d, "dir=test")

    module = SegmentationDataModule(d, d.split_labeled, True, 2, 2, 0)
    batch = next(iter(module.train_dataloader()))
    assert batch["image"].shape == (2, 3, CROP, CROP) == batch["u_image"].shape
    assert set(batch["mask"].unique().tolist()) <= set(range(16)) | {255}
