"""Seam-free polygons across strips, in memory bounded by the strip border, not by region size.

Strips are polygonized one at a time (pixel coordinates, see ``shapes``). A polygon that touches
its strip's bottom edge may continue in the next strip: it is a *piece* of a region that stays
*open*. An open region is kept as

- its pieces, written to a temporary file (``spill.PieceStore``) and held in memory only as
  (offset, size) records: 16 bytes per piece, whatever its vertices;
- its *component id* in every column of the strip's last row where it lies (``_border_ids``).

When the next strip arrives, an open region and a new piece belong together exactly when, in some
column, the pixel just above the border and the pixel just below it carry the same class: the two
regions share that pixel edge. Along a run of such columns with one class, the pixels above are
4-connected and so lie in one region, and likewise below; so one point per run, looked up in an
STRtree of the new pieces (and one id from ``_border_ids``), yields the links. Union-find groups
the links (a region can zigzag across a border several times, and two open regions can turn out
to be one). A group with a new piece that touches the new strip's bottom edge stays open: its new
pieces are spilled and its records joined. Every other group, and every open region that no new
piece continues, has ended: its pieces are read back and assembled into one polygon, once
(``_assemble``), one region at a time.

So between strips memory holds two rows of border state (``16 x width`` bytes), the records, and
no vertices. When a region ends it is assembled once: its rings linked from arcs of its pieces'
shells (``arcs``), or, for a region of fewer than ``ARCS_VERTICES`` vertices, where an overlay
costs less, by an overlay union of the shells (``_merge_pieces``). A region whose pieces hold
``STREAM_BYTES`` of WKB or more stays out of core: its arcs are read from the spill file when the
polygon is written, streamed into its GeoPackage blob (``LargeRegion``); a smaller one is built
in memory (``assembly_polygon``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import shapely

from s5geo.vector.arcs import RingAssembly, assemble
from s5geo.vector.spill import PieceStore
from s5geo.vector.validity import GDAL_POLYGONS_VALID

_EMPTY_GEOMS = np.empty(0, dtype=object)
_EMPTY_IDS = np.empty(0, dtype=np.int64)
_NO_RECORDS = np.empty((0, 2), dtype=np.int64)
# Regions whose pieces hold this much WKB or more (16 bytes per vertex: about 260,000 vertices)
# are assembled out of core (``arcs``): an overlay needs many times a region's WKB, so above this
# a single region would set the peak memory of the whole polygonization.
STREAM_BYTES = 4 * 2**20
# Regions of at least this many vertices are linked from arcs even when held in memory
# (``_assemble``): from about this size on, linking from arcs takes less time than an overlay
# union (docs/benchmarks/polygonize.md, "Where s5geo's time goes").
ARCS_VERTICES = 2_000


@dataclass(frozen=True)
class LargeRegion:
    """A region assembled out of core (``arcs.RingAssembly``) and its class id."""

    assembly: RingAssembly
    class_id: int


@dataclass(frozen=True)
class Retained:
    """What the merger keeps between strips (``SeamMerger.retained``).

    ``vertices``: coordinates of polygons held in memory; ``border_bytes``: the border rows;
    ``open_regions`` and ``open_pieces``: regions still open and their spilled pieces (16 bytes of
    records each in memory); ``spilled_bytes``: the temporary file's size.
    """

    vertices: int
    border_bytes: int
    open_regions: int
    open_pieces: int
    spilled_bytes: int


class SeamMerger:
    """Merges each strip's polygons with the open regions of the strips above it.

    Per strip: ``start_strip``, then ``add`` for each chunk of its polygons (returns those already
    finished: clear of both strip borders), then ``end_strip`` (yields the polygons finished at
    the borders, ended regions one at a time). Polygons on the borders are held in between; they
    are a thin line of the strip. Open regions go to ``store`` between strips.
    """

    def __init__(self, nodata: int, store: PieceStore) -> None:
        self.nodata = nodata
        self._store = store
        self._regions: dict[int, np.ndarray] = {}  # open region id -> records of its pieces
        self._region_class: dict[int, int] = {}
        self._next_id = 0
        self._border: np.ndarray | None = None  # class row just above the current strip
        self._border_ids: np.ndarray | None = None  # open region id per column of that row
        self._strip = np.empty((0, 0), dtype=np.uint8)
        self._top = self._bottom = 0
        self._last = False
        self._held: list[np.ndarray] = []
        self._held_classes: list[np.ndarray] = []
        self._tops: list[int] = []  # first row of every strip so far

    def start_strip(self, strip: np.ndarray, top: int, last: bool) -> None:
        """Begin the strip of class rows ``strip``, whose first row is raster row ``top``.

        ``last``: it is the raster's last strip, so nothing stays open after it.
        """
        self._strip, self._top, self._last = strip, top, last
        self._tops.append(top)
        self._bottom = top + strip.shape[0]

    def add(self, polygons: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Take polygons of the current strip; return those that are already finished."""
        bounds = shapely.bounds(polygons)
        held = np.zeros(len(polygons), dtype=bool)
        if self._regions:
            held |= bounds[:, 1] == self._top
        if not self._last:
            held |= bounds[:, 3] == self._bottom
        self._held.append(polygons[held])
        self._held_classes.append(classes[held])
        return polygons[~held], classes[~held]

    def end_strip(self) -> Iterator[tuple[np.ndarray, np.ndarray] | LargeRegion]:
        """Link the strip's border polygons across its top; yield the polygons now finished.

        Yields the border polygons that end here together (polygons, classes), then each region
        that ended, one at a time: as one polygon, or as a ``LargeRegion`` when it is large;
        consume it whole before the next ``start_strip``.
        """
        polygons = np.concatenate([_EMPTY_GEOMS, *self._held])
        classes = np.concatenate([_EMPTY_IDS, *self._held_classes])
        self._held, self._held_classes = [], []
        if not self._last and len(polygons):
            opens = shapely.bounds(polygons)[:, 3] == self._bottom
        else:
            opens = np.zeros(len(polygons), dtype=bool)
        groups = self._link(polygons) if self._regions else []
        in_group = np.zeros(len(polygons), dtype=bool)
        ended: list[tuple[list[int], np.ndarray]] = []  # (old region ids, new piece indices)
        piece_region = np.full(len(polygons), -1, dtype=np.int64)
        spill: list[np.ndarray] = []  # new pieces to write, by new region
        spill_old: list[list[int]] = []  # the old regions each new region continues
        spill_class: list[int] = []
        continued: set[int] = set()
        for old, new in groups:
            in_group[new] = True
            continued.update(old)
            if opens[new].any():
                spill.append(new)
                spill_old.append(old)
            else:
                ended.append((old, new))
        for index in np.flatnonzero(opens & ~in_group).tolist():  # new regions, not linked
            spill.append(np.array([index]))
            spill_old.append([])
        spill_class = [int(classes[new[0]]) for new in spill]
        ended += [([region], _EMPTY_IDS) for region in self._regions if region not in continued]
        regions: dict[int, np.ndarray] = {}
        region_class: dict[int, int] = {}
        if spill:
            all_new = np.concatenate(spill)
            records = self._store.put(polygons[all_new])
            start = 0
            for new, old, class_id in zip(spill, spill_old, spill_class, strict=True):
                region = self._next_id
                self._next_id += 1
                mine = records[start : start + len(new)]
                start += len(new)
                regions[region] = np.concatenate([*(self._regions[r] for r in old), mine])
                region_class[region] = class_id
                piece_region[new] = region
        ended_records = [
            (np.concatenate([_NO_RECORDS, *(self._regions[r] for r in old)]), new, old)
            for old, new in ended
        ]
        ended_class = [
            int(classes[new[0]]) if len(new) else self._region_class[old[0]] for old, new in ended
        ]
        self._regions, self._region_class = regions, region_class
        self._set_border(polygons, opens, piece_region)
        finished = ~opens & ~in_group
        yield polygons[finished], classes[finished]
        # One region at a time, and no reference to it kept here while the caller writes it.
        for (records, new, _), class_id in zip(ended_records, ended_class, strict=True):
            assembled = _assemble(self._store, records, polygons[new], self._tops)
            if isinstance(assembled, RingAssembly):
                yield LargeRegion(assembled, class_id)
            else:
                yield assembled, np.array([class_id])

    def retained(self) -> Retained:
        """What is kept between strips: call after ``end_strip`` was consumed."""
        held = np.concatenate([_EMPTY_GEOMS, *self._held])
        border = 0
        if self._border is not None and self._border_ids is not None:
            border = self._border.nbytes + self._border_ids.nbytes
        return Retained(
            vertices=int(shapely.get_num_coordinates(held).sum()),
            border_bytes=border,
            open_regions=len(self._regions),
            open_pieces=sum(len(records) for records in self._regions.values()),
            spilled_bytes=self._store.nbytes,
        )

    def _link(self, polygons: np.ndarray) -> list[tuple[list[int], np.ndarray]]:
        """Groups of open regions and new pieces that continue each other across the strip's top.

        Each group is (open region ids, indices of new pieces), both non-empty.
        """
        assert self._border is not None and self._border_ids is not None
        top, above, below = self._top, self._border, self._strip[0]
        same = (above == below) & (above != self.nodata)
        continues = np.zeros_like(same)
        continues[1:] = same[:-1] & (above[1:] == above[:-1])
        columns = np.flatnonzero(same & ~continues)  # first column of each run
        if not len(columns) or not len(polygons):
            return []
        x = columns + 0.5
        new_ids = _containing(polygons, shapely.points(x, np.full(x.shape, top + 0.5)))
        return _components(self._border_ids[columns], new_ids)

    def _set_border(self, polygons: np.ndarray, opens: np.ndarray, region: np.ndarray) -> None:
        """Record the strip's last row and, per column, the open region it lies in."""
        if self._last:
            self._border = self._border_ids = None
            return
        row = self._strip[-1]
        ids = np.full(row.shape, -1, dtype=np.int64)
        starts = np.flatnonzero(np.diff(row, prepend=np.int16(-1)))  # first column of each run
        valid = row[starts] != self.nodata
        if valid.any():
            x = starts[valid] + 0.5
            points = shapely.points(x, np.full(x.shape, self._bottom - 0.5))
            pieces = np.flatnonzero(opens)
            run_ids = region[pieces[_containing(polygons[pieces], points)]]
            lengths = np.diff(np.append(starts, len(row)))
            per_run = np.full(len(starts), -1, dtype=np.int64)
            per_run[valid] = run_ids
            ids = np.repeat(per_run, lengths)
        self._border, self._border_ids = row.copy(), ids


