"""Refusing window batches that cannot fit in memory, before any work, with the numbers.

A batch of 10000 windows, or a 100000-px tile on a model with dynamic input size, asks numpy for
hundreds of GiB: without a check the run dies in numpy's ``_ArrayMemoryError`` (a traceback).
The estimate counts only the buffers s5geo itself allocates for one batch (the network's own
activations come on top and depend on the model), so it is a lower bound: a run it refuses
cannot succeed, and a run it lets through may still be large.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from s5geo.errors import ParameterError

FLOAT32 = 4
GIB = float(1 << 30)


@dataclass(frozen=True)
class BatchShape:
    """What sizes the buffers of one batch: ``tile`` on the model grid, ``window`` and
    ``overlap`` on the scene grid (they differ when the scene is resampled), ``width`` of the
    processed region, ``batch`` windows (at most the windows of the plan)."""

    batch: int
    bands: int
    classes: int
    tile: int
    window: tuple[int, int]  # (height, width) of a window on the scene grid
    overlap: int
    width: int
    confidence: bool


def batch_memory_bytes(shape: BatchShape) -> dict[str, int]:
    """Bytes of the buffers of one batch, by part: ``input`` (the batch being filled and the
    copy handed to inference), ``probabilities`` (the batch's output) and ``blending`` (the
    batch's blend weights, one window's weighted sums, the open overlap band of the region's
    width and the rows being finished)."""
    s = shape
    tile_px = s.tile * s.tile
    window_px = s.window[0] * s.window[1]
    band = (s.classes + 1) * FLOAT32 * s.overlap * s.width  # weighted sums and weight sum
    rows = s.window[0] * s.width * (2 if s.confidence else 1)  # uint8 classes (and confidence)
    return {
        "input": 2 * s.batch * s.bands * tile_px * FLOAT32,
        "probabilities": s.batch * s.classes * tile_px * FLOAT32,
        "blending": s.batch * window_px * FLOAT32
        + (s.classes + 1) * window_px * FLOAT32
        + band
        + rows,
    }


def available_memory_bytes() -> int | None:
    """Memory this process can still take: the system's available memory (Linux MemAvailable,
    else free physical pages), capped by the cgroup's limit in containers; None when unknown."""
    free = _meminfo_available()
    if free is None:
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):  # not on this platform
            free = None
    room = _cgroup_room()
    if free is None:
        return room
    return free if room is None else min(free, room)


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # the file counts in kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_room() -> int | None:
    """A cgroup v2 memory limit minus what the group already uses (containers see the host's
    MemAvailable, not their own limit)."""
    root = Path("/sys/fs/cgroup")
    try:
        limit = (root / "memory.max").read_text().strip()
        used = int((root / "memory.current").read_text().strip())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else max(int(limit) - used, 0)


def check_batch_memory(shape: BatchShape, batch_size: int, tile_from_model: bool) -> None:
    """Refuse a batch whose buffers alone exceed the memory available, in one line naming the
    parameters ``batch_size`` and ``tile_size`` with the numbers. ``tile_from_model``: the tile
    size is the model's ``tiles_size`` metadata rather than the caller's."""
    available = available_memory_bytes()
    parts = batch_memory_bytes(shape)
    need = sum(parts.values())
    if available is None or need <= available:
        return
    source = "the model's tiles_size" if tile_from_model else "{tile_size}"
    raise ParameterError(
        "a batch of {windows} of {tile} px (" + source + " {tile}, {batch_size} {batch}) needs "
        "at least {need:.1f} GiB of memory ({detail} GiB) but {available:.1f} GiB is available: "
        "use a smaller {tile_size} or {batch_size}",
        windows=f"{shape.batch} window{'s' if shape.batch > 1 else ''}",
        tile=shape.tile,
        batch=batch_size,
        need=need / GIB,
        detail=", ".join(f"{k} {v / GIB:.1f}" for k, v in parts.items()),
        available=available / GIB,
    )
