"""A large region's polygon assembled out of core: its pieces' shells cut into arcs, then linked.

A region that crosses strip borders is spilled as pieces (``spill``), each a valid polygon of one
strip in pixel coordinates (exact integers, rectilinear edges, GDAL's 4-connected output). Their
union is the region's polygon. GEOS would need all of it in memory, several times over; here it
is built from the spill file in two sequential passes holding one or two strips' worth of pieces
and a table of *arcs*, never the region's coordinates:

- Pieces of one region share edges only along strip-border lines: a pixel edge inside a strip
  with the same region on both sides lies inside one piece. On a border line ``y = b`` the pieces
  above (their bottom edges) and below (their top edges) overlap in *shared segments*, which are
  interior to the union. The union's boundary is every piece's shell minus its shared segments;
  cutting the shells there leaves open chains, the arcs.
- Pieces also touch at *pinch points*: two pieces of the region, diagonal at a pixel corner, the
  other two pixels not in the region. The shells are cut there too. (Such points are where two
  pieces' shells share a vertex: inside a strip between pieces of that strip, on a border line
  between an end of a piece's edge above and one below that is not the end of a shared segment.)
- At a cut point one arc ends and one starts, from pieces on either side of the line (the end of
  a shared segment), or two arcs end and two start (a pinch). Each arc ending there goes on with
  the arc starting there *from the other piece*. At a pinch that rule keeps each ring on the
  boundary of one connected part of the region's complement, which is what OGC validity asks: the
  rings through a pinch are two different rings touching at one point (a hole touching the shell
  or another hole), never one ring touching itself, as GDAL's polygonizer writes them.
- The linked arcs form closed rings. All pieces' shells turn the same way (GDAL's), so the ring
  that turns that way is the union's shell (there is exactly one: the region is 4-connected) and
  the others, turning the opposite way, are holes the union encloses. The pieces' own holes are
  carried over unchanged: a hole of a piece never touches a strip border (a pixel on the strip's
  edge row is not enclosed within the strip) and no other piece lies in it.

Pass 1 (``assemble``) reads the pieces strip by strip, finds the cut points, cuts each shell and
keeps per arc its piece, the range of the piece's shell vertices it covers, its end points and
its share of the shoelace sum; then it links the arcs into rings. Memory: the arcs (about 100
bytes each, two per shared segment or pinch: about 56,000 for a 13-million-vertex region crossing
95 strip borders) and the pieces of two strips. Pass 2 (``RingAssembly.parts``) streams the
rings in WKB order: each arc's vertices read from the spill file by offset, then every piece's
holes, a chunk at a time. ``assemble`` returns None when the pieces are not as described (not
expected from GDAL 3.7 and later); the caller then assembles in memory.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import shapely

from s5geo.vector.spill import PieceStore

# A piece's WKB as shapely writes it (little-endian, 2D Polygon): byte order (1 byte), type (4),
# ring count (4), then per ring its point count (4) and x, y float64 per point.
_SHELL_COORDS = 13  # offset of the shell's first coordinate in a piece's WKB
_POINT_BYTES = 16
PART_POINTS = 1 << 16  # coordinates per part streamed by ``RingAssembly.parts``
# WKB of pieces read at a time (and held as shapely polygons, about 3 times as much).
READ_BYTES = 2**21


class RingPart(NamedTuple):
    """Part of a polygon's rings in WKB order: coordinates with the counts of rings starting here.

    A part either starts rings at its first coordinate (``counts[j]`` is the number of points of
    the j-th ring starting here, which begins at ``coords[sum(counts[:j])]``; the last one may go
    on in later parts) or, with no counts, goes on with the ring left open by the previous part.
    """

    counts: np.ndarray
    coords: np.ndarray


@dataclass(frozen=True)
class RingAssembly:
    """The polygon of a large region, as rings of arcs of its spilled pieces (``parts``).

    ``n_points``: coordinates of all rings (closing points included); ``pixel_area`` and
    ``pixel_bounds`` (xmin, ymin, xmax, ymax) are in pixel units.
    """

    store: PieceStore
    n_points: int
    ring_count: int
    pixel_area: float
    pixel_bounds: tuple[float, float, float, float]
    arcs: _Arcs
    cycles: list[np.ndarray]  # arc ids of each linked ring, in order; the shell first
    cycle_sizes: list[int]  # points of each linked ring, closing point included
    hole_records: np.ndarray  # (offset, size) of the pieces that have holes, in file order

    @property
    def wkb_size(self) -> int:
        """Bytes of the polygon's WKB: byte order, type, ring count, then the rings."""
        return 9 + 4 * self.ring_count + _POINT_BYTES * self.n_points

    def parts(self) -> Iterator[RingPart]:
        """The rings in WKB order (pixel coordinates): the shell, enclosed holes, pieces' holes.

        A linked ring comes in parts of at most ``PART_POINTS`` coordinates (plus its closing
        point); the pieces' holes come a few pieces (``READ_BYTES`` of WKB) at a time.
        """
        arcs = self.arcs
        for cycle, size in zip(self.cycles, self.cycle_sizes, strict=True):
            counts = np.array([size], dtype=np.int64)
            pending: list[np.ndarray] = []
            held = 0
            first: np.ndarray | None = None
            for arc in cycle.tolist():
                start = np.array([[arcs.sx[arc], arcs.sy[arc]]], dtype=np.float64)
                spans = list(self._shell_spans(arc))
                if not arcs.drop_start[arc]:
                    spans.insert(0, (-1, 1))  # the arc's start point
                    first = start if first is None else first
                for vertex, length in spans:
                    if held + length > PART_POINTS:
                        yield RingPart(counts, np.concatenate(pending))
                        counts, pending, held = counts[:0], [], 0
                    pending.append(start if vertex < 0 else self._read_shell(arc, vertex, length))
                    held += length
            assert first is not None  # the start arc of a ring keeps its first point
            pending.append(first)  # close the ring
            yield RingPart(counts, np.concatenate(pending))
        for pieces in self.store.chunks(self.hole_records, READ_BYTES):
            _, coords, (ring_offsets, polygon_offsets) = shapely.to_ragged_array(pieces)
            sizes = np.diff(ring_offsets)
            is_hole = np.ones(len(sizes), dtype=bool)
            is_hole[polygon_offsets[:-1]] = False  # the first ring of each piece is its shell
            yield RingPart(sizes[is_hole], coords[np.repeat(is_hole, sizes)])

    def _shell_spans(self, arc: int) -> Iterator[tuple[int, int]]:
        """(first vertex, count) of the runs of its piece's shell vertices that ``arc`` passes,
        in order, at most ``PART_POINTS`` each (the shell's vertices, without its closing one)."""
        count, first = int(self.arcs.count[arc]), int(self.arcs.first[arc])
        ring = int(self.arcs.ring_size[arc])
        while count:
            length = min(count, ring - first, PART_POINTS)
            yield first, length
            first, count = (first + length) % ring, count - length

    def _read_shell(self, arc: int, vertex: int, length: int) -> np.ndarray:
        """``length`` vertices of the shell of ``arc``'s piece from ``vertex``, from the file."""
        base = int(self.arcs.offset[arc]) + _SHELL_COORDS + _POINT_BYTES * vertex
        data = self.store.read(base, _POINT_BYTES * length)
        return np.frombuffer(data, dtype="<f8").reshape(-1, 2)


