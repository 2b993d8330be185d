"""Polygons of a class raster while it is being produced: rows in, a GeoPackage layer out.

A class raster produced row by row (``s5geo predict --out X.gpkg``) need not be written, copied to a
COG and read back before it is polygonized: the blender finishes rows in order, so each strip of the
class raster is final long before inference ends. ``RowFedPolygonizer`` takes those rows as they
come (``put``, from the producing thread) and runs the same strip loop as ``polygonize_raster``
(``polygonize.write_layer``) in a worker thread, on the rows held in memory. The polygons are the
ones ``polygonize_raster`` makes of the same raster: the same strips, the same code, the same rows
(the class raster is written losslessly).

Why a thread: the polygons are then made while ONNX Runtime runs (it releases the GIL), so they do
not follow inference; when the last row arrives the worker is about a strip behind. On cores that
inference keeps busy the polygons still cost their CPU time (docs/BENCHMARKS.md). Memory: the rows
wait in a buffer of about two strips (plus the sieve's halo and the block being handed over); when
the worker falls behind, ``put`` waits, so the producer, not the buffer, slows down. The worker's
own working set is ``polygonize_raster``'s.

Errors: an exception in the worker is raised again by the next ``put`` or by ``finish``;
``abort`` (also on leaving the context with an exception) stops the worker at its next read and
waits for it, so the caller can then remove the partial GeoPackage (``s5geo.io.atomic``).
Progress is reported from the caller's thread only (``finish``): a QGIS feedback object must not
be called from a worker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import numpy as np

from s5geo.errors import Cancelled
from s5geo.modelfile import NODATA
from s5geo.vector.area import GroundMetrics
from s5geo.vector.polygonize import (
    VectorResult,
    check_layer_arguments,
    strip_rows,
    write_layer,
)
from s5geo.vector.sieve import WINDOW_PIXELS

# How often ``finish`` wakes to report progress while it waits for the worker (seconds).
PROGRESS_SECONDS = 0.2


class _Aborted(Exception):
    """Raised in the worker when the producer gave up: ends its strip loop at once."""


class _RowBuffer:
    """Rows handed over by the producer, read by the worker strip by strip (a ``RowSource``).

    Holds the rows from the first one the worker may still read to the last one received. The
    producer waits while it holds ``capacity`` rows or more and the worker has all it asked for,
    so the buffer stays within ``capacity`` plus one handed-over block; it never waits for a
    worker that waits for rows (no deadlock).
    """

    def __init__(self, width: int, height: int, capacity: int, keep: int) -> None:
        self.width, self.height = width, height
        self.capacity = capacity
        self.keep = keep  # rows kept above the worker's last read (the sieve halo may reach back)
        self._cond = threading.Condition()
        self._blocks: list[tuple[int, np.ndarray]] = []  # (first row, rows), in order
        self._first = 0  # first row held
        self._end = 0  # rows received
        self._wanted = 0  # end of the rows the worker waits for
        self._aborted = False
        self._worker_done = False

    def put(self, row: int, classes: np.ndarray) -> None:
        """Append rows ``row``.. (the next ones); wait while the buffer is full."""
        with self._cond:
            if row != self._end or classes.shape[1:] != (self.width,):
                raise RuntimeError(f"rows out of order: got {row}, expected {self._end}")
            while (
                self._end - self._first >= self.capacity
                and self._wanted <= self._end
                and not (self._aborted or self._worker_done)
            ):
                self._cond.wait()
            self._blocks.append((row, classes))
            self._end += len(classes)
            self._cond.notify_all()

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start``..``stop``, waiting until they arrive (worker thread)."""
        with self._cond:
            self._wanted = stop
            self._cond.notify_all()
            while self._end < stop and not self._aborted:
                self._cond.wait()
            if self._aborted:
                raise _Aborted()
            if start < self._first:
                raise RuntimeError(f"row {start} was released already (held from {self._first})")
            self._release(max(0, start - self.keep))
            parts = []
            for first, block in self._blocks:
                a, b = max(start, first), min(stop, first + len(block))
                if a < b:
                    parts.append(block[a - first : b - first])
            self._cond.notify_all()
        return parts[0].copy() if len(parts) == 1 else np.concatenate(parts)

    def abort(self) -> None:
        with self._cond:
            self._aborted = True
            self._cond.notify_all()

    def worker_done(self) -> None:
        with self._cond:
            self._worker_done = True
            self._blocks = []
            self._cond.notify_all()

    @property
    def aborted(self) -> bool:
        return self._aborted

    @property
    def held_rows(self) -> int:
        with self._cond:
            return sum(len(block) for _, block in self._blocks)

    def _release(self, before: int) -> None:
        """Drop the blocks wholly above row ``before``."""
        while self._blocks and self._blocks[0][0] + len(self._blocks[0][1]) <= before:
            first, block = self._blocks.pop(0)
            self._first = first + len(block)


