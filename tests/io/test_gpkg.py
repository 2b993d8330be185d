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


class Streamed:
    """A StreamedGeometry over a shapely polygon, written a few bytes at a time."""

    def __init__(self, polygon: shapely.Polygon, fail: bool = False) -> None:
        self.polygon = polygon
        self.fail = fail

    @property
    def wkb_size(self) -> int:
        return len(shapely.to_wkb(self.polygon, byte_order=1))

    def write_wkb(self, write):  # type: ignore[no-untyped-def]
        wkb = shapely.to_wkb(self.polygon, byte_order=1)
        for start in range(0, len(wkb), 7):
            if self.fail and start > 20:
                raise RuntimeError("streaming failed")
            write(wkb[start : start + 7])
        return self.polygon.bounds


def mixed_batches(streamed_every: int) -> tuple[list[PolygonBatch], list[shapely.Polygon]]:
    """Batches of boxes where every ``streamed_every``-th polygon is a streamed one (a larger
    polygon with a hole), and all polygons in the order written."""
    out, everything = [], []
    for b in range(3):
        geoms = np.empty(50, dtype=object)
        for i in range(50):
            n = b * 50 + i
            if n % streamed_every == 0:
                polygon = shapely.Polygon(
                    [(n, -10), (n + 5, -10), (n + 5, -2), (n, -2)],
                    [[(n + 1, -9), (n + 2, -9), (n + 2, -8), (n + 1, -8)]],
                )
                geoms[i] = Streamed(polygon)
            else:
                polygon = shapely.box(n, 0.0, n + 1.0, 1.0)
                geoms[i] = polygon
            everything.append(polygon)
        ids = np.arange(b * 50, b * 50 + 50) % 4
        names = np.array([f"c{v}" for v in ids], dtype=object)
        areas = np.array([p.area for p in everything[-50:]])
        out.append(PolygonBatch(geoms, ids.astype(np.int32), names, areas))
    return out, everything


def test_streamed_geometries_fill_their_rows_in_order(tmp_path: Path) -> None:
    """Streamed features keep their place (fid), attributes, R-tree entry and the layer extent;
    the file stays a GeoPackage GDAL reads and appends to, its triggers as GDAL makes them."""
    plain = tmp_path / "plain.gpkg"
    path = tmp_path / "streamed.gpkg"
    gdal_layer(plain, next(batches(1, 5)))
    written, everything = mixed_batches(streamed_every=7)
    write_polygon_layer(path, "landcover", WKT, written)

    info = pyogrio.read_info(path, layer="landcover")
    assert info["features"] == 150
    assert info["fields"].tolist() == ["class_id", "class_name", "area_m2"]
    _, fids, wkb, (class_id, _, area) = pyogrio.raw.read(path, layer="landcover", return_fids=True)
    assert fids.tolist() == list(range(1, 151))
    geoms = shapely.from_wkb(wkb)
    assert shapely.equals_exact(geoms, np.array(everything, dtype=object), tolerance=0).all()
    assert shapely.is_valid(geoms).all()
    assert class_id.tolist() == (np.arange(150) % 4).tolist()
    assert np.array_equal(area, shapely.area(geoms))
    # The spatial index finds a streamed feature (fid 1: n = 0) and nothing else there.
    _, found, _, _ = pyogrio.raw.read(
        path, layer="landcover", bbox=(0.5, -9.5, 0.6, -9.4), return_fids=True
    )
    assert found.tolist() == [1]
    with sqlite3.connect(path) as con:
        extent = con.execute(
            "SELECT min_x, min_y, max_x, max_y FROM gpkg_contents WHERE table_name = 'landcover'"
        ).fetchone()
        assert extent == (0.0, -10.0, 152.0, 1.0)  # n = 147 is streamed: x up to 152
        assert con.execute("SELECT count(*) FROM rtree_landcover_geom").fetchone() == (150,)
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert con.execute("SELECT rtreecheck('rtree_landcover_geom')").fetchone() == ("ok",)
        columns = [row[1] for row in con.execute("PRAGMA table_info(landcover)")]
        assert columns == ["fid", "class_id", "class_name", "area_m2", "geom"]
        triggers = con.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'landcover'"
            " ORDER BY name"
        ).fetchall()
    with sqlite3.connect(plain) as con:
        assert (
            triggers
            == con.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"
                " AND tbl_name = 'landcover' ORDER BY name"
            ).fetchall()
        )
    # GDAL appends through the re-created triggers: the R-tree gets the new feature.
    extra = shapely.to_wkb(np.array([shapely.box(500, 500, 501, 501)]))
    pyogrio.raw.write(
        path,
        extra,
        [np.array([1], dtype=np.int32), np.array(["c1"], dtype=object), np.array([1.0])],
        ["class_id", "class_name", "area_m2"],
        layer="landcover",
        driver="GPKG",
        geometry_type="Polygon",
        crs=WKT,
        append=True,
    )
    _, found, _, _ = pyogrio.raw.read(
        path, layer="landcover", bbox=(500.2, 500.2, 500.3, 500.3), return_fids=True
    )
    assert found.tolist() == [151]


