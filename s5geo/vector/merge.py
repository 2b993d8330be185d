"""Seam-free polygons across strips: a region that crosses strip borders becomes one polygon.

Strips are polygonized one at a time (pixel coordinates, see ``shapes``). A polygon that touches
its strip's bottom edge may continue in the next strip, so it stays *open*. When the next strip
arrives, an open polygon and a new one belong to the same region exactly when, in some column,
the pixel just above the border and the pixel just below it carry the same class: the two
regions share that pixel edge. Along a run of such columns with one class, the pixels above are
4-connected and so lie in one polygon, and likewise below; so one point per run, looked up in an
STRtree on each side, yields the pairs to merge. Union-find groups the pairs (a region can zigzag
across a border several times) and each group is merged by an overlay union of the pieces'
shells (``_merge_pieces``; the pieces meet along the border without shared vertices, which
``coverage_union`` would need). Merged and new polygons that touch the new strip's bottom edge
stay open; everything else is finished.

The open polygons are the only state kept between strips: regions touching the current border,
whole. A region that spans the whole raster is therefore held whole until the last strip, as it
must be to come out as one polygon.
"""

from __future__ import annotations

import numpy as np
import shapely

_EMPTY_GEOMS = np.empty(0, dtype=object)
_EMPTY_IDS = np.empty(0, dtype=np.int64)