@dataclass
class _Arcs:
    """Columns of the arc table (one row per arc)."""

    offset: np.ndarray  # WKB offset of the arc's piece in the spill file
    ring_size: np.ndarray  # vertices of that piece's shell (without its closing point)
    first: np.ndarray  # index of the first shell vertex the arc passes (after its start point)
    count: np.ndarray  # how many shell vertices it passes
    sx: np.ndarray  # start point
    sy: np.ndarray
    drop_start: np.ndarray  # its start point is dropped: collinear with the arc before it


class _Unexpected(Exception):
    """The pieces are not as the module docstring describes: assemble them another way."""


def assemble(store: PieceStore, records: np.ndarray, tops: list[int]) -> RingAssembly | None:
    """Assemble the region whose pieces are spilled at ``records`` (offset, size rows).

    ``tops``: the first row of every strip, in order (the pieces of one strip were spilled
    together, strip after strip). None when the pieces are not as expected.
    """
    builder = _Builder(np.asarray(tops, dtype=np.int64))
    order = np.argsort(records[:, 0], kind="stable")  # file order: strip after strip
    try:
        for strip, pieces, piece_records in _strips(store, records[order], builder.tops):
            builder.add_strip(strip, pieces, piece_records)
        return builder.finish(store)
    except _Unexpected:
        return None


