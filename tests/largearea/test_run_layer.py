"""One polygon layer for a whole run (``--out run.gpkg|run.parquet`` with ``--out-dir``): regions
crossing the border of two abutting scenes are single features, as if the scenes were one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
from largearea.la_helpers import NAIP_2015, write_part
from rasterio.warp import Resampling, calculate_default_transform, reproject
from rasterio.warp import transform as transform_xy
from rasterio.windows import Window

S5GEO = [sys.executable, "-m", "s5geo.cli.main"]
SEAM_ROW = 300  # the top half's last row + 1: not a strip border of the polygonizer


def s5geo(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*S5GEO, *map(str, args)], capture_output=True, text=True, timeout=300)


def read(path: Path) -> gpd.GeoDataFrame:
    if path.suffix == ".parquet":
        return gpd.read_parquet(path)
    return gpd.read_file(path, layer="landcover")


def shapes(frame: gpd.GeoDataFrame) -> list[tuple[int, bytes]]:
    """(class, normalized WKB) of every feature, sorted: equal lists are equal layers."""
    wkb = [g.wkb for g in shapely.normalize(frame.geometry.values)]
    return sorted(zip(frame["class_id"].tolist(), wkb, strict=True))


@pytest.fixture
def halves(real_data: Path, tmp_path: Path) -> tuple[Path, list[Path]]:
    """A real scene and its top and bottom halves, written as two abutting files."""
    scene = real_data / NAIP_2015
    with rasterio.open(scene) as ds:
        width, height = ds.width, ds.height
    top = write_part(scene, Window(0, 0, width, SEAM_ROW), tmp_path / "top.tif")
    bottom = write_part(
        scene, Window(0, SEAM_ROW, width, height - SEAM_ROW), tmp_path / "bottom.tif"
    )
    return scene, [top, bottom]


@pytest.mark.realdata
def test_abutting_scenes_make_one_layer_without_seams(
    halves: tuple[Path, list[Path]], brightness_model: Path, tmp_path: Path
) -> None:
    scene, parts = halves
    whole = tmp_path / "whole.gpkg"
    single = s5geo("predict", scene, "--out", whole, "--model", brightness_model, "-q")
    assert single.returncode == 0, single.stderr
    run_dir = tmp_path / "run"
    layer = tmp_path / "run.gpkg"
    run = s5geo("predict", *parts, "--out-dir", run_dir, "--out", layer, "--polygons",
                "--model", brightness_model)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert f"polygons: {layer}" in run.stdout
    # The same class raster as the whole scene's (each pixel's class is its own brightness's).
    with rasterio.open(tmp_path / "whole.tif") as ds:
        expected = ds.read(1)
        transform = ds.transform
    halves_classes = []
    for part in parts:
        with rasterio.open(run_dir / part.name) as ds:
            halves_classes.append(ds.read(1))
    assert (np.vstack(halves_classes) == expected).all()

    merged, reference = read(layer), read(whole)
    assert merged.crs == reference.crs
    assert len(merged) == len(reference) > 1000
    assert shapes(merged) == shapes(reference)
    assert np.allclose(np.sort(merged["area_m2"]), np.sort(reference["area_m2"]), rtol=1e-9)
    assert merged.is_valid.all()
    # No gaps or overlaps: the areas add up to the valid pixels, and every valid pixel's centre
    # (every 3rd row and column) lies in exactly one polygon, of its class.
    pixel_area = abs(transform.a * transform.e)
    assert merged["area_m2"].sum() == pytest.approx((expected != 255).sum() * pixel_area)
    rows, cols = np.nonzero(expected[::3, ::3] != 255)
    rows, cols = rows * 3, cols * 3
    xs, ys = rasterio.transform.xy(transform, rows, cols)
    hit, polygon = shapely.STRtree(merged.geometry.values).query(
        shapely.points(xs, ys), predicate="intersects"
    )
    assert (np.bincount(hit, minlength=len(rows)) == 1).all()
    assert (merged["class_id"].to_numpy()[polygon] == expected[rows[hit], cols[hit]]).all()
    # Regions crossing the seam are single features: fewer than the two scenes' own polygons.
    seam_y = transform.f + SEAM_ROW * transform.e
    bounds = merged.geometry.bounds
    crossing = (bounds["miny"] < seam_y) & (bounds["maxy"] > seam_y)
    own = sum(pyogrio.read_info(run_dir / f"{p.stem}.gpkg", layer="landcover")["features"]
              for p in parts)  # fmt: skip
    assert crossing.sum() > 50
    assert own - len(merged) >= crossing.sum()

    # GeoParquet: the same polygons, readable by geopandas (and by anything reading GeoParquet
    # 1.1: WKB with the CRS as PROJJSON). The class rasters are done: only the layer is written.
    parquet = tmp_path / "run.parquet"
    again = s5geo("predict", *parts, "--out-dir", run_dir, "--out", parquet, "--polygons",
                  "--model", brightness_model)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "resuming: 2 of 2 scenes already done" in again.stderr
    table = read(parquet)
    assert table.crs == reference.crs
    assert shapes(table) == shapes(reference)
    assert list(table.columns) == ["class_id", "class_name", "area_m2", "geometry"]


@pytest.mark.realdata
def test_scenes_in_two_crss_go_into_one_layer(
    halves: tuple[Path, list[Path]], brightness_model: Path, tmp_path: Path
) -> None:
    _, (top, bottom) = halves
    warped = tmp_path / "bottom_utm15.tif"
    with rasterio.open(bottom) as src:
        dst_crs = "EPSG:26915"
        transform, width, height = calculate_default_transform(
            src.crs, dst_crs, src.width, src.height, *src.bounds
        )
        profile = dict(src.profile, crs=dst_crs, transform=transform, width=width, height=height)
        with rasterio.open(warped, "w", **profile) as dst:
            for band in range(1, src.count + 1):
                reproject(rasterio.band(src, band), rasterio.band(dst, band),
                          resampling=Resampling.nearest)  # fmt: skip
    run_dir = tmp_path / "run"
    layer = tmp_path / "run.gpkg"
    args = ("predict", top, warped, "--out-dir", run_dir, "--out", layer, "--polygons",
            "--model", brightness_model, "--crs", "EPSG:4326", "-q")  # fmt: skip
    run = s5geo(*args)
    assert run.returncode == 0, run.stderr
    # The mosaic is in --crs too, each scene entering it through a warped VRT: at the centre of
    # each scene it shows that scene's class.
    with rasterio.open(run_dir / "mosaic.vrt") as mosaic:
        assert mosaic.crs.to_epsg() == 4326
        assert sorted(p.name for p in (run_dir / "mosaic.parts").iterdir()) == sorted(
            f"{p.stem}.vrt" for p in (top, warped)
        )
        for scene in (top, warped):
            with rasterio.open(run_dir / f"{scene.stem}.tif") as own_raster:
                row, col = own_raster.height // 2, own_raster.width // 2
                x, y = own_raster.xy(row, col)
                expected = own_raster.read(1, window=((row, row + 1), (col, col + 1)))[0, 0]
                lon, lat = transform_xy(own_raster.crs, mosaic.crs, [x], [y])
            assert next(mosaic.sample([(lon[0], lat[0])]))[0] == expected
    merged = read(layer)
    assert merged.crs.to_epsg() == 4326
    own = [read(run_dir / f"{p.stem}.gpkg") for p in (top, warped)]
    assert len(merged) == sum(len(o) for o in own)
    assert merged.is_valid.all()
    assert merged["area_m2"].sum() == pytest.approx(sum(o["area_m2"].sum() for o in own))
    # Each scene's polygons land where they lie: the layer spans both footprints.
    lon_lat = [o.to_crs(4326).total_bounds for o in own]
    assert np.allclose(merged.total_bounds[:2], np.min([b[:2] for b in lon_lat], axis=0))
    assert np.allclose(merged.total_bounds[2:], np.max([b[2:] for b in lon_lat], axis=0))
