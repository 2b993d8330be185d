"""polygonize_raster on class rasters written by the tests: areas, seams, validity, CRS, options."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pyogrio
import pyproj
import pytest
import rasterio
import rasterio.features
import shapely
from affine import Affine
from rasterio.crs import CRS

import s5geo.vector.area as area_module
import s5geo.vector.merge as merge_module
import s5geo.vector.polygonize as polygonize_module
import s5geo.vector.spill as spill_module
from s5geo.errors import Cancelled, ParameterError, UserError
from s5geo.vector import polygonize_raster
from s5geo.vector.merge import Retained, SeamMerger

NAMES = {0: "water", 1: "built", 2: "bare", 3: "grass", 4: "trees"}
COLORS = {0: "#1f78b4", 1: "#e31a1c", 2: "#fdbf6f", 3: "#b2df8a", 4: "#33a02c"}
UTM = CRS.from_epsg(32633)
UTM_TRANSFORM = Affine(2.0, 0.0, 500000.0, 0.0, -2.0, 5000000.0)  # 2 m pixels: 4 m² each


def write_classes(
    path: Path, classes: np.ndarray, crs: CRS = UTM, transform: Affine = UTM_TRANSFORM
) -> Path:
    profile = dict(
        driver="GTiff",
        width=classes.shape[1],
        height=classes.shape[0],
        count=1,
        dtype="uint8",
        crs=crs,
        transform=transform,
        nodata=255,
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(classes, 1)
    return path


def read_layer(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Geometries, class_id, class_name and area_m2 of the landcover layer."""
    meta, _, geometry, fields = pyogrio.raw.read(path, layer="landcover")
    by_name = dict(zip(meta["fields"], fields, strict=True))
    geoms = shapely.from_wkb(geometry)
    return geoms, by_name["class_id"], by_name["class_name"], by_name["area_m2"]


def polygonize(raster: Path, out: Path, **kwargs: object):  # type: ignore[no-untyped-def]
    return polygonize_raster(raster, out, class_names=NAMES, class_colors=COLORS, **kwargs)