def _strips(
    store: PieceStore, records: np.ndarray, tops: np.ndarray
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(strip number, pieces, their records) for each strip, reading the pieces in file order."""
    held: list[np.ndarray] = []
    held_strips: list[np.ndarray] = []
    start = 0
    for chunk in store.chunks(records, READ_BYTES):
        strips = np.searchsorted(tops, shapely.bounds(chunk)[:, 1], side="right") - 1
        held.append(chunk)
        held_strips.append(strips)
        pieces, strip_of = np.concatenate(held), np.concatenate(held_strips)
        if np.any(np.diff(strip_of) < 0):
            raise _Unexpected("pieces out of strip order")
        cut = np.flatnonzero(np.diff(strip_of)) + 1
        bounds = [0, *cut.tolist()]
        for a, b in itertools.pairwise(bounds):
            yield int(strip_of[a]), pieces[a:b], records[start + a : start + b]
        last = bounds[-1]
        start += last
        held, held_strips = [pieces[last:]], [strip_of[last:]]
    if held and len(held[0]):
        yield int(held_strips[0][0]), held[0], records[start:]


@dataclass
class _StripShells:
    """The shells of one strip's pieces, as open rings concatenated (pass 1's working data)."""

    strip: int
    first_piece: int  # region-wide number of its first piece
    x: np.ndarray  # vertex coordinates (int64)
    y: np.ndarray
    ring: np.ndarray  # piece (region-wide number) of each vertex
    start: np.ndarray  # index of each piece's first vertex, and the total at the end
    pos: np.ndarray  # position of each vertex along its ring (edge lengths before it)
    perimeter: np.ndarray  # per piece
    step: np.ndarray  # (n, 2): unit direction of the edge leaving each vertex
    offsets: np.ndarray  # WKB offset of each piece
    bottom: tuple[np.ndarray, ...] = field(default=())  # edges on the line below the strip


class _Builder:
    """Pass 1: cut points, arcs, then links (module docstring)."""

    def __init__(self, tops: np.ndarray) -> None:
        self.tops = tops
        self.pieces = 0
        self.orientation = 0  # sign of the shells' shoelace sum (all alike)
        self.area = 0.0
        self.bounds = np.array([np.inf, np.inf, -np.inf, -np.inf])
        self.hole_records: list[np.ndarray] = []
        self.hole_rings = 0
        self.hole_points = 0
        self.pending: _StripShells | None = None  # pieces whose bottom line is not matched yet
        self.cuts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (piece, lo, hi)
        self.pinches: list[tuple[np.ndarray, np.ndarray]] = []  # (piece, position)
        self.arc_rows: list[tuple[np.ndarray, ...]] = []

    def add_strip(self, strip: int, pieces: np.ndarray, records: np.ndarray) -> None:
        """Take the region's pieces of one strip (strips in order)."""
        shells = self._shells(strip, pieces, records)
        self._pinches_within(shells)
        previous = self.pending
        if previous is not None and previous.strip == strip - 1:
            self._match_line(previous, shells, int(self.tops[strip]))
        if previous is not None:
            self._cut(previous)
        if strip + 1 < len(self.tops):
            shells.bottom = _line_edges(shells, int(self.tops[strip + 1]))
        self.pending = shells

    def finish(self, store: PieceStore) -> RingAssembly:
        """Cut the last strip's shells, link all arcs into rings."""
        if self.pending is not None:
            self._cut(self.pending)
        columns = [np.concatenate(c) for c in zip(*self.arc_rows, strict=True)]
        piece, offset, ring_size, first, count, sx, sy, ex, ey, d0, d1, twice_area = columns
        following = _link(piece, sx, sy, ex, ey)
        cycles = _cycles(following)
        previous = np.empty_like(following)
        previous[following] = np.arange(len(following))
        drop_start = d1[previous] == d0  # straight on through the cut point: no vertex there
        sums = [int(twice_area[c].sum()) for c in cycles]
        shells = [i for i, s in enumerate(sums) if np.sign(s) == self.orientation]
        if len(shells) != 1 or any(s == 0 for s in sums):
            raise _Unexpected(f"{len(shells)} outer rings")
        ordered = [cycles[shells[0]]] + [c for i, c in enumerate(cycles) if i != shells[0]]
        sizes = []
        for n, cycle in enumerate(ordered):
            kept = np.flatnonzero(~drop_start[cycle])
            start = int(kept[0]) if len(kept) else 0
            ordered[n] = cycle = np.roll(cycle, -start)
            drop_start[cycle[0]] = False  # a ring starts at a point it keeps
            sizes.append(int((1 + count[cycle]).sum() - drop_start[cycle].sum()) + 1)
        arcs = _Arcs(offset, ring_size, first, count, sx, sy, drop_start)
        hole_records = np.concatenate([np.empty((0, 2), dtype=np.int64), *self.hole_records])
        return RingAssembly(
            store=store,
            n_points=sum(sizes) + self.hole_points,
            ring_count=len(ordered) + self.hole_rings,
            pixel_area=self.area,
            pixel_bounds=(
                float(self.bounds[0]),
                float(self.bounds[1]),
                float(self.bounds[2]),
                float(self.bounds[3]),
            ),
            arcs=arcs,
            cycles=ordered,
            cycle_sizes=sizes,
            hole_records=hole_records,
        )

    def _shells(self, strip: int, pieces: np.ndarray, records: np.ndarray) -> _StripShells:
        """Open shell rings of one strip's pieces, with edge positions; totals and holes noted."""
        self.area += float(shapely.area(pieces).sum())
        bounds = shapely.bounds(pieces)
        self.bounds[:2] = np.minimum(self.bounds[:2], bounds[:, :2].min(axis=0))
        self.bounds[2:] = np.maximum(self.bounds[2:], bounds[:, 2:].max(axis=0))
        holes = shapely.get_num_interior_rings(pieces)
        if holes.any():
            with_holes = holes > 0
            self.hole_records.append(records[with_holes])
            self.hole_rings += int(holes.sum())
            all_points = shapely.get_num_coordinates(pieces[with_holes])
            shell_points = shapely.get_num_coordinates(
                shapely.get_exterior_ring(pieces[with_holes])
            )
            self.hole_points += int((all_points - shell_points).sum())
        shells_only = shapely.polygons(shapely.get_exterior_ring(pieces))
        _, coords, (ring_offsets, _) = shapely.to_ragged_array(shells_only)
        del shells_only
        closing = ring_offsets[1:] - 1
        keep = np.ones(len(coords), dtype=bool)
        keep[closing] = False
        open_coords = coords[keep]
        as_int = open_coords.astype(np.int64)
        if not np.array_equal(as_int, open_coords):
            raise _Unexpected("pixel coordinates that are not integers")
        x, y = as_int[:, 0], as_int[:, 1]
        sizes = np.diff(ring_offsets) - 1
        start = np.concatenate(([0], np.cumsum(sizes)))
        ring = np.repeat(np.arange(len(pieces)) + self.pieces, sizes)
        following = np.arange(len(x)) + 1
        following[start[1:] - 1] = start[:-1]  # a ring's last vertex goes on to its first
        dx, dy = x[following] - x, y[following] - y
        if np.any((dx == 0) == (dy == 0)):
            raise _Unexpected("an edge that is not horizontal or vertical, or of no length")
        length = np.abs(dx) + np.abs(dy)
        pos = np.cumsum(length) - length
        pos -= pos[start[:-1]].repeat(sizes)
        perimeter = np.add.reduceat(length, start[:-1])
        twice_area = np.add.reduceat(x * y[following] - x[following] * y, start[:-1])
        signs = np.unique(np.sign(twice_area))
        if self.orientation == 0 and len(signs) == 1:
            self.orientation = int(signs[0])
        if len(signs) != 1 or signs[0] != self.orientation or self.orientation == 0:
            raise _Unexpected("shells that turn different ways")
        shells = _StripShells(
            strip=strip,
            first_piece=self.pieces,
            x=x,
            y=y,
            ring=ring,
            start=start,
            pos=pos,
            perimeter=perimeter,
            step=np.column_stack((np.sign(dx), np.sign(dy))),
            offsets=records[:, 0].copy(),
        )
        self.pieces += len(pieces)
        return shells

    def _pinches_within(self, shells: _StripShells) -> None:
        """Cut at vertices that two pieces of the strip share (diagonal pinches)."""
        key = (shells.y << 32) | shells.x
        order = np.argsort(key, kind="stable")
        same = np.flatnonzero(key[order][1:] == key[order][:-1])
        if not len(same):
            return
        if np.any(np.diff(same) == 1):
            raise _Unexpected("three shells through one point")
        a, b = order[same], order[same + 1]
        if np.any(shells.ring[a] == shells.ring[b]):
            raise _Unexpected("a shell that touches itself")
        both = np.concatenate((a, b))
        self.pinches.append((shells.ring[both], shells.pos[both]))

    def _match_line(self, above: _StripShells, below: _StripShells, line: int) -> None:
        """Cut the shells of two adjacent strips where they meet on their border ``line``."""
        a_piece, a_lo, a_hi, a_from, a_pos = above.bottom
        b_piece, b_lo, b_hi, b_from, b_pos = _line_edges(below, line)
        # Edges on one side are disjoint and sorted: overlapping pairs by binary search.
        low = np.searchsorted(b_hi, a_lo, side="right")
        high = np.searchsorted(b_lo, a_hi, side="left")
        n = np.maximum(high - low, 0)
        ia = np.repeat(np.arange(len(a_lo)), n)
        ib = low[ia] + np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
        s = np.maximum(a_lo[ia], b_lo[ib])
        e = np.minimum(a_hi[ia], b_hi[ib])
        shared = e > s
        ia, ib, s, e = ia[shared], ib[shared], s[shared], e[shared]
        for piece, origin, pos, index in (
            (a_piece, a_from, a_pos, ia),
            (b_piece, b_from, b_pos, ib),
        ):
            one = pos[index] + np.abs(s - origin[index])
            two = pos[index] + np.abs(e - origin[index])
            self.cuts.append((piece[index], np.minimum(one, two), np.maximum(one, two)))
        # Pinches across the line: a vertex above and one below at the same point that is not
        # an end of a shared segment.
        ends = np.unique(np.concatenate((s, e)))
        on_a = above.y == line
        on_b = below.y == line
        ax, bx = above.x[on_a], below.x[on_b]
        if len(np.unique(ax)) != len(ax) or len(np.unique(bx)) != len(bx):
            raise _Unexpected("two vertices at one point of a strip border")
        common = np.intersect1d(ax, bx)
        common = common[~np.isin(common, ends)]
        if len(common):
            for shells, on, xs in ((above, on_a, ax), (below, on_b, bx)):
                vertex = np.flatnonzero(on)[np.isin(xs, common)]
                self.pinches.append((shells.ring[vertex], shells.pos[vertex]))

    def _cut(self, shells: _StripShells) -> None:
        """Cut the shells of a strip whose both border lines are matched into arcs."""
        first, stop = shells.first_piece, shells.first_piece + len(shells.perimeter)
        cut_piece = np.concatenate([np.empty(0, dtype=np.int64), *(c[0] for c in self.cuts)])
        cut_lo = np.concatenate([np.empty(0, dtype=np.int64), *(c[1] for c in self.cuts)])
        cut_hi = np.concatenate([np.empty(0, dtype=np.int64), *(c[2] for c in self.cuts)])
        pin_piece = np.concatenate([np.empty(0, dtype=np.int64), *(p[0] for p in self.pinches)])
        pin_pos = np.concatenate([np.empty(0, dtype=np.int64), *(p[1] for p in self.pinches)])
        mine = (cut_piece >= first) & (cut_piece < stop)
        pin_mine = (pin_piece >= first) & (pin_piece < stop)
        self.cuts = [(cut_piece[~mine], cut_lo[~mine], cut_hi[~mine])]
        self.pinches = [(pin_piece[~pin_mine], pin_pos[~pin_mine])]
        cut_piece, cut_lo, cut_hi = cut_piece[mine], cut_lo[mine], cut_hi[mine]
        pin_piece, pin_pos = pin_piece[pin_mine], pin_pos[pin_mine]
        cut_order = np.lexsort((cut_lo, cut_piece))
        pin_order = np.lexsort((pin_pos, pin_piece))
        cut_split = np.searchsorted(cut_piece[cut_order], np.arange(first, stop + 1))
        pin_split = np.searchsorted(pin_piece[pin_order], np.arange(first, stop + 1))
        for k in range(stop - first):
            cuts = cut_order[cut_split[k] : cut_split[k + 1]]
            if not len(cuts):
                raise _Unexpected("a piece that shares no edge with the others")
            pins = pin_order[pin_split[k] : pin_split[k + 1]]
            self.arc_rows.append(_piece_arcs(shells, k, cut_lo[cuts], cut_hi[cuts], pin_pos[pins]))


