"""RowFedPolygonizer: the layer of rows fed while they are produced equals polygonize_raster's."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import s5geo.vector.rowfed as rowfed_module
from s5geo.errors import Cancelled
from s5geo.vector.area import GroundMetrics
from s5geo.vector.rowfed import RowFedPolygonizer

from .test_polygonize import (
    COLORS,
    NAMES,
    UTM,
    UTM_TRANSFORM,
    fragmented,
    polygonize,
    write_classes,
)


def feature_rows(path: Path) -> list[tuple[object, ...]]:
    """Every feature's fid, attributes and geometry blob, in fid order."""
    with sqlite3.connect(path) as con:
        return con.execute(
            "SELECT fid, class_id, class_name, area_m2, geom FROM landcover ORDER BY fid"
        ).fetchall()


def row_fed(
    out: Path, classes: np.ndarray, blocks: list[int], **kwargs: object
) -> RowFedPolygonizer:
    """A polygonizer of ``classes`` (UTM grid of the tests) fed in blocks of these sizes."""
    height, width = classes.shape
    polygons = RowFedPolygonizer(
        out,
        width=width,
        height=height,
        metrics=GroundMetrics.of(UTM, UTM_TRANSFORM),
        crs_wkt=UTM.to_wkt(),
        class_names=NAMES,
        class_colors=COLORS,
        **kwargs,  # type: ignore[arg-type]
    )
    row = 0
    for size in blocks:
        polygons.put(row, classes[row : row + size].copy())
        row += size
    return polygons


def random_blocks(rng: np.random.Generator, height: int) -> list[int]:
    """Block sizes summing to ``height``, as the blender's bands come (irregular)."""
    sizes = []
    while sum(sizes) < height:
        sizes.append(int(min(rng.integers(1, 40), height - sum(sizes))))
    return sizes


@pytest.mark.parametrize(
    "options",
    [{}, {"min_area_m2": 40.0}, {"simplify_m": 3.0}, {"min_area_m2": 20.0, "simplify_m": 2.0}],
)
def test_rows_fed_in_blocks_give_the_layer_of_the_raster(
    tmp_path: Path, rng: np.random.Generator, options: dict[str, float]
) -> None:
    """Same strips, same code, same rows: byte-identical features to polygonize_raster's, with
    the sieve's halo rows and simplification too, whatever the blocks the rows come in."""
    classes = fragmented(rng, 157, 131)
    raster = write_classes(tmp_path / "classes.tif", classes)
    expected = polygonize(raster, tmp_path / "raster.gpkg", block_rows=9, **options)
    polygons = row_fed(
        tmp_path / "rows.gpkg", classes, random_blocks(rng, 157), block_rows=9, **options
    )
    result = polygons.finish()
    assert result == expected
    assert feature_rows(tmp_path / "rows.gpkg") == feature_rows(tmp_path / "raster.gpkg")
    with sqlite3.connect(tmp_path / "rows.gpkg") as con:
        (style,) = con.execute("SELECT count(*) FROM layer_styles").fetchone()
    assert style == 1


