"""GeoPackage writing: a layer streamed from batches, indexed, and a QGIS default style."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import shapely
from rasterio.crs import CRS

from s5geo.io.gpkg import PolygonBatch, write_default_style, write_polygon_layer

WKT = CRS.from_epsg(32633).to_wkt()


def batches(count: int, size: int) -> Iterator[PolygonBatch]:
    for b in range(count):
        x = np.arange(size, dtype=np.float64) + b * size
        boxes = shapely.box(x, 0.0, x + 1.0, 1.0 + x % 3)
        names = np.array([f"clé {int(v) % 4}" for v in x], dtype=object)
        yield PolygonBatch(boxes, (x % 4).astype(np.int32), names, shapely.area(boxes))


def test_batches_stream_into_one_indexed_geopackage_layer(tmp_path: Path) -> None:
    path = tmp_path / "out.gpkg"
    write_polygon_layer(path, "landcover", WKT, batches(5, 1000))
    info = pyogrio.read_info(path, layer="landcover")
    assert info["features"] == 5000
    assert info["geometry_type"] == "Polygon"
    assert info["fields"].tolist() == ["class_id", "class_name", "area_m2"]
    assert CRS.from_user_input(info["crs"]) == CRS.from_epsg(32633)
    _, _, wkb, (class_id, class_name, area) = pyogrio.raw.read(path, layer="landcover")
    expected = list(batches(5, 1000))
    geoms = np.concatenate([b.geometries for b in expected])
    assert shapely.equals(shapely.from_wkb(wkb), geoms).all()
    assert class_id.tolist() == np.concatenate([b.class_id for b in expected]).tolist()
    assert class_name.tolist() == np.concatenate([b.class_name for b in expected]).tolist()
    assert np.array_equal(area, shapely.area(geoms))
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA user_version").fetchone() == (10200,)  # GeoPackage 1.2
        assert con.execute("SELECT count(*) FROM rtree_landcover_geom").fetchone() == (5000,)


def test_an_empty_stream_makes_an_empty_layer(tmp_path: Path) -> None:
    write_polygon_layer(tmp_path / "empty.gpkg", "landcover", WKT, iter(()))
    assert pyogrio.read_info(tmp_path / "empty.gpkg", layer="landcover")["features"] == 0


def test_an_error_while_producing_batches_propagates_unchanged(tmp_path: Path) -> None:
    class Stop(Exception):
        pass

    def failing() -> Iterator[PolygonBatch]:
        yield from batches(2, 10)
        raise Stop("user cancelled")

    with pytest.raises(Stop, match="user cancelled"):
        write_polygon_layer(tmp_path / "partial.gpkg", "landcover", WKT, failing())


def test_refuses_to_replace_a_file(tmp_path: Path) -> None:
    (tmp_path / "taken.gpkg").write_bytes(b"")
    with pytest.raises(FileExistsError):
        write_polygon_layer(tmp_path / "taken.gpkg", "landcover", WKT, batches(1, 1))


def test_default_style_is_stored_as_qgis_stores_it(tmp_path: Path) -> None:
    path = tmp_path / "styled.gpkg"
    write_polygon_layer(path, "cover", WKT, batches(1, 10))
    write_default_style(path, "cover", "<qgis>first</qgis>")
    write_default_style(path, "cover", "<qgis>second</qgis>", description="mine")
    assert pyogrio.list_layers(path)[:, 0].tolist() == ["cover", "layer_styles"]
    info = pyogrio.read_info(path, layer="layer_styles")
    assert info["fields"].tolist() == [
        "f_table_catalog",
        "f_table_schema",
        "f_table_name",
        "f_geometry_column",
        "styleName",
        "styleQML",
        "styleSLD",
        "useAsDefault",
        "description",
        "owner",
        "ui",
        "update_time",
    ]
    assert info["fid_column"] == "id"
    with sqlite3.connect(path) as con:
        rows = con.execute(
            "SELECT f_table_catalog, f_table_schema, f_table_name, f_geometry_column, styleName,"
            " styleQML, useAsDefault, description, update_time IS NOT NULL FROM layer_styles"
        ).fetchall()
        contents = con.execute(
            "SELECT data_type FROM gpkg_contents WHERE table_name = 'layer_styles'"
        ).fetchall()
    assert rows == [("", "", "cover", "geom", "cover", "<qgis>second</qgis>", 1, "mine", 1)]
    assert contents == [("attributes",)]