class RowFedPolygonizer:
    """``polygonize_raster`` of a class raster fed row by row, in a worker thread (module doc).

    ``width``, ``height``, ``crs_wkt`` and ``transform`` describe the raster (a CRS is needed:
    areas are in m²); the other arguments are ``polygonize_raster``'s. Feed every row once, in
    order, through ``put``; then ``finish``. Use as a context manager, or call ``abort`` on
    failure.
    """

    def __init__(
        self,
        out: str | Path,
        *,
        width: int,
        height: int,
        metrics: GroundMetrics,
        crs_wkt: str,
        class_names: dict[int, str],
        class_colors: dict[int, str],
        nodata: int = NODATA,
        min_area_m2: float = 0.0,
        simplify_m: float = 0.0,
        layer: str = "landcover",
        block_rows: int = 1024,
    ) -> None:
        out = Path(out)
        check_layer_arguments(out, block_rows, min_area_m2, simplify_m)
        rows = strip_rows(block_rows, width)
        # The sieve reads up to its window of rows around a strip (sieve.halo_rows caps it).
        halo = max(0, (WINDOW_PIXELS // max(width, 1) - rows) // 2) if min_area_m2 > 0 else 0
        self.width, self.height = width, height
        self._buffer = _RowBuffer(width, height, capacity=2 * rows + 2 * halo, keep=rows + halo)
        self._rows_done = 0
        self._result: VectorResult | None = None
        self._error: BaseException | None = None
        self.failure: BaseException | None = None  # the worker's exception, once raised again

        def progress(done: int, total: int) -> None:
            self._rows_done = done
            if self._buffer.aborted:  # after the last read, stop between strips too
                raise _Aborted()

        def work() -> None:
            try:
                self._result = write_layer(
                    self._buffer,
                    out,
                    metrics=metrics,
                    crs_wkt=crs_wkt,
                    nodata=nodata,
                    class_names=class_names,
                    class_colors=class_colors,
                    min_area_m2=min_area_m2,
                    simplify_m=simplify_m,
                    layer=layer,
                    block_rows=block_rows,
                    progress=progress,
                )
            except _Aborted:
                pass
            except BaseException as error:  # re-raised in the caller's thread
                self._error = error
            finally:
                self._buffer.worker_done()

        self._thread = threading.Thread(target=work, name="s5geo-polygons", daemon=True)
        self._thread.start()

    def put(self, row: int, classes: np.ndarray) -> None:
        """Hand over class rows ``row``.. (uint8, full width); the next rows, in order.

        ``classes`` is kept, not copied, until its strip is polygonized: do not change it.
        Raises the worker's exception, if it failed.
        """
        self._raise_error()
        self._buffer.put(row, classes)

    def finish(self, progress: Callable[[int, int], None] | None = None) -> VectorResult:
        """Wait for the layer to be written; ``progress(rows_done, rows_total)`` is called from
        this thread meanwhile (an exception it raises, such as ``Cancelled``, aborts). Once the
        layer is written, every call returns its result at once."""
        try:
            while self._thread.is_alive():
                self._thread.join(PROGRESS_SECONDS)
                if progress is not None:
                    progress(self._rows_done, self.height)
        except BaseException:
            self.abort()
            raise
        self._raise_error()
        if self._result is None:
            raise Cancelled()  # aborted before it finished
        return self._result

    def abort(self) -> None:
        """Stop the worker at its next read of rows and wait for it."""
        self._buffer.abort()
        self._thread.join()

    def _raise_error(self) -> None:
        if self._error is not None:
            self.failure, self._error = self._error, None
            raise self.failure

    def __enter__(self) -> RowFedPolygonizer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.abort()