def _assemble(
    store: PieceStore, records: np.ndarray, new: np.ndarray, tops: list[int]
) -> np.ndarray | RingAssembly:
    """The polygon (a 1-element array) of a region that ended: its spilled pieces and ``new``.

    Pieces holding ``STREAM_BYTES`` of WKB or more are assembled out of core (``arcs``; ``new``
    is spilled first) unless GDAL is older than 3.7, whose polygons ``arcs`` cannot rely on.
    Below that, pieces of ``ARCS_VERTICES`` or more are linked from arcs too, into a polygon in
    memory (``arcs`` takes time in proportion to the region's vertices, where the overlay union's
    cost per vertex would make it most of the polygonizing time of a real map); smaller regions
    are unioned by overlay, which costs less per region.
    """
    if len(records) + len(new) == 1:
        return store.get(records) if len(records) else new
    size = int(records[:, 1].sum()) + 16 * int(shapely.get_num_coordinates(new).sum())
    if size < min(STREAM_BYTES, 16 * ARCS_VERTICES) or not GDAL_POLYGONS_VALID:
        return np.array([_merge_pieces(np.concatenate((store.get(records), new)))])
    if len(new):
        records = np.concatenate((records, store.put(new)))
    assembly = assemble(store, records, tops)
    if assembly is None:
        warnings.warn(  # not expected: arcs checks what GDAL's polygons guarantee
            "a large region's pieces are not as expected: assembled in memory", stacklevel=2
        )
        return np.array([_merge_pieces(store.get(records))])
    if size >= STREAM_BYTES:
        return assembly
    return np.array([assembly_polygon(assembly)])


