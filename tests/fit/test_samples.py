"""Labelled-pixel features: labels burnt in the scene's CRS, tiling, nodata, thinning, refusals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import rasterio
import shapely
from fit_helpers import (
    TOY_CLASSES,
    TOY_CRS,
    TOY_GEOMETRIES,
    TOY_ORIGIN,
    to_lonlat,
    toy_box,
    write_geoparquet,
    write_labels,
    write_toy_scene,
)
from helpers import write_scene
from rasterio.enums import ColorInterp

from s5geo.errors import UserError
from s5geo.fit.features import FeatureSpec, features_model
from s5geo.fit.labels import read_labels
from s5geo.fit.samples import PER_GEOMETRY, Samples, collect_samples
from s5geo.fit.scaling import scene_scaling

TILE = 192  # a 64-px core inside the 64-px context margin: the toy scene spans 2 x 2 tiles


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[rasterio.DatasetReader]:
    path = write_toy_scene(tmp_path_factory.mktemp("toy") / "toy.tif")
    with rasterio.open(path) as ds:
        yield ds


def _collect(
    ds: rasterio.DatasetReader, labels_path: Path, tile: int = TILE, **kw: object
) -> Samples:
    scaling = scene_scaling([ds])
    spec = FeatureSpec(bands=len(scaling.bands), scaling=scaling, sigmas=(1.0, 3.5), encoder=False)
    session = ort.InferenceSession(features_model(spec, tile).SerializeToString(),
                                   providers=["CPUExecutionProvider"])  # fmt: skip
    return collect_samples([ds], read_labels(labels_path, **kw), session, scaling, tile)  # type: ignore[arg-type]


def test_labels_in_lon_lat_are_burnt_in_the_scene_crs(
    toy: rasterio.DatasetReader, tmp_path: Path
) -> None:
    path = write_labels(tmp_path / "l.geojson", to_lonlat(TOY_GEOMETRIES), {"class": TOY_CLASSES},
                        crs="EPSG:4326")  # fmt: skip
    s = _collect(toy, path)
    # Every 16 x 16 square, whole: pixel centres inside it, once each although it spans tiles.
    assert np.bincount(s.groups).tolist() == [256] * 4
    assert np.bincount(s.y).tolist() == [512, 512]  # field = 0, water = 1 (alphabetical)
    assert (s.y == np.array([1, 1, 0, 0])[s.groups]).all()
    assert s.x.shape == (1024, 3 * 3 * 2) and s.x.dtype == np.float32
    assert s.outside == 0
    # The features of a pixel are those of its place in the scene, not of the tile it fell in.
    one = _collect(toy, path, tile=384)
    key = np.lexsort(s.x.T)
    assert np.allclose(s.x[key], one.x[np.lexsort(one.x.T)], atol=1e-5)
    # Water is dark, field bright: the smoothed first band (feature 0) tells them apart.
    assert s.x[s.y == 1, 0].max() < s.x[s.y == 0, 0].min()


def test_features_outside_the_scene_are_counted(
    toy: rasterio.DatasetReader, tmp_path: Path
) -> None:
    geoms = [*TOY_GEOMETRIES, toy_box(300, 300, 10, 10), toy_box(-40, 20, 50, 10)]
    path = write_labels(tmp_path / "l.gpkg", geoms, {"class": [*TOY_CLASSES, "field", "water"]})
    s = _collect(toy, path)
    assert s.outside == 1  # the second one lies partly inside: its inside pixels are used
    assert s.partly == 1
    assert np.bincount(s.groups).tolist() == [256] * 4 + [0, 100]


def test_nodata_pixels_are_dropped(tmp_path: Path) -> None:
    with rasterio.open(write_toy_scene(tmp_path / "nd.tif", nodata_rows=18)) as ds:
        s = _collect(ds, write_labels(tmp_path / "l.gpkg", TOY_GEOMETRIES, {"class": TOY_CLASSES}))
    assert np.bincount(s.groups).tolist() == [8 * 16, 256, 256, 256]  # rows 10-17 are nodata


def test_points_give_one_pixel_each(toy: rasterio.DatasetReader, tmp_path: Path) -> None:
    points = [shapely.Point(500_000.0 + c + 0.5, 5_000_000.0 - r - 0.5)
              for c, r in ((5, 5), (30, 100), (100, 40), (120, 120))]  # fmt: skip
    s = _collect(toy, write_geoparquet(tmp_path / "p.parquet", points, {"class": TOY_CLASSES}))
    assert sorted(s.groups.tolist()) == [0, 1, 2, 3]


def test_points_of_two_classes_in_one_pixel_are_refused(
    toy: rasterio.DatasetReader, tmp_path: Path
) -> None:
    points = [shapely.Point(500_000.0 + c, 5_000_000.0 - r)
              for c, r in ((5.2, 5.2), (5.8, 5.7), (100.5, 40.5), (120.5, 120.5))]  # fmt: skip
    path = write_labels(
        tmp_path / "p.gpkg", points, {"class": ["water", "field", "field", "water"]}
    )
    with pytest.raises(UserError, match=r"feature 1 \(water\) and feature 2 \(field\) fall in one"):
        _collect(toy, path)


def test_large_polygons_are_thinned(toy: rasterio.DatasetReader, tmp_path: Path) -> None:
    geoms = [toy_box(10, 10, 100, 100), toy_box(120, 0, 4, 4)]  # 10 000 px over 2 x 2 tiles
    s = _collect(toy, write_labels(tmp_path / "l.gpkg", geoms, {"class": ["water", "field"]}))
    assert np.bincount(s.groups).tolist() == [PER_GEOMETRY, 16]
    big = s.x[s.groups == 0]
    assert len(np.unique(big, axis=0)) == PER_GEOMETRY  # drawn without repeats
    # Drawn evenly over the polygon, whichever tile a pixel fell in: the dark (water) half of
    # the toy scene, columns 10-63, is 54 % of it (an even share per tile would give 50 %).
    dark = big[:, 0] < 0  # the smoothed first band, standardised: water below its mean
    assert dark.mean() == pytest.approx(0.54, abs=0.02)


def test_classes_are_capped(
    toy: rasterio.DatasetReader, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("s5geo.fit.samples.PER_CLASS", 300)
    s = _collect(toy, write_labels(tmp_path / "l.gpkg", TOY_GEOMETRIES, {"class": TOY_CLASSES}))
    assert np.bincount(s.y).tolist() == [300, 300]
    assert set(s.groups.tolist()) == {0, 1, 2, 3}  # from every polygon of the class


def test_no_feature_inside_the_scene(toy: rasterio.DatasetReader, tmp_path: Path) -> None:
    far = [shapely.affinity.translate(g, 10_000, 0) for g in TOY_GEOMETRIES]
    with pytest.raises(UserError, match="none of the 4 features lies inside the scenes"):
        _collect(toy, write_labels(tmp_path / "l.gpkg", far, {"class": TOY_CLASSES}))


def test_a_class_without_pixels_is_named(toy: rasterio.DatasetReader, tmp_path: Path) -> None:
    geoms = [*TOY_GEOMETRIES, toy_box(500, 0, 10, 10), toy_box(10.6, 60.6, 0.3, 0.3)]
    path = write_labels(tmp_path / "l.gpkg", geoms,
                        {"class": [*TOY_CLASSES, "road", "road"]})  # fmt: skip
    with pytest.raises(UserError, match="class 'road' has no labelled pixel inside the scenes"):
        _collect(toy, path)


def test_labels_only_on_nodata(tmp_path: Path) -> None:
    with rasterio.open(write_toy_scene(tmp_path / "nd.tif", nodata_rows=40)) as ds:
        geoms = [toy_box(0, 0, 10, 10), toy_box(80, 20, 10, 10)]
        path = write_labels(tmp_path / "l.gpkg", geoms, {"class": ["water", "field"]})
        with pytest.raises(UserError, match="no labelled pixel lies on valid scene pixels"):
            _collect(ds, path)


@pytest.mark.filterwarnings("error::rasterio.errors.NodataShadowWarning")
def test_rgba_scene_with_nodata_reads_quietly(tmp_path: Path) -> None:
    # GTiff stores four 8-bit bands as RGBA; with a nodata value as well, GDAL masks by nodata.
    with rasterio.open(write_toy_scene(tmp_path / "rgb.tif")) as ds:
        rgb = ds.read()
    alpha = np.full((1, *rgb.shape[1:]), 255, np.uint8)
    path = write_scene(tmp_path / "rgba.tif", np.concatenate([rgb, alpha]), crs=TOY_CRS,
                       origin=TOY_ORIGIN, nodata=0)  # fmt: skip
    labels = write_labels(tmp_path / "l.gpkg", TOY_GEOMETRIES, {"class": TOY_CLASSES})
    with rasterio.open(path) as ds:
        assert ds.colorinterp[3] == ColorInterp.alpha
        s = _collect(ds, labels)
    assert s.x.shape == (1024, 3 * 3 * 2)  # the alpha band is a mask, not a feature band