def test_a_layer_of_streamed_geometries_only(tmp_path: Path) -> None:
    polygon = shapely.Polygon([(0, 0), (4, 0), (4, 3), (0, 3)], [[(1, 1), (2, 1), (2, 2), (1, 2)]])
    geoms = np.empty(1, dtype=object)
    geoms[0] = Streamed(polygon)
    batch = PolygonBatch(geoms, np.array([3], dtype=np.int32), np.array(["x"], dtype=object),
                         np.array([polygon.area]))  # fmt: skip
    write_polygon_layer(tmp_path / "one.gpkg", "landcover", WKT, [batch])
    _, _, wkb, _ = pyogrio.raw.read(tmp_path / "one.gpkg", layer="landcover")
    assert shapely.equals_exact(shapely.from_wkb(wkb[0]), polygon, tolerance=0)
    info = pyogrio.read_info(tmp_path / "one.gpkg", layer="landcover", force_total_bounds=True)
    assert tuple(info["total_bounds"]) == polygon.bounds


def test_a_failure_while_streaming_propagates(tmp_path: Path) -> None:
    geoms = np.empty(2, dtype=object)
    geoms[0] = shapely.box(0, 0, 1, 1)
    geoms[1] = Streamed(shapely.box(2, 0, 5, 3), fail=True)
    batch = PolygonBatch(geoms, np.array([1, 2], dtype=np.int32),
                         np.array(["a", "b"], dtype=object), np.array([1.0, 9.0]))  # fmt: skip
    with pytest.raises(RuntimeError, match="streaming failed"):
        write_polygon_layer(tmp_path / "failed.gpkg", "landcover", WKT, [batch])


def gdal_layer(path: Path, batch: PolygonBatch, crs: str | None = WKT) -> None:
    """The same layer written by GDAL (pyogrio), as s5geo wrote it before writing it itself."""
    pyogrio.raw.write(
        path,
        shapely.to_wkb(batch.geometries),
        [batch.class_id, batch.class_name, batch.area_m2],
        ["class_id", "class_name", "area_m2"],
        layer="landcover",
        driver="GPKG",
        geometry_type="Polygon",
        crs=crs,
        dataset_options={"VERSION": "1.2"},
        layer_options={"SPATIAL_INDEX": "YES"},
    )


def table(con: sqlite3.Connection, sql: str) -> list[tuple[object, ...]]:
    return con.execute(sql).fetchall()


