"""The ``aligned`` kind with vector labels: polygons burned on each scene's own pixel grid.

The real case is the SpaceNet-4 Atlanta sample of cpu_three.yaml, labelled by the 43 footprints of
configs/labels/ (the shared ``sample_fp_mask.tif`` draws another tile's footprints).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from helpers import ROOT, data_root, write_scene
from shapely.geometry import box

from s5geo.config import DataConfig
from s5geo.data.aligned import aligned_split
from s5geo.errors import UserError
from s5geo.models.mdf import load_mdf_config

CPU_THREE = ROOT / "configs" / "mdf" / "cpu_three.yaml"
FOOTPRINTS = ROOT / "configs" / "labels" / "spacenet_atlanta_sample_footprints.geojson"


@pytest.fixture
def spacenet(monkeypatch: pytest.MonkeyPatch) -> DataConfig:
    """The spacenet data of cpu_three.yaml, read from the project folder (its vector_labels path
    is relative to the working folder)."""
    if not (data_root() / "spacenet" / "sample_geotiff.tif").is_file():
        pytest.skip(f"SpaceNet sample not found under {data_root()} (set S5GEO_DATA)")
    monkeypatch.chdir(ROOT)
    return load_mdf_config(CPU_THREE).datasets["spacenet"].data


def test_spacenet_footprints_burned_on_the_scene_grid(spacenet: DataConfig) -> None:
    mask = aligned_split(spacenet, "rows=0:600")[0]["mask"].numpy()
    assert mask.shape == (600, 900) and set(np.unique(mask)) == {0, 1}
    assert 0.045 < (mask == 1).mean() < 0.06  # measured 5.15 % (val rows 1.62 %, test 2.84 %)
    # Pixel centres against the polygons, without rasterio: 0 wherever no polygon lies (0.5 m =
    # one pixel away from every footprint), 1 inside their interiors (a pixel off the outlines).
    with rasterio.open(data_root() / "spacenet" / "sample_geotiff.tif") as src:
        transform = src.transform
    cols, rows = np.meshgrid(np.arange(900) + 0.5, np.arange(600) + 0.5)
    x, y = transform * (cols, rows)
    union = shapely.union_all(gpd.read_file(FOOTPRINTS).geometry.values)
    assert (mask[~shapely.contains_xy(union.buffer(0.5), x, y)] == 0).all()
    assert (mask[shapely.contains_xy(union.buffer(-0.5), x, y)] == 1).all()


def test_spacenet_splits_share_the_scene(spacenet: DataConfig) -> None:
    full = aligned_split(spacenet, "rows=0:900")[0]["mask"].numpy()
    assert 0.035 < (full == 1).mean() < 0.05  # measured 4.2 %
    val = aligned_split(spacenet, "rows=600:750")[0]["mask"].numpy()
    np.testing.assert_array_equal(val, full[600:750])  # a row window burns the same pixels


def synthetic(root: Path) -> DataConfig:
    """A 32x32 scene at 1 m in EPSG:32632 and an aligned config over it (no masks needed)."""
    (root / "images").mkdir()
    write_scene(root / "images" / "a.tif", np.full((1, 32, 32), 100, np.uint8),
                crs="EPSG:32632", origin=(500_000.0, 4_000_032.0))  # fmt: skip
    return DataConfig(kind="aligned", root=str(root), class_map="swiss_trees", bands=[1])


def test_polygons_reprojected_and_classed_by_attribute(tmp_path: Path) -> None:
    cfg = synthetic(tmp_path)
    right_half = box(500_016, 4_000_000, 500_032, 4_000_032)
    polys = gpd.GeoDataFrame({"class_id": [1]}, geometry=[right_half], crs="EPSG:32632")
    polys.to_crs("EPSG:4326").to_file(tmp_path / "trees.gpkg")
    cfg = dataclasses.replace(cfg, vector_labels=str(tmp_path / "trees.gpkg"))
    mask = aligned_split(cfg, "rows=0:32")[0]["mask"].numpy()
    assert (mask[:, 17:] == 1).all() and (mask[:, :15] == 0).all()  # left of the polygon: 0


def test_vector_label_faults_are_user_errors(tmp_path: Path) -> None:
    cfg = synthetic(tmp_path)
    with pytest.raises(UserError, match="data.vector_labels: file not found"):
        aligned_split(dataclasses.replace(cfg, vector_labels=str(tmp_path / "absent.gpkg")), "")
    corner = box(500_000, 4_000_000, 500_008, 4_000_008)
    gpd.GeoDataFrame({"kind": ["tree"]}, geometry=[corner], crs="EPSG:32632").to_file(
        tmp_path / "plain.gpkg"
    )
    plain = dataclasses.replace(cfg, vector_labels=str(tmp_path / "plain.gpkg"))
    with pytest.raises(UserError, match="has no column 'class_id'"):
        aligned_split(plain, "", with_masks=False)  # checked for preflight too
    with pytest.raises(UserError, match=r"burns class ids \[2\]"):
        aligned_split(dataclasses.replace(plain, label_value=2), "")
    mask = aligned_split(dataclasses.replace(plain, label_value=1), "")[0]["mask"]
    assert int((mask == 1).sum()) == 64  # every polygon as label_value


def test_vector_labels_path_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``${S5GEO_DATA}`` is replaced; other relative paths stay relative to the working folder
    (as data.unlabeled_selection), not to data.root."""
    monkeypatch.setenv("S5GEO_DATA", str(tmp_path))
    cfg = DataConfig(root="${S5GEO_DATA}/x", vector_labels="${S5GEO_DATA}/labels/a.gpkg")
    assert cfg.resolved_vector_labels() == tmp_path / "labels" / "a.gpkg"
    relative = dataclasses.replace(cfg, vector_labels="configs/labels/a.geojson")
    assert relative.resolved_vector_labels() == Path("configs/labels/a.geojson")
    assert dataclasses.replace(cfg, vector_labels=None).resolved_vector_labels() is None