def assembly_polygon(assembly: RingAssembly) -> shapely.Geometry:
    """The polygon of ``assembly`` in memory (pixel coordinates), its rings as ``arcs`` links
    them: valid by construction, without the collinear vertices an overlay leaves at seams."""
    counts: list[np.ndarray] = []
    coords: list[np.ndarray] = []
    for part in assembly.parts():
        counts.append(np.asarray(part.counts, dtype=np.int64))
        coords.append(np.asarray(part.coords, dtype=np.float64))
    ring_offsets = np.concatenate(([0], np.cumsum(np.concatenate(counts))))
    return shapely.from_ragged_array(
        shapely.GeometryType.POLYGON,
        np.concatenate(coords),
        (ring_offsets, np.array([0, len(ring_offsets) - 1])),
    )[0]


def _merge_pieces(pieces: np.ndarray) -> shapely.Geometry:
    """The union of one region's pieces, all in memory: an overlay union of their shells.

    The pieces meet along strip borders. Only their shells are unioned: a hole of a piece never
    reaches a strip border (a pixel next to the border is connected to the other strip, so it
    cannot be enclosed) and nothing of another piece covers it, so every hole survives the union
    as it is. The result is valid when the pieces are: the shells' union is checked (cheap, no
    holes), and each hole lies inside it, apart from the other holes.
    """
    union = shapely.union_all(shapely.polygons(shapely.get_exterior_ring(pieces)))
    if not _valid_polygon(union):  # not expected: the pieces meet along edges
        return shapely.union_all(pieces)
    rings, owner = shapely.get_rings(pieces, return_index=True)
    is_hole = np.ones(len(rings), dtype=bool)
    is_hole[np.flatnonzero(np.diff(owner, prepend=-1))] = False  # first ring of each is the shell
    holes = np.concatenate((shapely.get_rings(union)[1:], rings[is_hole]))
    return shapely.polygons(shapely.get_exterior_ring(union), holes=holes)


