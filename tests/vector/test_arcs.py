"""Out-of-core assembly of large regions (arcs): the same polygons as shapely's union, valid.

Every region that crosses a strip border is forced through the out-of-core path
(``STREAM_BYTES = 0``) and its streamed rings are rebuilt into a shapely polygon here, to compare
with the in-memory union of the same pieces and with GDAL's polygon of the whole raster.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import shapely
import shapely.affinity
from affine import Affine

import s5geo.vector.arcs as arcs_module
import s5geo.vector.merge as merge_module
from s5geo.vector.arcs import RingAssembly
from s5geo.vector.merge import LargeRegion, SeamMerger
from s5geo.vector.shapes import strip_polygons
from s5geo.vector.spill import PieceStore
from s5geo.vector.streamed import StreamedPolygon, part_wkb

NODATA = 255
STREAMED = [0]


def rebuilt(assembly: RingAssembly) -> shapely.Polygon:
    """The polygon of ``assembly`` from its streamed parts, checking what it says of them."""
    rings: list[list[np.ndarray]] = []
    for counts, coords in assembly.parts():
        assert len(coords) <= arcs_module.PART_POINTS + 1 or len(counts) > 1
        if not len(counts):
            rings[-1].append(coords)
        start = 0
        for count in counts.tolist():
            rings.append([coords[start : start + count]])
            start += count
    closed = [np.concatenate(parts) for parts in rings]
    assert [len(r) for r in closed[: len(assembly.cycle_sizes)]] == assembly.cycle_sizes
    assert sum(map(len, closed)) == assembly.n_points
    assert len(closed) == assembly.ring_count
    assert all(np.array_equal(r[0], r[-1]) for r in closed)
    return shapely.Polygon(closed[0], closed[1:])


def polygons(classes: np.ndarray, rows: int, stream: bool) -> list[shapely.Geometry]:
    """Polygons of ``classes`` through strips of ``rows`` rows, in the order they finish; with
    ``stream`` every region crossing a strip border is assembled out of core (their number is
    added to ``STREAMED``), without it every one by the overlay union."""
    height = classes.shape[0]
    found: list[shapely.Geometry] = []
    old = merge_module.STREAM_BYTES, merge_module.ARCS_VERTICES
    merge_module.STREAM_BYTES = 0 if stream else 2**62
    merge_module.ARCS_VERTICES = 2**62
    try:
        with PieceStore(Path.cwd()) as store, warnings.catch_warnings():
            warnings.simplefilter("error")  # no fall-back to the in-memory union
            merger = SeamMerger(NODATA, store)
            for top in range(0, height, rows):
                strip = classes[top : top + rows]
                merger.start_strip(strip, top, last=top + rows >= height)
                for chunk in strip_polygons(strip, NODATA, top, 1000):
                    found += merger.add(*chunk)[0].tolist()
                for item in merger.end_strip():
                    if isinstance(item, LargeRegion):
                        found.append(rebuilt(item.assembly))
                        STREAMED[0] += 1
                    else:
                        found += item[0].tolist()
    finally:
        merge_module.STREAM_BYTES, merge_module.ARCS_VERTICES = old
    return found


def canonical(geoms: list[shapely.Geometry]) -> list[bytes]:
    """Comparable form: collinear vertices dropped, rings normalized, sorted."""
    normal = shapely.normalize(shapely.simplify(np.array(geoms, dtype=object), 0.0))
    return sorted(shapely.to_wkb(normal).tolist())


def noise(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Few classes at random: many pinches, holes and regions crossing strips many times."""
    return rng.integers(0, int(rng.integers(2, 4)), shape).astype(np.uint8)


