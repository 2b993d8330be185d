"""A class raster to a styled GeoPackage polygon layer, strip by strip, in bounded memory.

For each strip of ``block_rows`` full-width rows (fewer on wide rasters, ``STRIP_PIXELS``): read
it (and sieve it, see ``sieve``), polygonize it in pixel coordinates (``shapes``), link its
polygons with the regions left open above it (``merge``), and queue the polygons that are
finished. Queued polygons are written in batches of at most ``BATCH_POLYGONS`` polygons and
``BATCH_VERTICES`` vertices: moved to the CRS (``shapes.to_world``), simplified as a coverage when
asked (``simplify``), made sure valid (``validity``), measured (``area``) and streamed into the
GeoPackage (``s5geo.io.gpkg``). Last, the QGIS style goes into the GeoPackage.

Memory holds one strip with GDAL's polygons of it, one chunk of them as shapely polygons, two
border rows of state and one batch; the pieces of regions that continue below a strip wait in an
anonymous temporary file in the output's folder (``spill``) until the region ends. A region is
assembled once, when it ends: in memory when it is small, out of core when it is large
(``merge.STREAM_BYTES``, ``arcs``). A large region is written as one feature whose geometry is
streamed from the spill file into its GeoPackage blob (``streamed``, ``s5geo.io.gpkg``), its
area summed without holding its coordinates (``area``). Never the whole raster, all polygons or
a large region's coordinates.

Simplification (``simplify_m``) leaves large regions as they are, with their exact pixel edges.
Every edge of such a region is shared with another polygon, or lies on nodata or the raster's
edge, and a shared edge can only be simplified together with the polygon on its other side
(``simplify``: batches keep their outer boundary, which is what keeps neighbours in different
batches without gaps or overlaps). The polygons around a large region are in other batches, so
its edges are on their batch's outer boundary, and its own batch would be the region alone;
keeping them exact keeps the layer a coverage. Simplifying them would need the whole
neighbourhood of the region in one coverage, which is what out-of-core assembly avoids.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.errors import RasterioIOError
from rasterio.io import DatasetReader

from s5geo.errors import ParameterError, UserError
from s5geo.io.gpkg import PolygonBatch, write_default_style, write_polygon_layer
from s5geo.io.qgis_style import vector_qml
from s5geo.io.raster import GDAL_CACHE_BYTES
from s5geo.modelfile import NODATA
from s5geo.vector.area import GroundMetrics
from s5geo.vector.merge import LargeRegion, SeamMerger
from s5geo.vector.shapes import strip_polygons, to_world
from s5geo.vector.sieve import DatasetRows, RowSource, read_strip, sieve_threshold
from s5geo.vector.simplify import simplify_coverage, split_at_pixel_corners
from s5geo.vector.spill import PieceStore
from s5geo.vector.streamed import StreamedPolygon
from s5geo.vector.validity import needs_check, valid_polygons

# Polygons per batch written (and simplified as one coverage), and converted from GDAL at a time.
# Each is held a few times over while it is converted (GEOS, WKB, the CRS copy), so these sizes
# set part of the peak memory; at these sizes the per-batch overhead does not show in the time
# (docs/benchmarks/polygonize.md, peak by setting).
BATCH_POLYGONS = 5_000
BATCH_VERTICES = 125_000
CHUNK_POLYGONS = 2_000
# Most pixels polygonized per strip: on wide rasters strips get fewer rows than ``block_rows`` so
# GDAL's polygons of one strip (the largest allocation here, held until the strip is done) stay
# bounded by this, not by the raster's width. Smaller strips lower the peak but add strip borders
# to merge; docs/benchmarks/polygonize.md has the peak by strip size.
STRIP_PIXELS = 2**20


@dataclass(frozen=True)
class VectorResult:
    """What ``polygonize_raster`` wrote: polygon count, areas (m²) in total and per class id."""

    n_polygons: int
    total_area_m2: float
    area_m2_by_class: dict[int, float]
    layer: str


def check_layer_arguments(
    out: Path, block_rows: int, min_area_m2: float, simplify_m: float
) -> None:
    """Refuse an existing ``out`` and values outside their ranges, before any work."""
    if out.exists():
        raise UserError(f"{out} exists")
    if block_rows < 1:
        raise ParameterError("{block_rows} must be at least 1, not {value}", value=block_rows)
    for name, value in (("min_area_m2", min_area_m2), ("simplify_m", simplify_m)):
        if not value >= 0:  # also refuses NaN
            raise ParameterError("{" + name + "} must be at least 0, not {value:g}", value=value)


def polygonize_raster(
    raster: str | Path,
    out: str | Path,
    *,
    class_names: dict[int, str],
    class_colors: dict[int, str],
    min_area_m2: float = 0.0,
    simplify_m: float = 0.0,
    layer: str = "landcover",
    block_rows: int = 1024,
    progress: Callable[[int, int], None] | None = None,
) -> VectorResult:
    """Polygons of a single-band uint8 class raster in a new GeoPackage ``out``, styled for QGIS.

    One polygon per 4-connected region of equal class (nodata, 255 unless the raster says
    otherwise, makes none), in the raster's CRS, also where a region crosses strip borders. The
    layer ``layer`` has fields ``class_id``, ``class_name`` (from ``class_names``, "class N" for
    ids without a name) and ``area_m2`` (planar area in square metres for projected CRSs,
    geodesic area for geographic ones), and a default QGIS style colouring it by class.

    ``min_area_m2``: regions smaller than this are merged into a neighbour first, like gdal_sieve
    (``s5geo.vector.sieve`` gives the rule and its limits). ``simplify_m``: topology-preserving
    simplification tolerance in metres (``s5geo.vector.simplify``); neighbours keep shared edges,
    and edges between polygons written in different batches, or against nodata, stay unsimplified,
    as do large regions (module docstring).
    ``area_m2`` is the area of the polygon written, so after simplification a region just above
    the minimum area can come out slightly below it.
    ``block_rows``: rows per strip at most (fewer on rasters wider than ``STRIP_PIXELS`` / rows),
    the unit of memory and of ``progress(rows_done, rows_total)``;
    an exception raised by ``progress`` (such as ``s5geo.errors.Cancelled``) stops the work and
    propagates. ``out`` must not exist; after an exception it may hold a partial GeoPackage, which
    the caller (writing to a temporary name, see ``s5geo.io.atomic``) removes.
    """
    out = Path(out)
    check_layer_arguments(out, block_rows, min_area_m2, simplify_m)
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES), _open_class_raster(raster) as dataset:
        metrics = GroundMetrics.of(dataset.crs, dataset.transform)
        nodata = NODATA if dataset.nodata is None else int(dataset.nodata)
        return write_layer(
            DatasetRows(dataset),
            out,
            metrics=metrics,
            crs_wkt=dataset.crs.to_wkt(),
            nodata=nodata,
            class_names=class_names,
            class_colors=class_colors,
            min_area_m2=min_area_m2,
            simplify_m=simplify_m,
            layer=layer,
            block_rows=block_rows,
            progress=progress,
        )


def write_layer(
    source: RowSource,
    out: Path,
    *,
    metrics: GroundMetrics,
    crs_wkt: str,
    nodata: int,
    class_names: dict[int, str],
    class_colors: dict[int, str],
    min_area_m2: float,
    simplify_m: float,
    layer: str,
    block_rows: int,
    progress: Callable[[int, int], None] | None,
) -> VectorResult:
    """The styled polygon layer of the class rows of ``source`` in the new GeoPackage ``out``.

    What ``polygonize_raster`` does once the raster is open; ``rowfed`` feeds it rows as they
    are produced instead.
    """
    tally = _Tally(class_names, metrics)
    rows = strip_rows(block_rows, source.width)
    with PieceStore(out.parent) as store:
        batches = _polygon_batches(
            source, nodata, store, metrics, min_area_m2, simplify_m, rows, progress
        )
        write_polygon_layer(out, layer, crs_wkt, map(tally.count, batches))
    present = {c: f"class {c}" for c in tally.area_m2_by_class if c not in class_names}
    qml = vector_qml({**class_names, **present}, class_colors)
    write_default_style(out, layer, qml, description="s5geo land cover")
    return VectorResult(
        n_polygons=tally.n_polygons,
        total_area_m2=float(sum(tally.area_m2_by_class.values())),
        area_m2_by_class=dict(sorted(tally.area_m2_by_class.items())),
        layer=layer,
    )


def strip_rows(block_rows: int, width: int) -> int:
    """Rows per strip: ``block_rows`` at most, fewer on wide rasters (``STRIP_PIXELS``)."""
    return min(block_rows, max(16, STRIP_PIXELS // max(width, 1)))


def _polygon_batches(
    source: RowSource,
    nodata: int,
    store: PieceStore,
    metrics: GroundMetrics,
    min_area_m2: float,
    simplify_m: float,
    rows: int,
    progress: Callable[[int, int], None] | None,
) -> Iterator[tuple[np.ndarray, np.ndarray] | LargeRegion]:
    """Finished polygons (CRS coordinates) and their classes, in batches (``_Queue``), and each
    large region on its own, in the order they were finished; strips of ``rows`` rows."""
    height, width = source.height, source.width
    tolerance = metrics.metres_to_crs(simplify_m, height / 2, width / 2) if simplify_m else 0.0
    merger = SeamMerger(nodata, store)
    queue = _Queue()
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        pixel_area = metrics.pixel_area_m2((top + bottom) / 2, width / 2)
        strip = read_strip(source, top, bottom, nodata, sieve_threshold(min_area_m2, pixel_area))
        merger.start_strip(strip, top, last=bottom == height)
        finished = itertools.chain(
            (merger.add(*chunk) for chunk in strip_polygons(strip, nodata, top, CHUNK_POLYGONS)),
            merger.end_strip(),
        )
        for chunk in finished:
            if isinstance(chunk, LargeRegion):
                while len(queue):  # keep the order in which polygons were finished
                    yield _finish(*queue.take(), metrics.transform, tolerance)
                yield chunk
                continue
            queue.put(*chunk)
            del chunk  # a large region is then referenced by the queue alone, until written
            while queue.full():
                yield _finish(*queue.take(), metrics.transform, tolerance)
        if progress is not None:
            progress(bottom, height)
    while len(queue):
        yield _finish(*queue.take(), metrics.transform, tolerance)


def _finish(
    polygons: np.ndarray, classes: np.ndarray, transform: Affine, tolerance: float
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-coordinate polygons to valid polygons in the CRS, simplified when asked.

    Validity is checked where it does not hold by construction (``validity``).
    """
    if tolerance:
        polygons = split_at_pixel_corners(polygons)
    polygons = to_world(polygons, transform)
    if tolerance:
        polygons = simplify_coverage(polygons, tolerance)
    if needs_check(transform, simplified=bool(tolerance)):
        return valid_polygons(polygons, classes)
    return polygons, classes