def _line_edges(shells: _StripShells, line: int) -> tuple[np.ndarray, ...]:
    """Edges of ``shells`` on the horizontal ``line``, sorted: piece, lo, hi, from x, position."""
    following = np.arange(len(shells.x)) + 1
    following[shells.start[1:] - 1] = shells.start[:-1]
    on = np.flatnonzero((shells.y == line) & (shells.y[following] == line))
    x0, x1 = shells.x[on], shells.x[following[on]]
    lo = np.minimum(x0, x1)
    order = np.argsort(lo, kind="stable")
    on, x0, x1, lo = on[order], x0[order], x1[order], lo[order]
    hi = np.maximum(x0, x1)
    if np.any(lo[1:] < hi[:-1]):
        raise _Unexpected("overlapping edges on one side of a strip border")
    return shells.ring[on], lo, hi, x0, shells.pos[on]


def _piece_arcs(
    shells: _StripShells, k: int, cut_lo: np.ndarray, cut_hi: np.ndarray, pins: np.ndarray
) -> tuple[np.ndarray, ...]:
    """The arcs of piece ``k`` of ``shells``: its shell without the ranges ``cut_lo..cut_hi``
    (positions along the ring), split at the pinch positions ``pins``. One row per arc:
    piece, offset, ring size, first vertex, vertex count, start x, y, end x, y, direction codes
    of its first and last edges, and its shoelace sum (twice its signed area share).
    """
    a, b = int(shells.start[k]), int(shells.start[k + 1])
    n, perimeter = b - a, int(shells.perimeter[k])
    # Merge overlapping or touching ranges, also across the ring's start.
    order = np.argsort(cut_lo, kind="stable")
    lo, hi = cut_lo[order], cut_hi[order]
    reach = np.maximum.accumulate(hi)
    new = np.concatenate(([True], lo[1:] > reach[:-1]))
    starts = np.flatnonzero(new)
    lo, hi = lo[starts], np.maximum.reduceat(hi, starts)
    if len(lo) > 1 and lo[0] == 0 and hi[-1] == perimeter:
        lo, hi = lo[1:], np.concatenate((hi[1:-1], [hi[0] + perimeter]))
    if np.any(hi - lo >= perimeter):
        raise _Unexpected("a shell shared all round")
    # Kept stretches between removed ranges, then split at pinches: arcs from ts to te.
    gap_start, gap_end = hi, np.concatenate((lo[1:], [lo[0] + perimeter]))
    lifted = np.where(pins >= gap_start[0], pins, pins + perimeter)
    gap = np.searchsorted(gap_start, lifted, side="right") - 1
    if len(pins) and (
        np.any(gap < 0) or np.any(lifted <= gap_start[gap]) or np.any(lifted >= gap_end[gap])
    ):
        raise _Unexpected("a pinch on a shared segment")
    ts = np.sort(np.concatenate((gap_start, lifted)))
    te = np.sort(np.concatenate((lifted, gap_end)))
    # The ring twice over, so an arc past its first vertex is one slice.
    x = np.tile(shells.x[a:b], 2)
    y = np.tile(shells.y[a:b], 2)
    step = np.tile(shells.step[a:b], (2, 1))
    pos = np.concatenate((shells.pos[a:b], shells.pos[a:b] + perimeter))
    first = np.searchsorted(pos, ts, side="right")  # first vertex after the start point
    end = np.searchsorted(pos, te, side="left")  # vertices before the end point: up to end - 1
    i_s, i_e = first - 1, end - 1
    sx = x[i_s] + step[i_s, 0] * (ts - pos[i_s])
    sy = y[i_s] + step[i_s, 1] * (ts - pos[i_s])
    ex = x[i_e] + step[i_e, 0] * (te - pos[i_e])
    ey = y[i_e] + step[i_e, 1] * (te - pos[i_e])
    count = end - first
    # Shoelace terms of the ring's edges, summed from the start: arcs sum slices of them.
    term = x[:-1] * y[1:] - x[1:] * y[:-1]
    prefix = np.concatenate(([0], np.cumsum(term)))
    head = np.minimum(first, 2 * n - 1)  # an arc passing no vertex may start past the last one
    tail = np.maximum(end - 1, head)
    inner = prefix[tail] - prefix[head]
    first_x, first_y = np.where(count > 0, x[head], ex), np.where(count > 0, y[head], ey)
    last_x, last_y = np.where(count > 0, x[tail], sx), np.where(count > 0, y[tail], sy)
    twice_area = np.where(
        count > 0,
        (sx * first_y - first_x * sy) + inner + (last_x * ey - ex * last_y),
        sx * ey - ex * sy,
    )
    codes = step[:, 0] + 2 * step[:, 1]  # one code per direction
    arcs = len(ts)
    piece = np.full(arcs, shells.first_piece + k, dtype=np.int64)
    return (
        piece,
        np.full(arcs, shells.offsets[k], dtype=np.int64),
        np.full(arcs, n, dtype=np.int64),
        first % n,
        count,
        sx,
        sy,
        ex,
        ey,
        codes[i_s],
        codes[i_e],
        twice_area,
    )


