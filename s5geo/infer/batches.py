"""Windows into model batches, read ahead in a thread: masked, normalised, resampled.

A reader thread (:func:`prefetch`) reads and normalises batches of windows ahead of inference;
reading (GDAL) and normalising (numpy) release the GIL, so it overlaps I/O with compute. Windows
that are wholly nodata are not run: a batch lists them as skipped, for the blender.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass

import numpy as np
import rasterio
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from s5geo.errors import UserError
from s5geo.infer.tiling import WindowPlan, blend_weights
from s5geo.io.scene import read_window, window_reader
from s5geo.modelfile import ModelInfo


@dataclass
class Batch:
    """Windows read for one inference call, and the nodata windows met before or among them."""

    keys: list[tuple[int, int]]  # (window row, window col) of windows that are run
    shapes: list[tuple[int, int, int, int]]  # (scene h, scene w, model h, model w)
    weights: list[np.ndarray]  # blend weight per window on the scene grid, 0 at nodata
    data: np.ndarray  # [n, C, T, T] normalised model input
    skipped: list[tuple[int, int]]  # wholly nodata windows before/among these


def _window_input(
    ds: rasterio.DatasetReader,
    win: Window,
    bands: tuple[int, ...],
    tile: int,
    scale: float,
    reader: Callable[[Window], tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(validity on the scene grid, raw model input [C, mh, mw], its validity), or None when the
    window is wholly nodata. With ``scale`` != 1 the input is resampled to the model's GSD."""
    if scale == 1.0:
        raw, valid = reader(win)
        return (valid, raw, valid) if valid.any() else None
    if np.dtype(ds.dtypes[0]).kind == "f":
        valid = reader(win)[1]  # GDAL's mask and NaN pixels, in one read (window_reader)
    else:
        valid = ds.dataset_mask(window=win) > 0
    if not valid.any():
        return None
    h, w = valid.shape
    mh, mw = min(tile, round(h / scale)), min(tile, round(w / scale))
    raw = read_window(ds, win, bands, out_shape=(mh, mw))
    raw = np.nan_to_num(raw, nan=0.0, posinf=0.0, neginf=0.0)  # those pixels are nodata
    rows = (np.arange(mh) * h // mh)[:, None]
    cols = (np.arange(mw) * w // mw)[None, :]
    return valid, raw, valid[rows, cols]  # nearest-neighbour mask on the model grid


def read_batches(
    ds: rasterio.DatasetReader,
    plan: WindowPlan,
    info: ModelInfo,
    tile: int,
    scale: float,
    batch_size: int,
    rows: range | None = None,
) -> Iterator[Batch]:
    """Read, mask and normalise windows into model batches (runs in the reader thread); with
    ``rows``, only the windows of those window rows."""
    bands = tuple(info.bands)
    std = np.asarray(info.std, np.float32)
    gain = (1.0 / (info.input_scale * std))[:, None, None]
    offset = (-np.asarray(info.mean, np.float32) / std)[:, None, None]
    fill = info.fill_values
    full_weight = blend_weights(plan.size)
    reader = window_reader(ds, bands)
    keys: list[tuple[int, int]] = []
    shapes: list[tuple[int, int, int, int]] = []
    weights: list[np.ndarray] = []
    skipped: list[tuple[int, int]] = []
    # Never more slots than the plan has windows: a large batch_size on a small scene is fine.
    data = np.zeros((min(batch_size, len(plan)), len(bands), tile, tile), np.float32)
    for r, c, win in plan.windows(rows):
        got = _window_input(ds, win, bands, tile, scale, reader)
        if got is None:
            skipped.append((r, c))
            continue
        valid, raw, model_valid = got
        h, w = valid.shape
        mh, mw = raw.shape[1:]
        i = len(keys)
        slot = data[i]
        slot[:] = fill  # padding and nodata sit at the band mean the network was trained around
        inside = slot[:, :mh, :mw]
        np.multiply(raw, gain, out=inside)
        inside += offset
        # A window smaller than the plan's size only occurs when the scene is smaller than a tile:
        # it is the only window, so any positive weight will do.
        weight = full_weight if (h, w) == full_weight.shape else np.ones((h, w), np.float32)
        if valid.all():  # most windows: no masking, and the shared weights (never written to)
            weights.append(weight)
        else:
            inside[:, ~model_valid] = fill[:, :, 0]
            weights.append(np.where(valid, weight, 0.0).astype(np.float32))
        keys.append((r, c))
        shapes.append((h, w, mh, mw))
        if len(keys) == batch_size:
            yield Batch(keys, shapes, weights, data[: len(keys)].copy(), skipped)
            keys, shapes, weights, skipped = [], [], [], []
    if keys or skipped:
        yield Batch(keys, shapes, weights, data[: len(keys)].copy(), skipped)


def readable(batches: Iterator[Batch], name: str) -> Iterator[Batch]:
    """``batches``, with GDAL's read errors (a truncated or corrupt file) as one clear message."""
    try:
        yield from batches
    except RasterioIOError as exc:
        # rasterio's own message is "Read failed. See previous exception": GDAL's is the cause.
        text = str(exc.__cause__ or exc).strip()
        first = text.splitlines()[0] if text else "read failed"
        raise UserError(
            f"{name}: its pixels cannot be read ({first}); the file may be truncated or corrupt"
        ) from None


def mark_last(it: Iterator[Batch], only_batch: bool) -> Iterator[tuple[Batch, bool]]:
    """Each batch, in order, with whether it is the last one that has windows to run.

    Looks ahead to the next batch with windows; batches of skipped windows only (a nodata collar
    at the scene's end) are held until then. The first batch with windows is not held: waiting
    for a second batch to be read would delay the first inference by a batch's reading time. It
    is the last one when the plan holds no more windows than a batch (``only_batch``); otherwise
    it is taken as not the last, which is wrong only when every later window is nodata, and then
    only the arena's release after it is missed.
    """
    pending: list[Batch] = []
    first = True
    for batch in it:
        if batch.keys and first:
            first = False
            yield from ((held, False) for held in pending)
            pending = []
            if not only_batch:
                yield batch, False
                continue
        elif batch.keys:
            yield from ((held, False) for held in pending)
            pending = []
        pending.append(batch)
    last_run = max((i for i, held in enumerate(pending) if held.keys), default=-1)
    yield from ((held, i == last_run) for i, held in enumerate(pending))


def prefetch(it: Iterator[Batch], depth: int = 2) -> Generator[Batch, None, None]:
    """Run ``it`` in a thread, ``depth`` batches ahead, so reading overlaps inference.

    Reading (GDAL) and normalising (numpy) release the GIL, so this overlaps I/O with compute.
    Errors in the reader are re-raised in the caller; closing the generator stops the reader.
    """
    q: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item: object) -> bool:
        """Queue ``item`` unless the consumer stopped (a blocking put would then never return,
        and closing would wait for the join's timeout)."""
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in it:
                if not put(item):
                    return
            put(done)
        except BaseException as exc:  # handed to the consumer
            put(exc)

    thread = threading.Thread(target=work, name="s5geo-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, Batch)
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)