class SeamMerger:
    """Merges each strip's polygons with the open polygons of the strips above it.

    Per strip: ``start_strip``, then ``add`` for each chunk of its polygons (returns those already
    finished: clear of both strip borders), then ``end_strip`` (returns those finished at the
    borders). Polygons on the borders wait in between; they are a thin line of the strip.
    """

    def __init__(self, nodata: int) -> None:
        self.nodata = nodata
        self._open = _EMPTY_GEOMS
        self._open_classes = _EMPTY_IDS
        self._border: np.ndarray | None = None  # class row just above the current strip
        self._strip = np.empty((0, 0), dtype=np.uint8)
        self._top = self._bottom = 0
        self._last = False
        self._held: list[np.ndarray] = []
        self._held_classes: list[np.ndarray] = []

    def start_strip(self, strip: np.ndarray, top: int, last: bool) -> None:
        """Begin the strip of class rows ``strip``, whose first row is raster row ``top``.

        ``last``: it is the raster's last strip, so nothing stays open after it.
        """
        self._strip, self._top, self._last = strip, top, last
        self._bottom = top + strip.shape[0]

    def add(self, polygons: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Take polygons of the current strip; return those that are already finished."""
        bounds = shapely.bounds(polygons)
        held = np.zeros(len(polygons), dtype=bool)
        if len(self._open):
            held |= bounds[:, 1] == self._top
        if not self._last:
            held |= bounds[:, 3] == self._bottom
        self._held.append(polygons[held])
        self._held_classes.append(classes[held])
        return polygons[~held], classes[~held]

    def end_strip(self) -> tuple[np.ndarray, np.ndarray]:
        """Merge the strip's border polygons across its top; return the polygons now finished."""
        polygons = np.concatenate([_EMPTY_GEOMS, *self._held])
        classes = np.concatenate([_EMPTY_IDS, *self._held_classes])
        self._held, self._held_classes = [], []
        ended = np.ones(len(self._open), dtype=bool)
        if len(self._open):
            polygons, classes, linked = self._merge_across(polygons, classes)
            ended = ~linked
        finished = [self._open[ended]]
        finished_classes = [self._open_classes[ended]]
        stays_open = np.zeros(len(polygons), dtype=bool)
        if not self._last and len(polygons):
            stays_open = shapely.bounds(polygons)[:, 3] == self._bottom
        self._open, self._open_classes = polygons[stays_open], classes[stays_open]
        self._border = self._strip[-1].copy()
        finished.append(polygons[~stays_open])
        finished_classes.append(classes[~stays_open])
        return np.concatenate(finished), np.concatenate(finished_classes)

    def _merge_across(
        self, polygons: np.ndarray, classes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Merge new polygons with the open ones they continue across the strip's top border.

        Returns the polygons with merged regions replacing their pieces, their classes, and a
        mask of the open polygons that were merged (the others ended at the border).
        """
        assert self._border is not None
        top, above, below = self._top, self._border, self._strip[0]
        same = (above == below) & (above != self.nodata)
        continues = np.zeros_like(same)
        continues[1:] = same[:-1] & (above[1:] == above[:-1])
        columns = np.flatnonzero(same & ~continues)  # first column of each run
        linked = np.zeros(len(self._open), dtype=bool)
        if not len(columns) or not len(polygons):
            return polygons, classes, linked
        x = columns + 0.5
        open_ids = _containing(self._open, shapely.points(x, np.full(x.shape, top - 0.5)))
        new_ids = _containing(polygons, shapely.points(x, np.full(x.shape, top + 0.5)))
        groups = _components(open_ids, new_ids)
        merged = np.empty(len(groups), dtype=object)
        merged_classes = np.empty(len(groups), dtype=np.int64)
        consumed = np.zeros(len(polygons), dtype=bool)
        for index, (old, new) in enumerate(groups):
            merged[index] = _merge_pieces(np.concatenate((self._open[old], polygons[new])))
            merged_classes[index] = classes[new[0]]
            linked[old] = True
            consumed[new] = True
        polygons = np.concatenate((polygons[~consumed], merged))
        classes = np.concatenate((classes[~consumed], merged_classes))
        return polygons, classes, linked


def _merge_pieces(pieces: np.ndarray) -> shapely.Geometry:
    """Union of polygons that continue each other across a strip border.

    Only the shells take part in the overlay: a hole of a piece never reaches the border (a pixel
    next to the border is connected to the other strip, so it cannot be enclosed) and nothing of
    the other strip covers it, so every hole survives the union as it is. Overlaying the shells
    alone and adding the pieces' holes back costs a fraction of a full union for regions with
    thousands of holes (a forest with its clearings), which are the ones spanning many strips.
    The result is valid when the pieces are: the shells' union is checked (cheap, no holes), and
    each hole lies inside it, apart from the other holes.
    """
    shells = shapely.polygons(shapely.get_exterior_ring(pieces))
    union = shapely.union_all(shells)
    if shapely.get_type_id(union) != shapely.GeometryType.POLYGON or not shapely.is_valid(union):
        return shapely.union_all(pieces)  # not expected: pieces meet along edges, overlay is exact
    rings, owner = shapely.get_rings(pieces, return_index=True)
    is_hole = np.ones(len(rings), dtype=bool)
    is_hole[np.flatnonzero(np.diff(owner, prepend=-1))] = False  # first ring of each is the shell
    holes = np.concatenate((shapely.get_rings(union)[1:], rings[is_hole]))
    return shapely.polygons(shapely.get_exterior_ring(union), holes=holes)


def _containing(polygons: np.ndarray, points: np.ndarray) -> np.ndarray:
    """For each point (a pixel centre), the index of the one polygon that contains it."""
    point_index, polygon_index = shapely.STRtree(polygons).query(points, predicate="intersects")
    found = np.full(len(points), -1, dtype=np.int64)
    found[point_index] = polygon_index
    if (found < 0).any():
        raise RuntimeError("a pixel centre on a strip border lies in no polygon")
    return found


def _components(open_ids: np.ndarray, new_ids: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Connected groups of the bipartite links ``open_ids[i] -- new_ids[i]`` (union-find).

    Each group is returned as (open polygon indices, new polygon indices).
    """
    parent: dict[tuple[int, int], tuple[int, int]] = {}

    def find(node: tuple[int, int]) -> tuple[int, int]:
        root = node
        while parent.setdefault(root, root) != root:
            root = parent[root]
        while parent[node] != root:  # path compression
            parent[node], node = root, parent[node]
        return root

    for old, new in zip(open_ids.tolist(), new_ids.tolist(), strict=True):
        parent[find((0, old))] = find((1, new))
    members: dict[tuple[int, int], tuple[list[int], list[int]]] = {}
    for node in parent:
        side, index = node
        members.setdefault(find(node), ([], []))[side].append(index)
    return [(np.array(old), np.array(new)) for old, new in members.values()]
