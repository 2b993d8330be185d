"""A large region's polygon in the CRS, produced as WKB a part at a time (never whole in memory).

``StreamedPolygon`` is what ``s5geo.io.gpkg`` writes into a feature's blob piece by piece (its
``StreamedGeometry``): the rings of an ``arcs.RingAssembly`` in parts of at most
``arcs.PART_POINTS`` coordinates, each moved to the CRS with the same arithmetic as every other
polygon (``shapes.affine_in_place``) and serialized as WKB ring data.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator

import numpy as np
from affine import Affine

from s5geo.vector.arcs import RingAssembly, RingPart
from s5geo.vector.shapes import affine_in_place

_WKB_POLYGON = 3


class StreamedPolygon:
    """The polygon of ``assembly`` (pixel coordinates) in the CRS of ``transform``."""

    def __init__(self, assembly: RingAssembly, transform: Affine) -> None:
        self.assembly = assembly
        self.transform = transform

    @property
    def wkb_size(self) -> int:
        """Bytes ``write_wkb`` writes."""
        return self.assembly.wkb_size

    def world_parts(self) -> Iterator[RingPart]:
        """The rings in WKB order (``RingAssembly.parts``), in CRS coordinates."""
        for counts, coords in self.assembly.parts():
            world = np.array(coords, dtype=np.float64)  # a copy: the part may be read-only
            affine_in_place(world, self.transform)
            yield RingPart(counts, world)

    def write_wkb(self, write: Callable[[bytes], object]) -> tuple[float, float, float, float]:
        """Write the polygon's WKB (little-endian) through ``write``, in order; return its
        envelope (xmin, ymin, xmax, ymax)."""
        write(struct.pack("<BII", 1, _WKB_POLYGON, self.assembly.ring_count))
        low = np.full(2, np.inf)
        high = np.full(2, -np.inf)
        for part in self.world_parts():
            if len(part.coords):
                low = np.minimum(low, part.coords.min(axis=0))
                high = np.maximum(high, part.coords.max(axis=0))
            write(part_wkb(part))
        return float(low[0]), float(low[1]), float(high[0]), float(high[1])


def part_wkb(part: RingPart) -> bytes:
    """WKB ring data of ``part``: each ring's point count (uint32) before its first point."""
    coords = np.ascontiguousarray(part.coords, dtype="<f8")
    counts = np.asarray(part.counts, dtype=np.int64)
    if not len(counts):
        return coords.tobytes()
    if len(counts) == 1:
        return struct.pack("<I", int(counts[0])) + coords.tobytes()
    # Many rings (a chunk of pieces' holes): place the counts and coordinates in one buffer.
    first_points = np.concatenate(([0], np.cumsum(counts)[:-1]))
    count_at = 4 * np.arange(len(counts)) + 16 * first_points  # byte offset of each count
    out = np.empty(4 * len(counts) + coords.nbytes, dtype=np.uint8)
    count_bytes = (count_at[:, None] + np.arange(4)).ravel()
    is_count = np.zeros(len(out), dtype=bool)
    is_count[count_bytes] = True
    out[count_bytes] = counts.astype("<u4").view(np.uint8)
    out[~is_count] = coords.view(np.uint8).ravel()
    return out.tobytes()