def _open_class_raster(path: str | Path) -> DatasetReader:
    """Open a raster and check it is a class raster: one uint8 band."""
    try:
        dataset = rasterio.open(path)
    except RasterioIOError as error:
        raise UserError(f"cannot open {path}: {error}") from error
    if dataset.count != 1 or dataset.dtypes[0] != "uint8":
        dataset.close()
        raise UserError(
            f"{path} is not a class raster: {dataset.count} band(s) of {dataset.dtypes[0]},"
            " expected one uint8 band"
        )
    return dataset


class _Queue:
    """Finished polygons waiting to fill a batch, in the order they were finished.

    A batch holds at most BATCH_POLYGONS polygons and, unless it is one polygon, at most
    BATCH_VERTICES vertices: regions that end together (the last strip of a raster crossed by
    large regions) are converted, measured and written a few at a time, not all at once.
    """

    def __init__(self) -> None:
        self._polygons: list[np.ndarray] = []
        self._classes: list[np.ndarray] = []
        self._vertices: list[np.ndarray] = []
        self._size = 0
        self._size_vertices = 0

    def __len__(self) -> int:
        return self._size

    def full(self) -> bool:
        """Whether a whole batch is waiting."""
        return self._size >= BATCH_POLYGONS or self._size_vertices >= BATCH_VERTICES

    def put(self, polygons: np.ndarray, classes: np.ndarray) -> None:
        if not len(polygons):
            return
        vertices = shapely.get_num_coordinates(polygons)
        self._polygons.append(polygons)
        self._classes.append(classes)
        self._vertices.append(vertices)
        self._size += len(polygons)
        self._size_vertices += int(vertices.sum())

    def take(self) -> tuple[np.ndarray, np.ndarray]:
        """The first batch of queued polygons (at least one) and their classes."""
        polygons: list[np.ndarray] = []
        classes: list[np.ndarray] = []
        room, room_vertices = BATCH_POLYGONS, BATCH_VERTICES
        while self._polygons and room and (room_vertices > 0 or not polygons):
            head, head_vertices = self._polygons[0], self._vertices[0]
            fitting = int((np.cumsum(head_vertices) <= room_vertices).sum())
            count = min(room, fitting if polygons or fitting else 1)  # one too large: alone
            if not count:
                break
            taken = int(head_vertices[:count].sum())
            polygons.append(head[:count])
            classes.append(self._classes[0][:count])
            if len(head) > count:
                self._polygons[0] = head[count:]
                self._classes[0] = self._classes[0][count:]
                self._vertices[0] = head_vertices[count:]
            else:
                del self._polygons[0], self._classes[0], self._vertices[0]
            room -= count
            room_vertices -= taken
            self._size -= count
            self._size_vertices -= taken
        return np.concatenate(polygons), np.concatenate(classes)