def test_the_buffer_stays_bounded_when_the_worker_is_slow(
    tmp_path: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The producer waits for a slow worker: rows held stay within two strips and one block."""
    classes = fragmented(rng, 300, 64)
    original = rowfed_module._RowBuffer.rows

    def slow(self: rowfed_module._RowBuffer, start: int, stop: int) -> np.ndarray:
        time.sleep(0.01)
        return original(self, start, stop)

    monkeypatch.setattr(rowfed_module._RowBuffer, "rows", slow)
    height = classes.shape[0]
    polygons = row_fed(tmp_path / "rows.gpkg", classes, [], block_rows=5)
    buffer = polygons._buffer
    held = []
    for row in range(0, height, 3):
        polygons.put(row, classes[row : row + 3].copy())
        held.append(buffer.held_rows)
    polygons.finish()
    assert buffer.capacity == 10
    assert max(held) <= buffer.capacity + buffer.keep + 3
    raster = write_classes(tmp_path / "classes.tif", classes)
    polygonize(raster, tmp_path / "raster.gpkg", block_rows=5)
    assert feature_rows(tmp_path / "rows.gpkg") == feature_rows(tmp_path / "raster.gpkg")


def test_abort_stops_the_worker_waiting_for_rows(tmp_path: Path, rng: np.random.Generator) -> None:
    """Abort while the worker waits for rows that will never come: it stops, finish says
    Cancelled, and the thread is gone (the caller can then remove the partial file)."""
    classes = fragmented(rng, 100, 50)
    polygons = row_fed(tmp_path / "rows.gpkg", classes, [30], block_rows=10)
    polygons.abort()
    assert not polygons._thread.is_alive()
    with pytest.raises(Cancelled):
        polygons.finish()


def test_leaving_the_context_with_an_error_aborts(tmp_path: Path, rng: np.random.Generator) -> None:
    classes = fragmented(rng, 100, 50)
    polygons = row_fed(tmp_path / "rows.gpkg", classes, [40], block_rows=10)
    with pytest.raises(KeyboardInterrupt), polygons:
        raise KeyboardInterrupt
    assert not polygons._thread.is_alive()
    assert not [t for t in threading.enumerate() if t.name == "s5geo-polygons"]


def test_a_worker_error_is_raised_in_the_producer(
    tmp_path: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error in the worker (a full disk, say) comes back through put or finish, once, and
    is kept as ``failure`` so the caller can attribute it to the GeoPackage."""

    def failing(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(rowfed_module, "write_layer", failing)
    classes = fragmented(rng, 100, 50)
    polygons = row_fed(tmp_path / "rows.gpkg", classes, [], block_rows=10)
    polygons._thread.join()
    with pytest.raises(sqlite3.OperationalError) as raised:
        polygons.put(0, classes[:10].copy())
    assert polygons.failure is raised.value
    polygons.put(0, classes[:10].copy())  # raised once; the worker is gone: put never waits


def test_rows_out_of_order_are_refused(tmp_path: Path, rng: np.random.Generator) -> None:
    classes = fragmented(rng, 40, 20)
    with row_fed(tmp_path / "rows.gpkg", classes, [10], block_rows=10) as polygons:
        with pytest.raises(RuntimeError, match="out of order"):
            polygons.put(20, classes[20:30].copy())
        polygons.abort()


def test_progress_is_reported_from_the_waiting_thread(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    """finish reports (rows done, rows total) from its own thread; Cancelled from it aborts."""
    classes = fragmented(rng, 120, 40)
    polygons = row_fed(tmp_path / "rows.gpkg", classes, [120], block_rows=10)
    seen: list[tuple[int, int, str]] = []

    def progress(done: int, total: int) -> None:
        seen.append((done, total, threading.current_thread().name))

    polygons.finish(progress)
    assert all(name == threading.current_thread().name for _, _, name in seen)
    assert all(total == 120 for _, total, _ in seen)

    def cancel(done: int, total: int) -> None:
        raise Cancelled()

    polygons = row_fed(tmp_path / "cancelled.gpkg", classes, [60], block_rows=10)
    with pytest.raises(Cancelled):
        polygons.finish(cancel)  # the worker waits for rows 60..: finish reports, is cancelled
    assert not polygons._thread.is_alive()


def test_segment_scene_polygons_are_those_of_its_class_raster(
    tmp_path: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``s5geo predict --out X.gpkg`` polygonizes the rows while predicting: its layer is
    byte-identical to polygonize_raster's of the class raster it writes (small strips, so
    regions cross many strip borders and the rows come in many blocks), with the sieve too."""
    from helpers import build_perpixel_model, write_scene

    import s5geo.vector.polygonize as polygonize_module
    from s5geo.options import PredictOptions
    from s5geo.segment import segment_scene
    from s5geo.vector import polygonize_raster

    monkeypatch.setattr(polygonize_module, "STRIP_PIXELS", 1)  # strips of 16 rows
    blocks = rng.integers(1, 255, size=(3, 41, 32), dtype=np.uint8)  # 5-px blocks
    scene = write_scene(tmp_path / "blocky.tif", blocks.repeat(5, axis=1).repeat(5, axis=2))
    model = build_perpixel_model(tmp_path / "m.onnx")
    for options in ({}, {"min_area_m2": 30.0}):
        out = tmp_path / f"lc{len(options)}.gpkg"
        result = segment_scene(
            scene, out_raster=out.with_suffix(".tif"), out_vector=out, model=model,
            options=PredictOptions(**options),
        )  # fmt: skip
        again = tmp_path / f"again{len(options)}.gpkg"
        names = {0: "water", 1: "forest", 2: "urban"}
        expected = polygonize_raster(
            out.with_suffix(".tif"), again, class_names=names, class_colors={}, **options
        )
        assert result.vector is not None
        assert result.vector.n_polygons == expected.n_polygons > 50
        assert feature_rows(out) == feature_rows(again)