@pytest.mark.parametrize("crs", [WKT, CRS.from_epsg(4326).to_wkt(), CRS.from_epsg(3035).to_wkt()])
def test_the_geopackage_is_what_gdal_writes(tmp_path: Path, crs: str) -> None:
    """Same metadata rows, geometry blobs byte for byte, attributes, R-tree boxes and triggers."""
    (batch,) = batches(1, 300)
    polygons = batch.geometries.copy()
    polygons[::7] = shapely.buffer(polygons[::7], 0.3)  # some with many vertices
    polygons[5] = shapely.Polygon([(0, 0), (9, 0), (9, 9), (0, 9)], [[(1, 1), (2, 1), (2, 2)]])
    batch = PolygonBatch(polygons, batch.class_id, batch.class_name, batch.area_m2)
    ours, gdal = tmp_path / "ours.gpkg", tmp_path / "gdal.gpkg"
    write_polygon_layer(ours, "landcover", crs, [batch])
    gdal_layer(gdal, batch, crs)
    with sqlite3.connect(ours) as a, sqlite3.connect(gdal) as b:
        for sql in (
            "PRAGMA application_id",
            "PRAGMA user_version",
            "SELECT * FROM gpkg_spatial_ref_sys ORDER BY srs_id",
            "SELECT table_name, data_type, identifier, description, min_x, min_y, max_x, max_y,"
            " srs_id FROM gpkg_contents",
            "SELECT * FROM gpkg_geometry_columns",
            "SELECT * FROM gpkg_extensions",
            "SELECT * FROM gpkg_ogr_contents",
            "SELECT fid, class_id, class_name, area_m2, geom FROM landcover ORDER BY fid",
            "SELECT * FROM rtree_landcover_geom ORDER BY id",
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'landcover'"
            " ORDER BY name",
            "SELECT * FROM sqlite_sequence",
        ):
            assert table(a, sql) == table(b, sql), sql
        assert a.execute("SELECT rtreecheck('rtree_landcover_geom')").fetchone() == ("ok",)


@pytest.mark.parametrize("sizes", [[0], [1], [51], [52], [50, 1, 1], [3000, 7, 2500, 1]])
def test_the_rtree_is_bulk_loaded_valid_and_finds_what_a_scan_finds(
    tmp_path: Path, sizes: list[int]
) -> None:
    rng = np.random.default_rng(len(sizes) * 1000 + sum(sizes))
    written = []
    for size in sizes:
        x, y = rng.uniform(-1e5, 1e5, size), rng.uniform(-1e5, 1e5, size)
        boxes = shapely.box(x, y, x + rng.uniform(0.1, 500, size), y + rng.uniform(0.1, 500, size))
        ids = np.zeros(size, dtype=np.int32)
        written.append(PolygonBatch(boxes, ids, np.full(size, "a", dtype=object), np.ones(size)))
    path = tmp_path / "index.gpkg"
    write_polygon_layer(path, "landcover", WKT, written)
    geoms = np.concatenate([b.geometries for b in written])
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT rtreecheck('rtree_landcover_geom')").fetchone() == ("ok",)
        assert con.execute("SELECT count(*) FROM rtree_landcover_geom").fetchone() == (len(geoms),)
        # The boxes are what SQLite itself stores when inserting them (float32, rounded out).
        con.execute("CREATE VIRTUAL TABLE plain USING rtree(id, minx, maxx, miny, maxy)")
        bounds = shapely.bounds(geoms)
        rows = zip(range(1, len(geoms) + 1), *bounds[:, [0, 2, 1, 3]].T.tolist(), strict=True)
        con.executemany("INSERT INTO plain VALUES (?, ?, ?, ?, ?)", rows)
        assert table(con, "SELECT * FROM plain ORDER BY id") == table(
            con, "SELECT * FROM rtree_landcover_geom ORDER BY id"
        )
        for qx, qy in rng.uniform(-1e5, 1e5, (20, 2)):
            query = (qx, qx + 5000, qy, qy + 5000)
            found = con.execute(
                "SELECT id FROM rtree_landcover_geom WHERE maxx >= ? AND minx <= ?"
                " AND maxy >= ? AND miny <= ? ORDER BY id",
                query,
            ).fetchall()
            expected = con.execute(
                "SELECT id FROM plain WHERE maxx >= ? AND minx <= ? AND maxy >= ? AND miny <= ?"
                " ORDER BY id",
                query,
            ).fetchall()
            assert found == expected