def blocks(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Blocks of 3 pixels with speckle and some nodata: holes, long shared edges."""
    height, width = shape
    coarse = rng.integers(0, 3, (height // 3 + 1, width // 3 + 1))
    classes = np.kron(coarse, np.ones((3, 3), dtype=np.int64))[:height, :width]
    speckle = rng.random(shape) < 0.2
    classes = np.where(speckle, rng.integers(0, 3, shape), classes)
    classes[rng.random(shape) < 0.03] = NODATA
    return classes.astype(np.uint8)


def diagonals(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A checkerboard of 1- and 2-pixel cells broken at random: pinch points everywhere."""
    rows, cols = np.indices(shape)
    cell = int(rng.integers(1, 3))
    classes = ((rows // cell + cols // cell) % 2).astype(np.uint8)
    flip = rng.random(shape) < 0.25
    return np.where(flip, 1 - classes, classes).astype(np.uint8)


@pytest.mark.parametrize("pattern", [noise, blocks, diagonals])
def test_streamed_regions_equal_the_in_memory_union_and_gdal(
    pattern: Callable[[np.random.Generator, tuple[int, int]], np.ndarray],
    rng: np.random.Generator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On many random rasters (pinches across and inside strips, holes, regions zigzagging
    across borders, ending and merging) each region assembled out of core is valid and equal to
    shapely's union of the same pieces, and the layer equals GDAL's polygons of the whole raster.
    """
    monkeypatch.chdir(tmp_path)
    STREAMED[0] = 0
    for _ in range(25):
        shape = (int(rng.integers(4, 36)), int(rng.integers(4, 36)))
        classes = pattern(rng, shape)
        rows = int(rng.integers(1, 6))
        streamed = polygons(classes, rows, stream=True)
        in_memory = polygons(classes, rows, stream=False)
        assert len(streamed) == len(in_memory)
        assert shapely.is_valid(streamed).all(), shapely.is_valid_reason(streamed)
        assert shapely.equals(streamed, in_memory).all()
        whole = [g for chunk, _ in strip_polygons(classes, NODATA, 0, 10**6) for g in chunk]
        assert canonical(streamed) == canonical(whole)
    assert STREAMED[0] > 100


def test_pinches_across_and_inside_strips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A frame of class 1 with arms whose pieces touch diagonally, on a strip border and inside
    a strip: one valid polygon, each pinch point on two different rings (holes touching the
    shell or each other), never a ring touching itself, as GDAL writes it for the whole raster.
    """
    monkeypatch.chdir(tmp_path)
    classes = np.zeros((12, 12), dtype=np.uint8)
    classes[1, 1:11] = classes[10, 1:11] = 1  # the frame
    classes[1:11, 1] = classes[1:11, 10] = 1
    classes[2:4, 4] = 1  # an arm down from the top ...
    classes[4:10, 5] = 1  # ... and one up from the bottom: diagonal at point (5, 4)
    classes[5, 6] = 1  # a spur of the second arm ...
    classes[6, 7:10] = 1  # ... diagonal at point (7, 6) to an arm from the right side
    pinches = [shapely.Point(5, 4), shapely.Point(7, 6)]
    whole = [g for chunk, _ in strip_polygons(classes, NODATA, 0, 10**6) for g in chunk]
    for rows in (4, 3, 2, 1):
        streamed = polygons(classes, rows, stream=True)
        assert canonical(streamed) == canonical(whole)
        (polygon,) = [g for g in streamed if g.contains(shapely.Point(1.5, 1.5))]
        assert polygon.is_valid
        assert polygon.area == (classes == 1).sum()  # every pixel of class 1 is in it
        rings = [polygon.exterior, *polygon.interiors]
        for point in pinches:
            assert sum(ring.intersects(point) for ring in rings) == 2


def test_streamed_wkb_is_the_polygon_in_the_crs(
    tmp_path: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``StreamedPolygon`` writes, a part at a time, the WKB shapely writes for the same polygon
    moved to the CRS (apart from collinear vertices), and its exact envelope."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(arcs_module, "PART_POINTS", 7)  # many parts per ring
    monkeypatch.setattr(arcs_module, "READ_BYTES", 100)  # a few pieces at a time
    classes = blocks(rng, (40, 30))
    classes[5:35, 2:28] = 2  # one large region with holes of other classes
    classes[8:32:3, 4:26:4] = 1
    merge_module.STREAM_BYTES, old = 0, merge_module.STREAM_BYTES
    affine = Affine(2.0, 0.0, 500000.0, 0.0, -2.0, 5000000.0)
    try:
        with PieceStore(tmp_path) as store:
            merger = SeamMerger(NODATA, store)
            large = []
            for top in range(0, 40, 6):
                strip = classes[top : top + 6]
                merger.start_strip(strip, top, last=top + 6 >= 40)
                for chunk in strip_polygons(strip, NODATA, top, 1000):
                    merger.add(*chunk)
                large += [i for i in merger.end_strip() if isinstance(i, LargeRegion)]
            assert large
            for item in large:
                streamed = StreamedPolygon(item.assembly, affine)
                written: list[bytes] = []
                bounds = streamed.write_wkb(written.append)
                wkb = b"".join(written)
                assert len(wkb) == streamed.wkb_size
                polygon = shapely.from_wkb(wkb)
                expected = shapely.affinity.affine_transform(
                    rebuilt(item.assembly), [affine.a, affine.b, affine.d, affine.e, 500000, 5e6]
                )
                assert polygon.is_valid
                assert shapely.equals_exact(polygon, expected, tolerance=0)
                assert bounds == pytest.approx(polygon.bounds, abs=0)
    finally:
        merge_module.STREAM_BYTES = old


def test_part_wkb_places_the_counts_before_their_rings() -> None:
    rings = [shapely.box(0, 0, 1, 1).exterior, shapely.box(2, 2, 5, 3).exterior]
    coords = np.concatenate([np.asarray(r.coords) for r in rings])
    counts = np.array([len(r.coords) for r in rings])
    polygon = shapely.Polygon(rings[0], [rings[1]])
    wkb = shapely.to_wkb(polygon, byte_order=1)
    assert part_wkb(arcs_module.RingPart(counts, coords)) == wkb[9:]
    head = arcs_module.RingPart(counts[:1], coords[:3])
    tail = arcs_module.RingPart(counts[:0], coords[3:5])
    assert part_wkb(head) + part_wkb(tail) == wkb[9 : 9 + 4 + 16 * 5]


def test_a_large_region_is_never_held_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A region crossing every strip: assembling and streaming it convert one piece at a time,
    and keep a few numbers per arc, two arcs per segment shared across a strip border."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(arcs_module, "READ_BYTES", 1)  # one piece at a time
    height, width = 120, 400
    classes = np.full((height, width), 2, dtype=np.uint8)
    classes[:, ::2] = 1  # comb teeth of class 1, one pixel wide, joined ...
    classes[::10, :] = 1  # ... by bars every 10 rows: one region through every strip
    classes[5::10, 1::4] = 1  # and bridges that make holes
    converted: list[int] = []
    real_chunks = PieceStore.chunks

    def chunks(self: PieceStore, records: np.ndarray, chunk_bytes: int | None = None):  # type: ignore[no-untyped-def]
        for pieces in real_chunks(self, records, chunk_bytes):
            converted.append(int(shapely.get_num_coordinates(pieces).sum()))
            yield pieces

    monkeypatch.setattr(PieceStore, "chunks", chunks)
    merge_module.STREAM_BYTES, old = 0, merge_module.STREAM_BYTES
    try:
        with PieceStore(tmp_path) as store:
            merger = SeamMerger(NODATA, store)
            rows = 8
            for top in range(0, height, rows):
                strip = classes[top : top + rows]
                merger.start_strip(strip, top, last=top + rows >= height)
                for chunk in strip_polygons(strip, NODATA, top, 10**6):
                    merger.add(*chunk)
                large = [i for i in merger.end_strip() if isinstance(i, LargeRegion)]
                for item in large:
                    if item.assembly.pixel_area > (classes == 1).sum() / 2:
                        assembly = item.assembly
            polygon = rebuilt(assembly)
    finally:
        merge_module.STREAM_BYTES = old
    whole = np.concatenate([g for g, _ in strip_polygons(classes, NODATA, 0, 10**6)])
    assert polygon.is_valid
    assert polygon.equals(whole[np.argmax(shapely.area(whole))])
    vertices = assembly.n_points
    assert vertices > 15_000
    assert max(converted) < vertices / 5  # one piece at a time: a strip of 15 at most
    # Arcs: two per segment shared across a strip border (no pinches here), whatever the
    # vertices between them.
    above, below = classes[rows - 1 : -1 : rows] == 1, classes[rows::rows] == 1
    shared = above & below
    segments = np.count_nonzero(shared[:, 1:] & ~shared[:, :-1]) + np.count_nonzero(shared[:, 0])
    assert len(assembly.arcs.count) == 2 * segments


@pytest.mark.parametrize("pattern", [noise, blocks, diagonals])
def test_regions_linked_from_arcs_in_memory_equal_the_overlay_union(
    pattern: Callable[[np.random.Generator, tuple[int, int]], np.ndarray],
    rng: np.random.Generator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Regions below the streaming size but of ``ARCS_VERTICES`` or more are linked from arcs
    into a polygon held in memory: valid, equal to the overlay union of the same pieces (up to
    collinear vertices), and the layer equal to GDAL's polygons of the whole raster."""
    monkeypatch.chdir(tmp_path)
    linked_count = [0]
    assembly_polygon = merge_module.assembly_polygon
    for _ in range(25):
        shape = (int(rng.integers(4, 36)), int(rng.integers(4, 36)))
        classes = pattern(rng, shape)
        rows = int(rng.integers(1, 6))
        overlay = polygons(classes, rows, stream=False)
        with monkeypatch.context() as patch:

            def counted(assembly: RingAssembly) -> shapely.Polygon:
                linked_count[0] += 1
                return assembly_polygon(assembly)

            patch.setattr(merge_module, "assembly_polygon", counted)
            patch.setattr(merge_module, "ARCS_VERTICES", 0)
            with PieceStore(tmp_path) as store, warnings.catch_warnings():
                warnings.simplefilter("error")
                merger = SeamMerger(NODATA, store)
                linked: list[shapely.Geometry] = []
                for top in range(0, shape[0], rows):
                    strip = classes[top : top + rows]
                    merger.start_strip(strip, top, last=top + rows >= shape[0])
                    for chunk in strip_polygons(strip, NODATA, top, 1000):
                        linked += merger.add(*chunk)[0].tolist()
                    for item in merger.end_strip():
                        assert not isinstance(item, LargeRegion)
                        linked += item[0].tolist()
        assert len(linked) == len(overlay)
        assert shapely.is_valid(linked).all(), shapely.is_valid_reason(linked)
        assert canonical(linked) == canonical(overlay)
        whole = [g for chunk, _ in strip_polygons(classes, NODATA, 0, 10**6) for g in chunk]
        assert canonical(linked) == canonical(whole)
    assert linked_count[0] > 50