class _Tally:
    """Turns (polygons, classes) into attribute batches and counts what was written."""

    def __init__(self, class_names: dict[int, str], metrics: GroundMetrics) -> None:
        self.class_names = class_names
        self.metrics = metrics
        self.n_polygons = 0
        self.area_m2_by_class: dict[int, float] = {}

    def count(self, batch: tuple[np.ndarray, np.ndarray] | LargeRegion) -> PolygonBatch:
        if isinstance(batch, LargeRegion):
            streamed = StreamedPolygon(batch.assembly, self.metrics.transform)
            polygons = np.empty(1, dtype=object)
            polygons[0] = streamed
            classes = np.array([batch.class_id])
            pixel_area = batch.assembly.pixel_area
            areas = np.array([self.metrics.large_area_m2(pixel_area, streamed.world_parts())])
        else:
            polygons, classes = batch
            areas = self.metrics.areas_m2(polygons)
        names = {c: self.class_names.get(c, f"class {c}") for c in np.unique(classes).tolist()}
        self.n_polygons += len(polygons)
        for class_id, area in zip(classes.tolist(), areas.tolist(), strict=True):
            self.area_m2_by_class[class_id] = self.area_m2_by_class.get(class_id, 0.0) + area
        class_name = np.array([names[c] for c in classes.tolist()], dtype=object)
        return PolygonBatch(polygons, classes, class_name, areas)