def fragmented(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Land-cover-like classes: blocks of many sizes, speckle, and some nodata."""
    coarse = rng.integers(0, 5, size=(height // 16 + 1, width // 16 + 1))
    classes = np.kron(coarse, np.ones((16, 16), dtype=np.int64))[:height, :width]
    medium = rng.integers(0, 5, size=(height // 3 + 1, width // 3 + 1))
    patches = np.kron(medium, np.ones((3, 3), dtype=np.int64))[:height, :width]
    classes = np.where(rng.random((height, width)) < 0.3, patches, classes)
    classes = np.where(
        rng.random((height, width)) < 0.05, rng.integers(0, 5, classes.shape), classes
    )
    classes[40:70, 10:50] = 255
    classes[rng.random((height, width)) < 0.01] = 255
    return classes.astype(np.uint8)


def canonical(geoms: np.ndarray, classes: np.ndarray) -> list[tuple[int, bytes]]:
    """A polygon set in comparable form: collinear vertices dropped, rings normalized."""
    normal = shapely.normalize(shapely.simplify(geoms, 0.0))
    return sorted(zip(classes.tolist(), shapely.to_wkb(normal).tolist(), strict=True))


def test_strips_give_the_same_polygons_with_exact_class_areas(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    classes = fragmented(rng, 203, 181)
    raster = write_classes(tmp_path / "classes.tif", classes)
    strips = polygonize(raster, tmp_path / "strips.gpkg", block_rows=7)
    whole = polygonize(raster, tmp_path / "whole.gpkg", block_rows=1000)

    geoms, ids, names, areas = read_layer(tmp_path / "strips.gpkg")
    whole_geoms, whole_ids, _, _ = read_layer(tmp_path / "whole.gpkg")
    assert strips.n_polygons == whole.n_polygons == len(geoms) == len(whole_geoms)
    assert canonical(geoms, ids) == canonical(whole_geoms, whole_ids)
    assert shapely.is_valid(geoms).all()
    assert shapely.get_type_id(geoms).tolist() == [shapely.GeometryType.POLYGON] * len(geoms)
    for class_id in range(5):
        expected = float((classes == class_id).sum() * 4.0)
        mine = ids == class_id
        assert areas[mine].sum() == pytest.approx(expected, rel=1e-12)
        assert shapely.union_all(geoms[mine]).area == pytest.approx(expected, rel=1e-12)
        assert strips.area_m2_by_class[class_id] == pytest.approx(expected, rel=1e-12)
        assert set(names[mine]) == {NAMES[class_id]}
    assert np.allclose(areas, shapely.area(geoms))
    # No overlaps: the pieces add up to their union.
    assert shapely.union_all(geoms).area == pytest.approx(areas.sum(), rel=1e-12)
    assert strips.total_area_m2 == pytest.approx((classes != 255).sum() * 4.0, rel=1e-12)
    crs = pyogrio.read_info(tmp_path / "strips.gpkg", layer="landcover")["crs"]
    assert CRS.from_user_input(crs) == UTM
    assert shapely.bounds(shapely.union_all(geoms)).tolist() == pytest.approx(
        [500000.0, 5000000.0 - 2 * 203, 500000.0 + 2 * 181, 5000000.0]
    )


def test_a_region_crossing_many_strip_borders_is_one_polygon(tmp_path: Path) -> None:
    classes = np.full((60, 40), 2, dtype=np.uint8)  # background spanning the whole raster
    for row in range(2, 58, 8):  # a serpentine of class 1 zigzagging down across every strip
        classes[row : row + 2, 2:38] = 1
        side = slice(36, 38) if (row // 8) % 2 == 0 else slice(2, 4)
        classes[row : row + 10, side] = 1
    classes[58:, :] = 2
    classes[20:23, 20:23] = 0  # a lake inside a background hole of the serpentine's bends
    raster = write_classes(tmp_path / "snake.tif", classes)
    result = polygonize(raster, tmp_path / "snake.gpkg", block_rows=3)
    geoms, ids, _, areas = read_layer(tmp_path / "snake.gpkg")
    assert (ids == 1).sum() == 1
    assert areas[ids == 1][0] == pytest.approx((classes == 1).sum() * 4.0)
    assert (ids == 0).sum() == 1
    assert result.n_polygons == len(geoms)
    assert shapely.is_valid(geoms).all()
    background = geoms[ids == 2]
    assert shapely.union_all(background).area == pytest.approx((classes == 2).sum() * 4.0)


def test_a_region_covering_the_whole_raster(tmp_path: Path) -> None:
    raster = write_classes(tmp_path / "one.tif", np.full((50, 30), 4, dtype=np.uint8))
    result = polygonize(raster, tmp_path / "one.gpkg", block_rows=4)
    geoms, ids, _, _ = read_layer(tmp_path / "one.gpkg")
    assert result.n_polygons == 1
    assert ids.tolist() == [4]
    assert shapely.equals(geoms[0], shapely.box(500000.0, 5000000.0 - 100, 500060.0, 5000000.0))


def test_geographic_crs_gives_geodesic_areas(tmp_path: Path, rng: np.random.Generator) -> None:
    classes = fragmented(rng, 90, 70)
    transform = Affine(0.0005, 0.0, 10.0, 0.0, -0.0005, 60.0)  # about 28 m x 55 m at 60 N
    raster = write_classes(tmp_path / "wgs84.tif", classes, CRS.from_epsg(4326), transform)
    result = polygonize(raster, tmp_path / "wgs84.gpkg", block_rows=16)
    geoms, _, _, areas = read_layer(tmp_path / "wgs84.gpkg")
    geod = pyproj.Geod(ellps="WGS84")
    expected = [abs(geod.geometry_area_perimeter(shapely.orient_polygons(g))[0]) for g in geoms]
    assert areas == pytest.approx(expected, rel=1e-9)

    # Independent of the polygons: add up the geodesic area of every valid pixel.
    def pixel_area(row: int) -> float:
        corners = [transform * (dx, row + dy) for dx, dy in ((0, 0), (1, 0), (1, 1), (0, 1))]
        lons, lats = zip(*corners, strict=True)
        return abs(geod.polygon_area_perimeter(lons, lats)[0])

    row_area = np.array([pixel_area(row) for row in range(classes.shape[0])])
    rows = np.nonzero(classes != 255)[0]
    assert result.total_area_m2 == pytest.approx(row_area[rows].sum(), rel=1e-6)
    assert result.total_area_m2 == pytest.approx(areas.sum())
    assert 1500 < result.total_area_m2 / len(rows) < 1600  # a pixel: about 28 m x 55 m
    assert shapely.is_valid(geoms).all()


def test_projected_crs_in_feet_reports_square_metres(tmp_path: Path) -> None:
    classes = np.zeros((10, 10), dtype=np.uint8)
    transform = Affine(10.0, 0.0, 1_000_000.0, 0.0, -10.0, 200_000.0)  # 10 US survey feet
    raster = write_classes(tmp_path / "feet.tif", classes, CRS.from_epsg(2263), transform)
    result = polygonize(raster, tmp_path / "feet.gpkg")
    assert result.total_area_m2 == pytest.approx(100 * (10 * 1200 / 3937) ** 2, rel=1e-9)


def islands(rng: np.random.Generator, anywhere: bool) -> np.ndarray:
    """Three large classes and nodata, with 60 islands of 1 to 4 pixels of class 1.

    ``anywhere``: islands may straddle class borders (two neighbours); otherwise each lies inside
    one class (one neighbour). Either way many straddle strip borders.
    """
    classes = np.full((120, 90), 3, dtype=np.uint8)
    classes[:, 45:] = 4
    classes[60:, :] = 0
    classes[100:110, 5:15] = 255
    for _ in range(60):
        while True:
            r, c = int(rng.integers(1, 117)), int(rng.integers(1, 87))
            h, w = int(rng.integers(1, 3)), int(rng.integers(1, 3))
            around = classes[r - 1 : r + h + 1, c - 1 : c + w + 1]
            if anywhere or len(np.unique(around)) == 1:
                break
        classes[r : r + h, c : c + w] = 1
    return classes


@pytest.mark.parametrize("anywhere", [False, True], ids=["inside-classes", "anywhere"])
def test_min_area_removes_small_regions_and_still_tiles(
    tmp_path: Path, rng: np.random.Generator, anywhere: bool
) -> None:
    classes = islands(rng, anywhere)
    raster = write_classes(tmp_path / "islands.tif", classes)
    min_area = 5 * 4.0  # five pixels
    result = polygonize(raster, tmp_path / "sieved.gpkg", min_area_m2=min_area, block_rows=10)
    geoms, ids, _, areas = read_layer(tmp_path / "sieved.gpkg")
    assert 1 not in ids  # every island merged away
    assert areas.min() >= min_area
    assert shapely.is_valid(geoms).all()
    valid_area = (classes != 255).sum() * 4.0
    assert result.total_area_m2 == pytest.approx(valid_area, rel=1e-12)
    assert shapely.union_all(geoms).area == pytest.approx(valid_area, rel=1e-12)
    assert areas.sum() == pytest.approx(valid_area, rel=1e-12)
    if not anywhere:  # one neighbour each: the strips decide as one whole-raster sieve does
        sieved = rasterio.features.sieve(classes, 5, mask=classes != 255)
        for class_id in (0, 3, 4):
            expected = (sieved == class_id).sum() * 4.0
            assert result.area_m2_by_class[class_id] == pytest.approx(expected)


def test_simplify_keeps_shared_edges(tmp_path: Path, rng: np.random.Generator) -> None:
    classes = fragmented(rng, 160, 150)
    raster = write_classes(tmp_path / "classes.tif", classes)
    plain = polygonize(raster, tmp_path / "plain.gpkg", block_rows=32)
    simple = polygonize(raster, tmp_path / "simple.gpkg", block_rows=32, simplify_m=5.0)
    geoms, _, _, areas = read_layer(tmp_path / "simple.gpkg")
    plain_geoms, _, _, _ = read_layer(tmp_path / "plain.gpkg")
    assert simple.n_polygons == plain.n_polygons
    assert shapely.is_valid(geoms).all()
    assert (
        shapely.get_num_coordinates(geoms).sum()
        < 0.8 * shapely.get_num_coordinates(plain_geoms).sum()
    )
    valid_area = (classes != 255).sum() * 4.0
    union = shapely.union_all(geoms)
    assert union.area == pytest.approx(valid_area, rel=1e-9)  # no gaps, same outer boundary
    assert areas.sum() == pytest.approx(union.area, rel=1e-9)  # no overlaps
    assert np.allclose(areas, shapely.area(geoms))


def test_layer_carries_the_qgis_default_style(tmp_path: Path, rng: np.random.Generator) -> None:
    raster = write_classes(tmp_path / "classes.tif", fragmented(rng, 40, 40))
    polygonize(raster, tmp_path / "styled.gpkg", layer="cover")
    assert pyogrio.list_layers(tmp_path / "styled.gpkg")[:, 0].tolist() == ["cover", "layer_styles"]
    with sqlite3.connect(tmp_path / "styled.gpkg") as con:
        rows = con.execute(
            "SELECT f_table_name, f_geometry_column, styleQML FROM layer_styles WHERE useAsDefault"
        ).fetchall()
        (version,) = con.execute("PRAGMA user_version").fetchone()
        (indexed,) = con.execute("SELECT count(*) FROM rtree_cover_geom").fetchone()
        (features,) = con.execute("SELECT count(*) FROM cover").fetchone()
    assert version == 10200  # GeoPackage 1.2
    assert indexed == features > 0
    ((table, column, qml),) = rows
    assert (table, column) == ("cover", "geom")
    labels = {c.get("value"): c.get("label") for c in ET.fromstring(qml).iter("category")}
    assert labels == {str(k): v for k, v in NAMES.items()}


def test_unnamed_classes_get_a_name_and_a_style(tmp_path: Path) -> None:
    classes = np.array([[0, 7], [7, 7]], dtype=np.uint8)
    raster = write_classes(tmp_path / "seven.tif", classes)
    polygonize_raster(raster, tmp_path / "seven.gpkg", class_names={0: "water"}, class_colors={})
    _, ids, names, _ = read_layer(tmp_path / "seven.gpkg")
    assert dict(zip(ids.tolist(), names.tolist(), strict=True)) == {0: "water", 7: "class 7"}


def test_all_nodata_gives_an_empty_styled_layer(tmp_path: Path) -> None:
    raster = write_classes(tmp_path / "empty.tif", np.full((20, 20), 255, dtype=np.uint8))
    result = polygonize(raster, tmp_path / "empty.gpkg", block_rows=8)
    assert (result.n_polygons, result.total_area_m2, result.area_m2_by_class) == (0, 0.0, {})
    assert pyogrio.read_info(tmp_path / "empty.gpkg", layer="landcover")["features"] == 0


def test_progress_is_reported_per_strip_and_cancellation_propagates(tmp_path: Path) -> None:
    raster = write_classes(tmp_path / "classes.tif", np.zeros((25, 10), dtype=np.uint8))
    seen: list[tuple[int, int]] = []
    polygonize(
        raster, tmp_path / "a.gpkg", block_rows=10, progress=lambda d, t: seen.append((d, t))
    )
    assert seen == [(10, 25), (20, 25), (25, 25)]

    def cancel(done: int, total: int) -> None:
        raise Cancelled

    with pytest.raises(Cancelled):
        polygonize(raster, tmp_path / "b.gpkg", block_rows=10, progress=cancel)


def test_refuses_what_the_user_must_fix(tmp_path: Path) -> None:
    raster = write_classes(tmp_path / "classes.tif", np.zeros((4, 4), dtype=np.uint8))
    (tmp_path / "taken.gpkg").write_bytes(b"")
    with pytest.raises(UserError, match="exists"):
        polygonize(raster, tmp_path / "taken.gpkg")
    for bad, message in (
        ({"block_rows": 0}, "block_rows must be at least 1, not 0"),
        ({"min_area_m2": -1.0}, "min_area_m2 must be at least 0, not -1"),
        ({"simplify_m": float("nan")}, "simplify_m must be at least 0, not nan"),
    ):
        with pytest.raises(ParameterError, match=message):
            polygonize(raster, tmp_path / "free.gpkg", **bad)
    rgb = tmp_path / "rgb.tif"
    with rasterio.open(
        rgb,
        "w",
        driver="GTiff",
        width=4,
        height=4,
        count=3,
        dtype="uint8",
        crs=UTM,
        transform=UTM_TRANSFORM,
    ) as dst:
        dst.write(np.zeros((3, 4, 4), dtype=np.uint8))
    with pytest.raises(UserError, match="not a class raster"):
        polygonize(rgb, tmp_path / "rgb.gpkg")
    with pytest.raises(UserError, match="cannot open"):
        polygonize(tmp_path / "missing.tif", tmp_path / "missing.gpkg")


@pytest.mark.realdata
def test_real_naip_land_cover(real_data: Path, tmp_path: Path) -> None:
    """A fragmented land cover from the real NAIP scene (NDVI classes): seams, areas, options."""
    with rasterio.open(real_data / "naip" / "m_4709963_se_14_1_20200831.tif") as src:
        red, nir = src.read(1).astype(np.float64), src.read(4).astype(np.float64)
        valid = src.read_masks(1) > 0
        crs, transform = src.crs, src.transform
    ndvi = (nir - red) / np.maximum(nir + red, 1.0)
    classes = np.digitize(ndvi, [-0.1, 0.15, 0.35]).astype(np.uint8)
    classes[~valid] = 255
    raster = write_classes(tmp_path / "naip_classes.tif", classes, crs, transform)
    pixel_area = abs(transform.determinant)

    strips = polygonize(raster, tmp_path / "strips.gpkg", block_rows=64)
    whole = polygonize(raster, tmp_path / "whole.gpkg", block_rows=100_000)
    geoms, ids, _, areas = read_layer(tmp_path / "strips.gpkg")
    whole_geoms, whole_ids, _, _ = read_layer(tmp_path / "whole.gpkg")
    assert strips.n_polygons == whole.n_polygons > 5000
    assert canonical(geoms, ids) == canonical(whole_geoms, whole_ids)
    assert shapely.is_valid(geoms).all()
    for class_id in range(4):
        expected = (classes == class_id).sum() * pixel_area
        assert areas[ids == class_id].sum() == pytest.approx(expected, rel=1e-12)

    cleaned = polygonize(
        raster, tmp_path / "cleaned.gpkg", block_rows=64, min_area_m2=500.0, simplify_m=10.0
    )
    geoms, _, _, areas = read_layer(tmp_path / "cleaned.gpkg")
    assert cleaned.n_polygons < strips.n_polygons / 3
    assert shapely.is_valid(geoms).all()
    union = shapely.union_all(geoms)
    assert union.area == pytest.approx(valid.sum() * pixel_area, rel=1e-9)
    assert areas.sum() == pytest.approx(union.area, rel=1e-9)


class _RecordingMerger(SeamMerger):
    """The pipeline's merger, noting what it keeps between strips."""

    seen: ClassVar[list[Retained]] = []

    def end_strip(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        yield from super().end_strip()
        _RecordingMerger.seen.append(self.retained())


def serpentine(height: int, width: int, wiggle: int) -> np.ndarray:
    """Class 1: one region zigzagging down the whole raster in bars 2 rows high, joined at
    alternating ends; its edges wiggle every ``wiggle`` columns (more vertices, same topology).
    Class 2 around it, one pixel of nodata per bar."""
    classes = np.full((height, width), 2, dtype=np.uint8)
    for n, row in enumerate(range(1, height - 3, 6)):
        classes[row : row + 2, 1 : width - 1] = 1
        classes[row + 2, 1 : width - 1 : 2 * wiggle] = 1  # teeth below the bar
        end = slice(width - 3, width - 1) if n % 2 == 0 else slice(1, 3)
        classes[row : row + 8, end] = 1
        classes[row - 1, width // 2] = 255
    classes[height - 3 :, :] = 2
    return classes


@pytest.mark.parametrize("wiggle", [40, 2], ids=["plain", "many-vertices"])
def test_open_region_state_is_bounded_by_the_border(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wiggle: int
) -> None:
    """A region crossing every strip border comes out as one polygon with its exact area, while
    the merger keeps between strips no vertices at all: only the border rows and 16 bytes of
    records per spilled piece, the same however many vertices the region has."""
    monkeypatch.setattr(polygonize_module, "SeamMerger", _RecordingMerger)
    _RecordingMerger.seen = []
    height, width = 200, 300
    classes = serpentine(height, width, wiggle)
    raster = write_classes(tmp_path / "snake.tif", classes)
    polygonize(raster, tmp_path / "snake.gpkg", block_rows=5)
    geoms, ids, _, areas = read_layer(tmp_path / "snake.gpkg")
    (snake,) = geoms[ids == 1]
    assert areas[ids == 1][0] == pytest.approx((classes == 1).sum() * 4.0, rel=1e-12)
    assert shapely.is_valid(geoms).all()
    assert shapely.get_num_coordinates(snake) > (2 * width / wiggle if wiggle < 40 else 0)
    for class_id in (1, 2):
        assert areas[ids == class_id].sum() == pytest.approx((classes == class_id).sum() * 4.0)

    seen = _RecordingMerger.seen
    assert len(seen) == height // 5
    assert all(state.vertices == 0 for state in seen)
    assert {state.border_bytes for state in seen[:-1]} == {width * 9}  # uint8 class + int64 id
    assert seen[-1].border_bytes == seen[-1].open_regions == 0  # nothing open after the last

    # Open regions: at most one per run of equal class in the border row (parts of the background
    # between two teeth are regions of their own until the next strip joins them). Their spilled
    # pieces (16 bytes of records each) touched a strip's first or last row, with a run there.
    def runs(row: np.ndarray) -> int:
        row = row.astype(int)
        return np.count_nonzero(np.diff(row, prepend=-1)) - np.count_nonzero(row == 255)

    runs_so_far = 0
    for k, state in enumerate(seen[:-1]):
        runs_so_far += runs(classes[5 * k]) + runs(classes[5 * k + 4])
        assert state.open_regions <= runs(classes[5 * k + 4])
        assert state.open_pieces <= runs_so_far
    assert seen[-1].spilled_bytes > shapely.to_wkb(snake).__len__() / 2  # its pieces went out


def test_batches_are_capped_by_vertices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regions ending together are written a few at a time; the polygons do not change."""
    rng = np.random.default_rng(7)
    classes = fragmented(rng, 120, 90)
    raster = write_classes(tmp_path / "classes.tif", classes)
    polygonize(raster, tmp_path / "plain.gpkg", block_rows=9)
    sizes: list[int] = []
    real_finish = polygonize_module._finish

    def finish(polygons: np.ndarray, *args: object) -> tuple[np.ndarray, np.ndarray]:
        sizes.append(int(shapely.get_num_coordinates(polygons).sum()))
        assert len(polygons) == 1 or sizes[-1] <= 200
        return real_finish(polygons, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(polygonize_module, "BATCH_VERTICES", 200)
    monkeypatch.setattr(polygonize_module, "BATCH_POLYGONS", 50)
    monkeypatch.setattr(polygonize_module, "_finish", finish)
    polygonize(raster, tmp_path / "small.gpkg", block_rows=9)
    geoms, ids, _, _ = read_layer(tmp_path / "small.gpkg")
    plain_geoms, plain_ids, _, _ = read_layer(tmp_path / "plain.gpkg")
    assert len(sizes) > 20
    assert canonical(geoms, ids) == canonical(plain_geoms, plain_ids)


def test_spilled_pieces_leave_no_file(tmp_path: Path) -> None:
    classes = serpentine(60, 40, 40)
    raster = write_classes(tmp_path / "snake.tif", classes)
    out = tmp_path / "out"
    out.mkdir()
    polygonize(raster, out / "snake.gpkg", block_rows=3)

    def cancel(done: int, total: int) -> None:
        if done > 30:
            raise Cancelled

    with pytest.raises(Cancelled):
        polygonize(raster, out / "cancelled.gpkg", block_rows=3, progress=cancel)
    assert sorted(p.name for p in out.iterdir()) == ["cancelled.gpkg", "snake.gpkg"]


def test_large_region_path_gives_the_same_polygons(
    tmp_path: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every region crossing a strip border assembled out of core and streamed into the
    GeoPackage (pieces read back a few at a time): the same polygons, in the same order, with
    the same attributes as without strips; valid; exact class areas."""
    classes = fragmented(rng, 203, 181)
    classes[150:200, 20:160] = 4  # a large region with holes, crossing several strips
    classes[160:190:4, 30:150:6] = 2
    raster = write_classes(tmp_path / "classes.tif", classes)
    polygonize(raster, tmp_path / "memory.gpkg", block_rows=7)
    polygonize(raster, tmp_path / "whole.gpkg", block_rows=1000)
    monkeypatch.setattr(merge_module, "STREAM_BYTES", 0)
    monkeypatch.setattr(spill_module, "READ_BYTES", 200)
    polygonize(raster, tmp_path / "strips.gpkg", block_rows=7)
    geoms, ids, names, areas = read_layer(tmp_path / "strips.gpkg")
    whole_geoms, whole_ids, _, _ = read_layer(tmp_path / "whole.gpkg")
    assert canonical(geoms, ids) == canonical(whole_geoms, whole_ids)
    assert shapely.is_valid(geoms).all()
    for class_id in range(5):
        expected = float((classes == class_id).sum() * 4.0)
        assert areas[ids == class_id].sum() == pytest.approx(expected, rel=1e-12)
    assert np.allclose(areas, shapely.area(geoms), rtol=1e-12)
    memory_geoms, memory_ids, memory_names, memory_areas = read_layer(tmp_path / "memory.gpkg")
    assert ids.tolist() == memory_ids.tolist()  # features in the order they were finished
    assert names.tolist() == memory_names.tolist()
    assert np.allclose(areas, memory_areas, rtol=1e-12)
    assert shapely.equals(geoms, memory_geoms).all()


def test_large_regions_in_a_geographic_crs_get_their_geodesic_area(
    tmp_path: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Streamed regions' geodesic areas, summed a window at a time, equal pyproj's area of the
    polygon read back."""
    classes = fragmented(rng, 90, 70)
    classes[10:80, 5:65] = np.where(classes[10:80, 5:65] == 0, 0, 3)  # a large region, holes
    transform = Affine(0.0005, 0.0, 10.0, 0.0, -0.0005, 60.0)
    raster = write_classes(tmp_path / "wgs84.tif", classes, CRS.from_epsg(4326), transform)
    monkeypatch.setattr(merge_module, "STREAM_BYTES", 0)
    monkeypatch.setattr(area_module, "GEODESIC_POINTS", 5)  # many windows per ring
    result = polygonize(raster, tmp_path / "wgs84.gpkg", block_rows=8)
    geoms, ids, _, areas = read_layer(tmp_path / "wgs84.gpkg")
    geod = pyproj.Geod(ellps="WGS84")
    expected = [abs(geod.geometry_area_perimeter(shapely.orient_polygons(g))[0]) for g in geoms]
    assert areas == pytest.approx(expected, rel=1e-9)
    assert shapely.is_valid(geoms).all()
    assert result.total_area_m2 == pytest.approx(areas.sum())
    assert shapely.get_num_interior_rings(geoms[ids == 3]).max() > 10


def test_simplify_leaves_large_regions_exact_and_the_layer_a_coverage(
    tmp_path: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --simplify, streamed regions keep their pixel edges (their neighbours' edges facing
    them are on batch boundaries, also kept): no gaps, no overlaps, all valid, and the other
    polygons are still simplified."""
    classes = fragmented(rng, 160, 150)
    raster = write_classes(tmp_path / "classes.tif", classes)
    plain = polygonize(raster, tmp_path / "plain.gpkg", block_rows=32)
    monkeypatch.setattr(merge_module, "STREAM_BYTES", 2_000)
    streamed: list[bool] = []  # per feature, in the order written
    real_count = polygonize_module._Tally.count

    def count(self, batch):  # type: ignore[no-untyped-def]
        written = real_count(self, batch)
        streamed.extend([isinstance(batch, merge_module.LargeRegion)] * len(written.class_id))
        return written

    monkeypatch.setattr(polygonize_module._Tally, "count", count)
    simple = polygonize(raster, tmp_path / "simple.gpkg", block_rows=32, simplify_m=5.0)
    geoms, ids, _, areas = read_layer(tmp_path / "simple.gpkg")
    plain_geoms, plain_ids, _, _ = read_layer(tmp_path / "plain.gpkg")
    assert simple.n_polygons == plain.n_polygons
    assert ids.tolist() == plain_ids.tolist()  # the same order: features correspond
    assert shapely.is_valid(geoms).all()
    valid_area = (classes != 255).sum() * 4.0
    union = shapely.union_all(geoms)
    assert union.area == pytest.approx(valid_area, rel=1e-9)  # no gaps
    assert areas.sum() == pytest.approx(union.area, rel=1e-9)  # no overlaps
    large = np.array(streamed)
    assert 0 < large.sum() < len(geoms) / 10
    assert shapely.equals(geoms[large], plain_geoms[large]).all()  # exact pixel edges
    # The others are simplified, except their edges facing a streamed region: fewer vertices.
    assert (
        shapely.get_num_coordinates(geoms[~large]).sum()
        < 0.95 * shapely.get_num_coordinates(plain_geoms[~large]).sum()
    )


def test_large_regions_with_a_rotated_transform(
    tmp_path: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rotated grid: streamed regions are moved by the same affine map as the others, stay
    valid, and tile the raster's footprint."""
    classes = fragmented(rng, 80, 60)
    transform = (
        Affine.translation(500000.0, 5000000.0) * Affine.rotation(20.0) * Affine.scale(2.0, -2.0)
    )
    raster = write_classes(tmp_path / "rotated.tif", classes, transform=transform)
    monkeypatch.setattr(merge_module, "STREAM_BYTES", 0)
    polygonize(raster, tmp_path / "rotated.gpkg", block_rows=6)
    geoms, _, _, areas = read_layer(tmp_path / "rotated.gpkg")
    assert shapely.is_valid(geoms).all()
    assert areas.sum() == pytest.approx((classes != 255).sum() * 4.0, rel=1e-9)
    assert np.allclose(areas, shapely.area(geoms), rtol=1e-9)


def test_importing_the_vector_package_loads_no_second_gdal_nor_pandas() -> None:
    """pyogrio (its own GDAL, and pandas, geopandas and pyproj through its ``_compat``) and pyproj
    cost more resident memory than polygonizing (docs/benchmarks/polygonize.md); a projected CRS
    needs none of them."""
    code = (
        "import sys, s5geo.vector; "
        "print(sorted({'pyogrio', 'pandas', 'geopandas', 'pyproj'} & set(sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert loaded.strip() == "[]"
