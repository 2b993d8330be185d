"""Raster scenes (``data.kind: raster``) read exactly ``data.bands``, the bands export writes
into the model file (``s5geo.bands``): labelled training windows, unlabelled windows and
evaluation windows alike. A scene with fewer bands than listed is refused with a UserError.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import write_scene

from s5geo.config import DataConfig
from s5geo.data.module import build_source
from s5geo.errors import UserError

# rasterio.merge warns that a 4-band uint8 GeoTIFF's nodata shadows its (implied) alpha band;
# nodata is what marks invalid pixels here.
pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NodataShadowWarning")

SIZE = 32
CROP = 8


def band_scene(root: Path, bands: int = 4, name: str = "scene_a") -> np.ndarray:
    """A scene whose band b (1-based) holds 40*b + column % 7 (never 0, the nodata value), with a
    nodata strip in band 1..n at column 0 and a label raster (class = row % 5)."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    data = np.zeros((bands, SIZE, SIZE), np.uint8)
    for b in range(bands):
        data[b] = 40 * (b + 1) + (np.arange(SIZE) % 7)[None, :]
    data[:, :, 0] = 0
    write_scene(root / "images" / f"{name}.tif", data, nodata=0)
    label = (np.arange(SIZE) % 5).astype(np.uint8)[:, None].repeat(SIZE, 1)
    write_scene(root / "masks" / f"{name}.tif", label[None])
    (root / "splits.json").write_text(
        json.dumps({"train": [name], "unlabeled": [name], "val": [name]})
    )
    return data


def config(root: Path, bands: list[int]) -> DataConfig:
    return DataConfig(
        kind="raster", root=str(root), class_map="dubai", crop_size=CROP, bands=bands,
        mean=[0.5] * len(bands), std=[0.25] * len(bands), train_windows=6,
        split_labeled="train", split_unlabeled="unlabeled", split_val="val",
    )  # fmt: skip


def expected_values(data: np.ndarray, bands: list[int]) -> set[tuple[float, ...]]:
    """The per-band pixel vectors (0..1) of the listed bands."""
    picked = data[[b - 1 for b in bands]].reshape(len(bands), -1).T
    return {tuple(np.float32(v) / np.float32(255.0) for v in px) for px in picked}


@pytest.mark.parametrize("bands", [[1, 2, 3], [4, 1, 2], [2]])
def test_every_raster_source_reads_data_bands(tmp_path: Path, bands: list[int]) -> None:
    data = band_scene(tmp_path)
    cfg = config(tmp_path, bands)
    allowed = expected_values(data, bands)
    sources = {
        "labelled": build_source(cfg, "train", for_training=True),
        "unlabelled": build_source(cfg, "unlabeled", with_masks=False, for_training=True),
        "evaluation": build_source(cfg, "val"),
    }
    for what, source in sources.items():
        assert len(source) > 0, what  # type: ignore[arg-type]
        for i in range(len(source)):  # type: ignore[arg-type]
            sample = source[i]
            image = sample["image"]
            assert image.shape[0] == len(bands), what
            valid = sample["valid"]
            assert valid.any(), what
            pixels = image[:, valid].T.numpy()
            assert {tuple(np.float32(v) for v in px) for px in pixels} <= allowed, what
            assert (image[:, ~valid] == 0).all(), what  # nodata stays 0 in every band
            assert ("mask" in sample) == (what != "unlabelled")


def test_band_order_follows_the_config(tmp_path: Path) -> None:
    data = band_scene(tmp_path)
    sample = build_source(config(tmp_path, [4, 1, 2]), "val")[0]
    window = data[:, :CROP, :CROP].astype(np.float32) / np.float32(255.0)
    assert torch.equal(sample["image"], torch.from_numpy(window[[3, 0, 1]]))


def test_scene_with_fewer_bands_is_refused(tmp_path: Path) -> None:
    band_scene(tmp_path, bands=3)
    for split, training in (("train", True), ("val", False)):
        with pytest.raises(UserError, match=r"scene_a\.tif has 3 bands.*data\.bands.*\[1, 2, 4\]"):
            build_source(config(tmp_path, [1, 2, 4]), split, for_training=training)
    with pytest.raises(UserError, match="1-based"):
        build_source(config(tmp_path, [0, 1, 2]), "val")