def _valid_polygon(geometry: shapely.Geometry) -> bool:
    return bool(
        shapely.get_type_id(geometry) == shapely.GeometryType.POLYGON and shapely.is_valid(geometry)
    )


def _containing(polygons: np.ndarray, points: np.ndarray) -> np.ndarray:
    """For each point (a pixel centre), the index of the one polygon that contains it."""
    point_index, polygon_index = shapely.STRtree(polygons).query(points, predicate="intersects")
    found = np.full(len(points), -1, dtype=np.int64)
    found[point_index] = polygon_index
    if (found < 0).any():
        raise RuntimeError("a pixel centre on a strip border lies in no polygon")
    return found


def _components(old_ids: np.ndarray, new_ids: np.ndarray) -> list[tuple[list[int], np.ndarray]]:
    """Connected groups of the bipartite links ``old_ids[i] -- new_ids[i]`` (union-find).

    Each group is returned as (old region ids, new piece indices).
    """
    parent: dict[tuple[int, int], tuple[int, int]] = {}

    def find(node: tuple[int, int]) -> tuple[int, int]:
        root = node
        while parent.setdefault(root, root) != root:
            root = parent[root]
        while parent[node] != root:  # path compression
            parent[node], node = root, parent[node]
        return root

    for old, new in zip(old_ids.tolist(), new_ids.tolist(), strict=True):
        parent[find((0, old))] = find((1, new))
    members: dict[tuple[int, int], tuple[list[int], list[int]]] = {}
    for node in parent:
        side, index = node
        members.setdefault(find(node), ([], []))[side].append(index)
    return [(old, np.array(new)) for old, new in members.values()]
