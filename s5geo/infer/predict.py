"""Streaming scene prediction: windows in, a land-cover COG (and confidence COG) out.

The scene is never loaded whole: a reader thread reads and normalises batches of windows ahead, an
inference thread runs ONNX Runtime on one batch while the calling thread blends the one before; the
blender turns overlapping window probabilities into finished rows, which go straight to disk, and
into the overviews by mode that the COG copy then takes as they are.
Memory is bounded by the batch and the overlap band, not by the scene size (measured in
docs/BENCHMARKS.md).
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from s5geo import __version__
from s5geo.errors import Cancelled, UserError
from s5geo.infer.blend import StreamingBlender
from s5geo.infer.familiarity import ConfidenceMeter, familiarity_warning
from s5geo.infer.memory import BatchShape, check_batch_memory
from s5geo.infer.resample import resize_probs
from s5geo.infer.runtime import Model, load_model
from s5geo.infer.tiling import WindowPlan, blend_weights
from s5geo.io.atomic import OutputSet, atomic_outputs
from s5geo.io.overviews import StreamingOverviews
from s5geo.io.qgis_style import raster_qml
from s5geo.io.quicklook import write_quicklook
from s5geo.io.raster import (
    GDAL_CACHE_BYTES,
    BlockRowWriter,
    GridSpec,
    category_names_aux_xml,
    write_class_cog,
    write_confidence_cog,
)
from s5geo.io.scene import (
    check_readable,
    ground_sample_distance_m,
    is_georeferenced,
    open_scene,
    read_window,
    refuse_gcp_only,
    window_reader,
)
from s5geo.modelfile import ModelInfo

# Resample to the model's ground sample distance only when the scene's differs by more than this
# fraction, and only within a sane range (resampling cannot rescue a 0.5 m model on 30 m imagery).
GSD_TOLERANCE = 0.10
GSD_MAX_FACTOR = 4.0
# Rows of output counted per class at a time (see emit in predict_into).
COUNT_ROWS = 16


@dataclass(frozen=True)
class Progress:
    """A progress report: ``fraction`` is of the whole job, ``done``/``total`` of this stage."""

    stage: str
    done: int
    total: int
    fraction: float
    pixels_per_second: float
    message: str


# A callback returning False asks to cancel (the QGIS plugin maps its Cancel button to that).
ProgressFn = Callable[[Progress], "bool | None"]


@dataclass
class PredictResult:
    """What a prediction run did."""

    raster: Path
    confidence: Path | None
    provider: str
    width: int
    height: int
    windows_run: int
    windows_skipped: int
    tile_size: int
    overlap: int
    scale: float  # scene pixels per model pixel (1.0 = native resolution)
    seconds: float
    class_pixels: dict[int, int]
    mean_confidence: float | None = None  # highest class probability, sampled (familiarity)
    warnings: list[str] = field(default_factory=list)

    @property
    def megapixels_per_second(self) -> float:
        return self.width * self.height / 1e6 / max(self.seconds, 1e-9)


def check_suffix(path: Path, suffixes: tuple[str, ...], what: str) -> None:
    """Refuse an output whose extension names another format than the one written."""
    if path.suffix.lower() not in suffixes:
        raise UserError(
            f"{what} {path} is written as {suffixes[0][1:].upper()}: "
            f"give it a name ending in {' or '.join(suffixes)}"
        )


def check_scene_fits(info: ModelInfo, ds: rasterio.DatasetReader, name: str) -> None:
    """Refuse a scene that lacks a band the model reads, or has a data type it cannot use."""
    missing = [b for b in info.bands if b > ds.count]
    if missing:
        raise UserError(
            f"{name} has {ds.count} band(s) but the model reads bands "
            f"{', '.join(map(str, info.bands))} (it needs {len(info.bands)})"
        )
    if any(np.dtype(d).kind == "c" for d in ds.dtypes):
        raise UserError(f"{name} has complex-valued bands, which a land-cover model cannot use")


def _region(ds: rasterio.DatasetReader, bounds: Sequence[float] | None, name: str) -> Window:
    """The scene window covering ``bounds`` (xmin, ymin, xmax, ymax in the scene's CRS; in
    pixel coordinates, column and row, for a scene without georeferencing).

    Rounded outwards to whole pixels: every part of the extent is covered, and an extent inside
    one pixel gives that pixel. The corners go through the inverse geotransform, so any
    orientation works: north-up, south-up (positive y pixel size) and GDAL's identity
    transform of a scene without georeferencing, where y grows downwards.
    """
    if bounds is None:
        return Window(0, 0, ds.width, ds.height)
    box = tuple(float(v) for v in bounds)
    if len(box) != 4 or not all(math.isfinite(v) for v in box):
        raise UserError(f"bounds must be four finite numbers xmin, ymin, xmax, ymax, not {box}")
    xmin, ymin, xmax, ymax = box
    inv = ~ds.transform  # written out: affine deprecates ``*`` and older affines lack ``@``
    corners = [(x, y) for x in (xmin, xmax) for y in (ymin, ymax)]
    cols = [inv.a * x + inv.b * y + inv.c for x, y in corners]
    rows = [inv.d * x + inv.e * y + inv.f for x, y in corners]
    col0, col1 = _outwards(min(cols), max(cols), ds.width)
    row0, row1 = _outwards(min(rows), max(rows), ds.height)
    if col1 <= col0 or row1 <= row0:
        raise UserError(f"the processing extent {box} does not overlap {name}{_covers(ds)}")
    return Window(col0, row0, col1 - col0, row1 - row0)


def _outwards(lo: float, hi: float, size: int) -> tuple[int, int]:
    """Pixel range [first, end) covering ``lo``..``hi`` (at least one pixel), clipped to the
    scene; the tolerance keeps an edge that lies on a pixel boundary from taking the next one."""
    first = math.floor(lo + 1e-6)
    end = max(math.ceil(hi - 1e-6), first + 1)
    return max(first, 0), min(end, size)


def _covers(ds: rasterio.DatasetReader) -> str:
    """What the scene covers, for the message of an extent outside it."""
    if not is_georeferenced(ds):
        return (
            f", which has no georeferencing: give the extent in pixels (column, row) within "
            f"0,0,{ds.width},{ds.height}"
        )
    b = ds.bounds  # bottom lies above top on a south-up scene
    ys = sorted((b.bottom, b.top))
    return f", which covers {b.left:g},{ys[0]:g},{b.right:g},{ys[1]:g}"


def _scale(info: ModelInfo, ds: rasterio.DatasetReader, resample: bool) -> tuple[float, list[str]]:
    """Scene pixels per model pixel, and any warning about the resolution mismatch."""
    gsd = ground_sample_distance_m(ds)
    if not resample or not info.resolution_cm or gsd is None:
        return 1.0, []
    factor = info.resolution_cm / 100.0 / gsd
    if abs(factor - 1.0) <= GSD_TOLERANCE:
        return 1.0, []
    if not 1 / GSD_MAX_FACTOR <= factor <= GSD_MAX_FACTOR:
        return 1.0, [
            f"the scene's pixels ({gsd:.2f} m) are far from the model's "
            f"({info.resolution_cm / 100:.2f} m); predicting at native resolution, "
            "expect poor results"
        ]
    return factor, []


@dataclass
class _Batch:
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


def _batches(
    ds: rasterio.DatasetReader,
    plan: WindowPlan,
    info: ModelInfo,
    tile: int,
    scale: float,
    batch_size: int,
) -> Iterator[_Batch]:
    """Read, mask and normalise windows into model batches (runs in the reader thread)."""
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
    for r, c, win in plan.windows():
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
            yield _Batch(keys, shapes, weights, data[: len(keys)].copy(), skipped)
            keys, shapes, weights, skipped = [], [], [], []
    if keys or skipped:
        yield _Batch(keys, shapes, weights, data[: len(keys)].copy(), skipped)


def _readable(batches: Iterator[_Batch], name: str) -> Iterator[_Batch]:
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


# Sampled windows and the share of values in them that may lie above the model's input scale
# before a warning: a few hot pixels (specular glints, clouds) are normal in any imagery.
RANGE_SAMPLES = 3  # per side: 3 x 3 windows spread over the processed region
RANGE_SAMPLE_PX = 256
RANGE_QUANTILE = 0.99
# Values below 0 up to this share of the scale pass without a warning (atmospheric correction
# leaves slightly negative reflectances in dark pixels).
NEGATIVE_TOLERANCE = 0.02


def value_range_warnings(
    info: ModelInfo, ds: rasterio.DatasetReader, region: Window, name: str
) -> list[str]:
    """Warn when the scene's values do not fit the model's ``s5geo.input_scale``.

    A uint16 scene given to a model trained on 8-bit imagery (or reflectances in 0..1, or an
    int16 scene with negative values, given to it) runs without error and yields a meaningless
    map, so a few windows spread over the region are read and their 1st and 99th percentiles
    compared with the scale. Reading 9 small windows costs a few milliseconds, unlike statistics
    over the whole scene.
    """
    reader = window_reader(ds, tuple(info.bands))
    h, w = int(region.height), int(region.width)
    sh, sw = min(h, RANGE_SAMPLE_PX), min(w, RANGE_SAMPLE_PX)
    values = []
    for i in range(RANGE_SAMPLES):
        for j in range(RANGE_SAMPLES):
            row = int(region.row_off) + (h - sh) * i // max(RANGE_SAMPLES - 1, 1)
            col = int(region.col_off) + (w - sw) * j // max(RANGE_SAMPLES - 1, 1)
            try:
                data, valid = reader(Window(col, row, sw, sh))
            except RasterioIOError:
                return []  # the prediction itself reports unreadable pixels
            values.append(data[:, valid].ravel())
    sample = np.concatenate(values)
    if sample.size == 0:
        return []
    low, high = (float(v) for v in np.quantile(sample, (1.0 - RANGE_QUANTILE, RANGE_QUANTILE)))
    scale = info.input_scale
    if high > 2.0 * scale or low < -NEGATIVE_TOLERANCE * scale:
        # Values below 0 (signed integers, e.g. int16 elevation or radar) fit no 0..scale model
        # as badly as values far above it.
        return [
            f"{name} has values from {low:g} to {high:g} (1st to 99th percentile) but the model "
            f"expects 0..{scale:g} (s5geo.input_scale): the map will be meaningless unless the "
            "scene is rescaled (e.g. gdal_translate -scale) or a model for this data type is used"
        ]
    if scale >= 2.0 and high <= scale / 50.0 and high > 0:
        return [
            f"{name} has values only up to {high:g} (99th percentile) but the model expects "
            f"0..{scale:g} (s5geo.input_scale): reflectances in 0..1? rescale the scene first"
        ]
    return []


def _mark_last(it: Iterator[_Batch], only_batch: bool) -> Iterator[tuple[_Batch, bool]]:
    """Each batch, in order, with whether it is the last one that has windows to run.

    Looks ahead to the next batch with windows; batches of skipped windows only (a nodata collar
    at the scene's end) are held until then. The first batch with windows is not held: waiting
    for a second batch to be read would delay the first inference (by 0.2-0.35 s with the S4P
    teacher, docs/BENCHMARKS.md). It is the last one when the plan holds no more windows than a
    batch (``only_batch``); otherwise it is taken as not the last, which is wrong only when every
    later window is nodata, and then only the arena's release after it is missed.
    """
    pending: list[_Batch] = []
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


def _prefetch(it: Iterator[_Batch], depth: int = 2) -> Generator[_Batch, None, None]:
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
            assert isinstance(item, _Batch)
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


def _batch_shape(
    plan: WindowPlan, info: ModelInfo, tile: int, batch: int, confidence: bool
) -> BatchShape:
    """The sizes of one batch's buffers (:mod:`s5geo.infer.memory`) for ``plan``."""
    window = (min(plan.size, plan.height), min(plan.size, plan.width))
    return BatchShape(
        batch=batch,
        bands=len(info.bands),
        classes=info.num_classes,
        tile=tile,
        window=window,
        overlap=plan.overlap,
        width=plan.width,
        confidence=confidence,
    )


def _result(future: Future[np.ndarray] | None) -> np.ndarray | None:
    """The probabilities of a submitted inference (None for a batch of skipped windows only)."""
    return None if future is None else future.result()


def predict_into(
    outputs: OutputSet,
    scene: str | Path,
    out_raster: str | Path,
    *,
    model: Model | str | Path | None = None,
    confidence: str | Path | None = None,
    quicklook: str | Path | None = None,
    bounds: Sequence[float] | None = None,
    tile_size: int | None = None,
    overlap: int | None = None,
    batch_size: int = 4,
    providers: Sequence[str] | None = None,
    resample: bool = True,
    progress: ProgressFn | None = None,
    progress_span: tuple[float, float] = (0.0, 1.0),
    class_rows: Callable[[GridSpec], Callable[[int, np.ndarray], None]] | None = None,
) -> PredictResult:
    """Predict ``scene`` into outputs reserved in ``outputs`` (committed by the caller).

    ``progress_span`` maps this stage onto a part of the overall fraction (prediction is the first
    part of :func:`s5geo.segment.segment_scene`). ``class_rows``, when given, is called with the
    output grid before the first row and returns a function that receives every block of
    finished class rows, ``(first row, rows)``, in order, as written to the class raster (so
    :func:`s5geo.segment.segment_scene` polygonizes them while inference runs); the rows must
    not be changed.
    """
    if batch_size < 1:
        raise UserError(f"batch_size must be at least 1, not {batch_size}")
    m = model if isinstance(model, Model) else load_model(model, providers)
    info = m.info
    tile = info.tile_size if tile_size is None else tile_size
    if m.fixed_size is not None and tile != m.fixed_size:
        raise UserError(
            f"this model takes {m.fixed_size}-px tiles; --tile-size {tile} cannot be used"
        )
    if tile < 16:
        raise UserError(f"tile_size must be at least 16, not {tile}")
    if overlap is None:
        ov = round(tile * info.overlap_pct / 100.0)
        if not 0 <= ov <= tile // 2:
            raise UserError(
                f"model {m.path.name}: its tiles_overlap of {info.overlap_pct:g} % must lie in "
                "0..50 %; pass overlap (in pixels) to override it"
            )
    else:
        ov = overlap
        if not 0 <= ov <= tile // 2:
            raise UserError(f"overlap must lie in 0..{tile // 2} px for {tile}-px tiles")
    name = Path(scene).name
    raster_final = Path(out_raster)
    check_suffix(raster_final, (".tif", ".tiff"), "the class raster")
    if confidence:
        check_suffix(Path(confidence), (".tif", ".tiff"), "--confidence")
    if quicklook:
        check_suffix(Path(quicklook), (".png",), "--quicklook")
    outputs.protect(scene, "scene")
    outputs.protect(m.path, "model")
    # Reserve every output first: a refused overwrite or unwritable folder fails before any work.
    raster_tmp = outputs.temp(raster_final)
    qml_tmp = outputs.temp(raster_final.with_suffix(".qml"))
    aux_tmp = outputs.temp(raster_final.with_name(raster_final.name + ".aux.xml"))
    conf_tmp = outputs.temp(confidence) if confidence else None
    look_tmp = outputs.temp(quicklook) if quicklook else None
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES), open_scene(scene) as ds:
        refuse_gcp_only(ds, name)
        check_scene_fits(info, ds, name)
        check_readable(ds, name)
        region = _region(ds, bounds, name)
        scale, warnings = _scale(info, ds, resample)
        if not is_georeferenced(ds):
            warnings.append(f"{name} has no georeferencing: outputs are on its pixel grid")
        warnings += value_range_warnings(info, ds, region, name)
        size, ov_scene = round(tile * scale), round(ov * scale)
        plan = WindowPlan(
            height=int(region.height), width=int(region.width), size=size, overlap=ov_scene,
            row_off=int(region.row_off), col_off=int(region.col_off),
        )  # fmt: skip
        check_batch_memory(
            _batch_shape(plan, info, tile, min(batch_size, len(plan)), conf_tmp is not None),
            batch_size,
            tile_from_model=tile_size is None,
        )
        grid = GridSpec(plan.width, plan.height, ds.crs, ds.window_transform(region))

        stage_cls = raster_tmp.with_name(raster_tmp.name + ".stage.tif")
        stage_conf = raster_tmp.with_name(raster_tmp.name + ".conf.stage.tif")
        counts = np.zeros(256, np.int64)
        cls_writer = BlockRowWriter(stage_cls, grid, "land-cover class")
        # Built from the rows as they are finished, beside inference, not after it.
        cls_overviews = StreamingOverviews(stage_cls, grid)
        conf_writer = BlockRowWriter(stage_conf, grid, "confidence (%)") if conf_tmp else None
        on_rows = class_rows(grid) if class_rows is not None else None

        def emit(row: int, cls: np.ndarray, conf: np.ndarray) -> None:
            # bincount casts to int64: counting a few rows at a time keeps that copy small on
            # wide scenes (a whole band of rows cost 65 MB at 20000 px wide).
            for i in range(0, len(cls), COUNT_ROWS):
                counts[:] += np.bincount(cls[i : i + COUNT_ROWS].ravel(), minlength=256)
            cls_writer.write(row, cls)
            cls_overviews.add(cls)
            if on_rows is not None:
                on_rows(row, cls)
            if conf_writer is not None:
                conf_writer.write(row, conf)

        blender = StreamingBlender(plan, info.num_classes, emit, confidence=conf_tmp is not None)
        meter = ConfidenceMeter()
        total = len(plan)
        done = run = 0
        start = time.perf_counter()
        lo, hi = progress_span
        batches = _prefetch(_batches(ds, plan, info, tile, scale, batch_size))

        def report(stage_done: int) -> None:
            if progress is None:
                return
            elapsed = time.perf_counter() - start
            px = stage_done / total * plan.width * plan.height
            update = Progress(
                stage="predict",
                done=stage_done,
                total=total,
                fraction=lo + (hi - lo) * stage_done / total,
                pixels_per_second=px / max(elapsed, 1e-9),
                message=f"window {stage_done}/{total}",
            )
            if progress(update) is False:
                raise Cancelled()

        def finish(batch: _Batch, probs: np.ndarray | None) -> None:
            nonlocal done, run
            for j, key in enumerate(batch.keys):
                assert probs is not None
                h, w, mh, mw = batch.shapes[j]
                p = probs[j, :, :mh, :mw]
                weight = batch.weights[j]
                meter.add(p, weight > 0 if weight.shape == (mh, mw) else None)
                if (mh, mw) != (h, w):
                    p = resize_probs(p, h, w)
                blender.add(*key, p, batch.weights[j])
            done += len(batch.keys) + len(batch.skipped)
            run += len(batch.keys)
            report(done)

        # Inference of batch k runs in a worker thread (ONNX Runtime releases the GIL) while this
        # thread blends batch k-1 and writes its finished rows, so blending does not wait between
        # inferences. On 2 CPU cores, where ORT already uses both, the measured gain is small
        # (0.82 -> 0.83 of the bare loop on 25 MP, docs/BENCHMARKS.md); with a GPU provider the
        # blending overlaps device time. The blender still sees windows in plan order.
        inference = ThreadPoolExecutor(max_workers=1, thread_name_prefix="s5geo-infer")
        running: tuple[_Batch, Future[np.ndarray] | None] | None = None
        try:
            report(0)  # a first report before any inference: a caller can cancel right away
            for batch, last in _mark_last(_readable(batches, name), only_batch=total <= batch_size):
                future = inference.submit(m.run, batch.data, last) if batch.keys else None
                if running is not None:
                    finish(running[0], _result(running[1]))
                for key in batch.skipped:
                    blender.skip(*key)
                running = (batch, future)
            if running is not None:
                finish(running[0], _result(running[1]))
                running = None
            if run == 0:
                raise UserError(
                    f"{name} holds no valid pixels in the processed extent (all nodata)"
                )
            if not blender.finished:
                raise RuntimeError("internal error: prediction finished with unwritten rows")
            unfamiliar = familiarity_warning(meter.mean, info.reference_confidence, name)
            if unfamiliar is not None:
                warnings.append(unfamiliar)
            cls_writer.close()
            cls_overviews.close()
            if conf_writer is not None:
                conf_writer.close()
            names = dict(info.class_names)
            colors = {k: info.color(k) for k in names}
            tags = {
                "S5GEO_VERSION": __version__,
                "S5GEO_MODEL": m.path.name,
                "S5GEO_ARCHITECTURE": info.architecture,
            }
            write_class_cog(stage_cls, raster_tmp, names, colors, tags, cls_overviews.paths)
            if conf_tmp is not None:
                write_confidence_cog(stage_conf, conf_tmp)
            if look_tmp is not None:
                with outputs.writing(look_tmp):  # GDAL's PNG errors name no file
                    write_quicklook(raster_tmp, look_tmp)
            qml_tmp.write_text(raster_qml(names, colors), encoding="utf-8")
            aux_tmp.write_text(category_names_aux_xml(names), encoding="utf-8")
        finally:
            # On an error or Ctrl-C: let a running inference end (ONNX Runtime cannot be
            # interrupted), drop queued ones, and stop the reader thread now.
            inference.shutdown(wait=True, cancel_futures=True)
            batches.close()
            if not cls_writer.dataset.closed:
                cls_writer.dataset.close()
            if conf_writer is not None and not conf_writer.dataset.closed:
                conf_writer.dataset.close()
            cls_overviews.discard()
            for stage in (stage_cls, stage_conf):
                stage.unlink(missing_ok=True)
    seconds = time.perf_counter() - start
    return PredictResult(
        raster=raster_final,
        confidence=Path(confidence) if confidence else None,
        provider=m.provider,
        width=plan.width,
        height=plan.height,
        windows_run=run,
        windows_skipped=total - run,
        tile_size=tile,
        overlap=ov,
        scale=scale,
        seconds=seconds,
        class_pixels={k: int(counts[k]) for k in range(255) if counts[k]},
        mean_confidence=meter.mean,
        warnings=warnings,
    )


def predict_scene(
    scene: str | Path,
    out_raster: str | Path,
    *,
    overwrite: bool = False,
    **options: object,
) -> PredictResult:
    """Predict ``scene`` and write the land-cover COG ``out_raster`` (atomically).

    Options are those of :func:`predict_into`: ``model`` (path or loaded :class:`Model`, default
    the bundled model), ``confidence`` (path of a confidence COG), ``quicklook`` (a PNG),
    ``bounds`` (processing extent in
    the scene's CRS), ``tile_size``, ``overlap`` (px), ``batch_size``, ``providers``, ``resample``,
    ``progress`` (callback; return False to cancel).
    """
    with atomic_outputs(overwrite) as outputs:
        return predict_into(outputs, scene, out_raster, **options)  # type: ignore[arg-type]
