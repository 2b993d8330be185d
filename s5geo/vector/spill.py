"""An anonymous temporary file of polygon pieces (WKB) that belong to regions still open.

The seam merge (``merge``) writes here the pieces of every region that continues below the
current strip and reads them back once, when the region ends; so memory never holds an open
region's vertices. The file lives in the output's folder, which is known to be writable and to
have room for the output (the system's temporary folder may be a small RAM-backed tmpfs), and it
is anonymous: ``tempfile.TemporaryFile`` opens it without a name on Linux (O_TMPFILE) or unlinks it
at once on other POSIX systems, and deletes it on close on Windows, so nothing is left behind even
when the process is killed. It only grows, by the WKB of each spilled piece: at most about the
size of the pieces of all regions that cross a strip border, less than the output layer.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import numpy as np
import shapely

READ_BYTES = 16 * 2**20
_EMPTY = np.empty(0, dtype=object)


class PieceStore:
    """Append polygons as WKB, get them back by their (offset, size) records."""

    def __init__(self, folder: str | Path) -> None:
        # Closed by close() or the context manager, which own the file for its whole life.
        self._file = tempfile.TemporaryFile(dir=folder, prefix=".s5geo-pieces-")  # noqa: SIM115
        self.nbytes = 0  # bytes written so far (the file's size)

    def put(self, polygons: np.ndarray) -> np.ndarray:
        """Write ``polygons``; return their records, an (n, 2) int64 array of offset and size."""
        blobs = shapely.to_wkb(polygons).tolist()
        sizes = np.fromiter(map(len, blobs), dtype=np.int64, count=len(blobs))
        offsets = self.nbytes + np.cumsum(sizes) - sizes
        self._file.seek(self.nbytes)
        self._file.write(b"".join(blobs))
        self.nbytes += int(sizes.sum())
        return np.column_stack((offsets, sizes))

    def get(self, records: np.ndarray) -> np.ndarray:
        """The polygons behind ``records`` (as returned by ``put``), in the same order."""
        return np.concatenate([_EMPTY, *self.chunks(records)])

    def read(self, offset: int, size: int) -> bytes:
        """``size`` bytes of the file from ``offset`` (``arcs`` reads rings of pieces this way)."""
        self._file.seek(offset)
        return self._file.read(size)

    def chunks(self, records: np.ndarray, chunk_bytes: int | None = None) -> Iterator[np.ndarray]:
        """The polygons behind ``records``, in order, about ``chunk_bytes`` (default
        ``READ_BYTES``) of WKB at a time.

        So the pieces of a large region can be handled without all being in memory at once.
        """
        chunk_bytes = READ_BYTES if chunk_bytes is None else chunk_bytes
        blobs: list[bytes] = []
        size = 0
        for offset, length in records.tolist():
            self._file.seek(offset)
            blobs.append(self._file.read(length))
            size += length
            if size >= chunk_bytes:
                yield shapely.from_wkb(np.array(blobs, dtype=object))
                blobs, size = [], 0
        if blobs:
            yield shapely.from_wkb(np.array(blobs, dtype=object))

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> PieceStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