def _link(
    piece: np.ndarray, sx: np.ndarray, sy: np.ndarray, ex: np.ndarray, ey: np.ndarray
) -> np.ndarray:
    """For each arc, the arc that follows it: the one starting where it ends, from another piece.

    At a pinch two arcs end and two start at one point: each goes on with the other piece's.
    """
    end_key, start_key = (ey << 32) | ex, (sy << 32) | sx
    ends = np.lexsort((piece, end_key))
    starts = np.lexsort((piece, start_key))
    keys = end_key[ends]
    if not np.array_equal(keys, start_key[starts]):
        raise _Unexpected("arcs that do not close up")
    new = np.concatenate(([True], keys[1:] != keys[:-1]))
    group = np.cumsum(new) - 1
    size = np.bincount(group)[group]
    if np.any(size > 2):
        raise _Unexpected("more than two arcs ending at one point")
    following = np.full(len(piece), -1, dtype=np.int64)
    single = size == 1
    following[ends[single]] = starts[single]
    pair = np.flatnonzero(new & (size == 2))
    e1, e2, s1, s2 = ends[pair], ends[pair + 1], starts[pair], starts[pair + 1]
    if np.any(piece[e1] != piece[s1]) or np.any(piece[e2] != piece[s2]):
        raise _Unexpected("a pinch between arcs of different pieces")
    following[e1], following[e2] = s2, s1
    if np.any(piece[following] == piece):
        raise _Unexpected("an arc followed by one of its own piece")
    return following


def _cycles(following: np.ndarray) -> list[np.ndarray]:
    """The cycles of the permutation ``following``, each as arc ids in order."""
    seen = np.zeros(len(following), dtype=bool)
    cycles = []
    nxt = following.tolist()
    for arc in range(len(nxt)):
        if seen[arc]:
            continue
        cycle = []
        while not seen[arc]:
            seen[arc] = True
            cycle.append(arc)
            arc = nxt[arc]
        cycles.append(np.array(cycle, dtype=np.int64))
    return cycles
