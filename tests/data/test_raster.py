"""Georeferenced scenes through torchgeo: label rasters, vector labels, nodata-aware sampling."""

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin

from s5geo.config import DataConfig
from s5geo.data.module import build_source

CRS = "EPSG:32632"


def write_scene(root: Path) -> None:
    """A 64x64 RGB scene at 1 m whose left half is nodata; labels: class 1 right of x=48."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    transform = from_origin(500000, 4000064, 1, 1)
    image = np.full((3, 64, 64), 100, dtype=np.uint8)
    image[:, :, :32] = 0
    profile = {"driver": "GTiff", "width": 64, "height": 64, "crs": CRS, "transform": transform}
    with rasterio.open(root / "images" / "a.tif", "w", count=3, dtype="uint8", nodata=0,
                       **profile) as dst:  # fmt: skip
        dst.write(image)
    label = np.zeros((1, 64, 64), dtype=np.uint8)
    label[:, :, 48:] = 1
    with rasterio.open(root / "masks" / "a.tif", "w", count=1, dtype="uint8", **profile) as dst:
        dst.write(label)
    (root / "splits.json").write_text(json.dumps({"train": ["a"], "test": ["a"]}))


def config(root: Path, **kw: object) -> DataConfig:
    return DataConfig(kind="raster", root=str(root), class_map="dubai", crop_size=8, **kw)  # type: ignore[arg-type]


def test_random_windows_skip_nodata_and_carry_labels(tmp_path: Path) -> None:
    write_scene(tmp_path)
    windows = build_source(config(tmp_path, train_windows=20), "train", for_training=True)
    assert len(windows) == 20  # type: ignore[arg-type]
    for i in range(20):
        sample = windows[i]
        assert sample["valid"].any()  # no window is nodata only
        assert (sample["mask"][~sample["valid"]] == 255).all()
        assert set(sample["mask"][sample["valid"]].unique().tolist()) <= {0, 1}
        assert sample["image"].max() <= 1.0


def test_grid_windows_cover_the_scene(tmp_path: Path) -> None:
    write_scene(tmp_path)
    windows = build_source(config(tmp_path), "test")
    assert len(windows) == 64  # type: ignore[arg-type]  # 8x8 windows of 8 px
    total = sum(int((windows[i]["mask"] == 1).sum()) for i in range(64))
    assert total == 16 * 64


def test_vector_labels_rasterised_by_attribute(tmp_path: Path) -> None:
    gpd = pytest.importorskip("geopandas")
    from shapely.geometry import box

    write_scene(tmp_path)
    polys = gpd.GeoDataFrame(
        {"class_id": [2, 0]},
        geometry=[box(500040, 4000000, 500064, 4000064), box(500032, 4000000, 500036, 4000008)],
        crs=CRS,
    )
    polys.to_file(tmp_path / "labels.gpkg", driver="GPKG")
    labels = str(tmp_path / "labels.gpkg")  # relative paths are from the working folder
    windows = build_source(config(tmp_path, vector_labels=labels), "test")
    masks = torch.cat([windows[i]["mask"].flatten() for i in range(len(windows))])  # type: ignore[arg-type]
    assert set(masks.unique().tolist()) == {0, 2, 255}  # burned by attribute; gaps ignored
    assert int((masks == 2).sum()) == 24 * 64
