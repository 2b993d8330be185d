"""Streaming scene prediction: windows in, a land-cover COG (and confidence COG) out.

The scene is never loaded whole: a reader thread reads and normalises batches of windows ahead
(:mod:`s5geo.infer.batches`), an inference thread runs ONNX Runtime on one batch while the calling
thread blends the one before (:mod:`s5geo.infer.blend`); the blender turns overlapping window
probabilities into finished rows, which go straight to disk (:mod:`s5geo.infer.writing`).
Memory is bounded by the batch and the overlap band, not by the scene size (measured in
docs/BENCHMARKS.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio

from s5geo import __version__
from s5geo.errors import Cancelled, UserError
from s5geo.infer.batches import Batch, mark_last, prefetch, read_batches, readable
from s5geo.infer.blend import Emit, StreamingBlender
from s5geo.infer.checks import check_scene_fits, check_suffix, value_range_warnings
from s5geo.infer.familiarity import ConfidenceMeter, familiarity_warning
from s5geo.infer.memory import check_batch_memory
from s5geo.infer.planning import batch_shape, plan_scene, tiling
from s5geo.infer.resample import resize_probs
from s5geo.infer.runtime import Model, load_model
from s5geo.infer.tiling import RowBlock, row_blocks
from s5geo.infer.writing import ClassRows, RowsFn
from s5geo.io.atomic import OutputSet, atomic_outputs
from s5geo.io.qgis_style import raster_qml
from s5geo.io.quicklook import write_quicklook
from s5geo.io.raster import GDAL_CACHE_BYTES, GridSpec, category_names_aux_xml
from s5geo.io.scene import check_readable, open_scene, refuse_gcp_only
from s5geo.options import PredictOptions


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
    """What a prediction run did.

    ``raster`` and ``confidence`` are the outputs written; ``provider`` the execution provider
    that ran; ``width`` x ``height`` the processed region in scene pixels; ``windows_run`` and
    ``windows_skipped`` (wholly nodata) count the windows; ``tile_size`` and ``overlap`` are in
    model pixels; ``class_pixels`` counts the pixels of each class that occurs; ``warnings`` say
    what the analyst should know about the result.
    """

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


def _reporter(
    progress: ProgressFn | None, total: int, pixels: int, span: tuple[float, float], start: float
) -> Callable[[int], None]:
    """A function reporting ``done`` of ``total`` windows (of ``pixels`` in all) to ``progress``
    as a fraction within ``span`` of the whole job; it raises :class:`Cancelled` when
    ``progress`` returns False."""
    lo, hi = span

    def report(done: int) -> None:
        if progress is None:
            return
        elapsed = time.perf_counter() - start
        update = Progress(
            stage="predict",
            done=done,
            total=total,
            fraction=lo + (hi - lo) * done / total,
            pixels_per_second=done / total * pixels / max(elapsed, 1e-9),
            message=f"window {done}/{total}",
        )
        if progress(update) is False:
            raise Cancelled()

    return report


def _run_batches(
    model: Model,
    batches: Iterator[tuple[Batch, bool]],
    blender: StreamingBlender,
    meter: ConfidenceMeter,
    report: Callable[[int], None],
) -> int:
    """Run each batch through ``model`` and blend its windows; the number of windows run.

    ``batches`` come with whether each is the last with windows to run (:func:`mark_last`).
    Inference of batch k runs in a worker thread (ONNX Runtime releases the GIL) while this
    thread blends batch k-1 and writes its finished rows, so blending does not wait between
    inferences, and with a GPU provider it overlaps device time. The blender still sees windows
    in plan order. ``meter`` samples the confidence of every window run; ``report`` receives the
    windows done (run or skipped) after each batch.
    """
    done = run = 0

    def finish(batch: Batch, future: Future[np.ndarray] | None) -> None:
        nonlocal done, run
        probs = None if future is None else future.result()  # None: skipped windows only
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

    inference = ThreadPoolExecutor(max_workers=1, thread_name_prefix="s5geo-infer")
    running: tuple[Batch, Future[np.ndarray] | None] | None = None
    try:
        report(0)  # a first report before any inference: a caller can cancel right away
        for batch, last in batches:
            future = inference.submit(model.run, batch.data, last) if batch.keys else None
            if running is not None:
                finish(*running)
            for key in batch.skipped:
                blender.skip(*key)
            running = (batch, future)
        if running is not None:
            finish(*running)
    finally:
        # On an error or Ctrl-C: let a running inference end (ONNX Runtime cannot be
        # interrupted) and drop queued ones.
        inference.shutdown(wait=True, cancel_futures=True)
    return run


@dataclass(frozen=True)
class _Files:
    """A run's outputs, each under the temporary name reserved for it."""

    raster: Path
    qml: Path  # the QGIS style beside the raster
    aux: Path  # the category names beside the raster
    confidence: Path | None
    quicklook: Path | None


def _reserve(
    outputs: OutputSet,
    scene: str | Path,
    model: Model,
    out_raster: str | Path,
    confidence: str | Path | None,
    quicklook: str | Path | None,
) -> _Files:
    """Check the outputs' names and reserve each in ``outputs`` before any work: a wrong
    extension, a refused overwrite or an unwritable folder fails first."""
    raster = Path(out_raster)
    check_suffix(raster, (".tif", ".tiff"), "out_raster")
    if confidence:
        check_suffix(Path(confidence), (".tif", ".tiff"), "confidence")
    if quicklook:
        check_suffix(Path(quicklook), (".png",), "quicklook")
    outputs.protect(scene, "scene")
    outputs.protect(model.path, "model")
    return _Files(
        raster=outputs.temp(raster),
        qml=outputs.temp(raster.with_suffix(".qml")),
        aux=outputs.temp(raster.with_name(raster.name + ".aux.xml")),
        confidence=outputs.temp(confidence) if confidence else None,
        quicklook=outputs.temp(quicklook) if quicklook else None,
    )


def _write_outputs(outputs: OutputSet, files: _Files, rows: ClassRows, model: Model) -> None:
    """Make the finished rows the class COG (and confidence COG), with the quicklook, the QGIS
    style and the category names beside it, named and coloured as ``model`` says."""
    info = model.info
    names = dict(info.class_names)
    colors = {k: info.color(k) for k in names}
    tags = {
        "S5GEO_VERSION": __version__,
        "S5GEO_MODEL": model.path.name,
        "S5GEO_ARCHITECTURE": info.architecture,
    }
    rows.finish(files.raster, files.confidence, names, colors, tags)
    if files.quicklook is not None:
        with outputs.writing(files.quicklook):  # GDAL's PNG errors name no file
            write_quicklook(files.raster, files.quicklook)
    files.qml.write_text(raster_qml(names, colors), encoding="utf-8")
    files.aux.write_text(category_names_aux_xml(names), encoding="utf-8")


def predict_into(
    outputs: OutputSet,
    scene: str | Path,
    out_raster: str | Path,
    *,
    model: Model | str | Path | None = None,
    options: PredictOptions | None = None,
    confidence: str | Path | None = None,
    quicklook: str | Path | None = None,
    bounds: Sequence[float] | None = None,
    progress: ProgressFn | None = None,
    progress_span: tuple[float, float] = (0.0, 1.0),
    class_rows: Callable[[GridSpec], RowsFn] | None = None,
) -> PredictResult:
    """Predict ``scene`` into outputs reserved in ``outputs``, which the caller commits.

    The other arguments are those of :func:`predict_scene`.

    :param outputs: The output set the class raster and its side files are reserved in.
    :param progress_span: The part of the overall progress fraction this prediction reports in
        (prediction is the first part of :func:`s5geo.segment.segment_scene`).
    :param class_rows: Called with the output grid before the first row; returns the function
        that receives every block of finished class rows, ``(first row, rows)``, in order, as
        written to the class raster (so :func:`s5geo.segment.segment_scene` polygonizes them
        while inference runs). The rows must not be changed.
    :returns: What the run did.
    """
    opts = options or PredictOptions()
    m = model if isinstance(model, Model) else load_model(model, opts.providers)
    info = m.info
    tile, overlap = tiling(opts, m)
    name = Path(scene).name
    files = _reserve(outputs, scene, m, out_raster, confidence, quicklook)
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES), open_scene(scene) as ds:
        refuse_gcp_only(ds, name)
        check_scene_fits(info, ds, name)
        check_readable(ds, name)
        plan = plan_scene(ds, info, tile, overlap, bounds=bounds, resample=opts.resample, name=name)
        windows = plan.windows
        warnings = [*plan.warnings, *value_range_warnings(info, ds, plan.region, name)]
        with_confidence = files.confidence is not None
        check_batch_memory(
            batch_shape(windows, info, tile, min(opts.batch_size, len(windows)), with_confidence),
            opts.batch_size,
            tile_from_model=opts.tile_size is None,
        )
        rows = ClassRows(
            files.raster,
            plan.grid,
            with_confidence,
            class_rows(plan.grid) if class_rows else None,
        )
        blender = StreamingBlender(
            windows, info.num_classes, rows.write, confidence=with_confidence
        )
        meter = ConfidenceMeter()
        total = len(windows)
        start = time.perf_counter()
        report = _reporter(progress, total, windows.width * windows.height, progress_span, start)
        batches = prefetch(read_batches(ds, windows, info, tile, plan.scale, opts.batch_size))
        try:
            run = _run_batches(
                m, mark_last(readable(batches, name), only_batch=total <= opts.batch_size),
                blender, meter, report,
            )  # fmt: skip
            if run == 0:
                raise UserError(
                    f"{name} holds no valid pixels in the processed extent (all nodata)"
                )
            if not blender.finished:
                raise RuntimeError("internal error: prediction finished with unwritten rows")
            unfamiliar = familiarity_warning(meter.mean, info.reference_confidence, name)
            if unfamiliar is not None:
                warnings.append(unfamiliar)
            _write_outputs(outputs, files, rows, m)
        finally:
            batches.close()  # stops the reader thread now
            rows.discard()
    return PredictResult(
        raster=Path(out_raster),
        confidence=Path(confidence) if confidence else None,
        provider=m.provider,
        width=windows.width,
        height=windows.height,
        windows_run=run,
        windows_skipped=total - run,
        tile_size=tile,
        overlap=overlap,
        scale=plan.scale,
        seconds=time.perf_counter() - start,
        class_pixels=rows.class_pixels,
        mean_confidence=meter.mean,
        warnings=warnings,
    )


def predict_scene(
    scene: str | Path,
    out_raster: str | Path,
    *,
    model: Model | str | Path | None = None,
    options: PredictOptions | None = None,
    confidence: str | Path | None = None,
    quicklook: str | Path | None = None,
    bounds: Sequence[float] | None = None,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
) -> PredictResult:
    """Predict the land cover of ``scene`` into the class COG ``out_raster``, atomically.

    Every output is written under a temporary name and renamed at the end, so an error, Ctrl-C
    or cancel leaves none behind.

    :param scene: The image: a path or any GDAL dataset name (``/vsizip/...``, a URL, a VRT).
    :param out_raster: The class raster to write (``.tif``): a Cloud-Optimized GeoTIFF of class
        ids on the scene's grid, nodata 255, with a colour table, a QGIS style (``.qml``) and
        category names (``.aux.xml``) beside it.
    :param model: An ONNX model file or a loaded :class:`Model`; None takes the bundled model.
    :param options: How the scene is tiled and run; None takes the defaults. Its polygon
        settings are not used here.
    :param confidence: Also write a confidence COG here (``.tif``): the highest class
        probability, 0-100 %.
    :param quicklook: Also write a PNG quicklook of the map here (``.png``).
    :param bounds: Process only ``(xmin, ymin, xmax, ymax)`` in the scene's CRS (column and row
        in pixels for a scene without georeferencing); None processes the whole scene.
    :param overwrite: Replace existing outputs instead of refusing them.
    :param progress: Called with a :class:`Progress` after each batch; returning False cancels.
    :returns: What the run did: sizes, windows run and skipped, class pixel counts, seconds,
        warnings.
    :raises s5geo.errors.ParameterError: For an option outside its valid range, naming the
        parameter and the range.
    :raises s5geo.errors.UserError: For other inputs that cannot work (a missing band, a refused
        overwrite, an unreadable scene).
    :raises s5geo.errors.Cancelled: When ``progress`` returns False.
    """
    with atomic_outputs(overwrite) as outputs:
        return predict_into(
            outputs, scene, out_raster, model=model, options=options, confidence=confidence,
            quicklook=quicklook, bounds=bounds, progress=progress,
        )  # fmt: skip


@dataclass(frozen=True)
class BlockResult:
    """What :func:`predict_block` did: ``block``'s rows of ``width`` pixels emitted, its windows
    run and skipped (wholly nodata), the seconds and the execution provider."""

    block: RowBlock
    width: int
    windows_run: int
    windows_skipped: int
    seconds: float
    provider: str

    @property
    def pixels(self) -> int:
        return self.width * (self.block.row1 - self.block.row0)


def plan_blocks(
    scene: str | Path,
    max_pixels: int,
    *,
    model: Model | str | Path | None = None,
    options: PredictOptions | None = None,
    bounds: Sequence[float] | None = None,
) -> list[RowBlock]:
    """The blocks of about ``max_pixels`` pixels that :func:`predict_block` runs ``scene`` in:
    rows of the window plan that :func:`predict_scene` makes with the same ``model``,
    ``options`` and ``bounds``. Checks the scene as :func:`predict_scene` does first (bands,
    readable pixels), so a scene that cannot work fails here, before any block runs.
    """
    opts = options or PredictOptions()
    m = model if isinstance(model, Model) else load_model(model, opts.providers)
    tile, overlap = tiling(opts, m)
    name = Path(scene).name
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES), open_scene(scene) as ds:
        refuse_gcp_only(ds, name)
        check_scene_fits(m.info, ds, name)
        check_readable(ds, name)
        plan = plan_scene(
            ds, m.info, tile, overlap, bounds=bounds, resample=opts.resample, name=name
        )
    return row_blocks(plan.windows, max_pixels)


def predict_block(
    scene: str | Path,
    block: RowBlock,
    emit: Emit,
    *,
    model: Model | str | Path | None = None,
    options: PredictOptions | None = None,
    confidence: bool = False,
    bounds: Sequence[float] | None = None,
    progress: ProgressFn | None = None,
) -> BlockResult:
    """Predict the rows of one block of ``scene`` (from :func:`plan_blocks` with the same
    ``model``, ``options`` and ``bounds``) and hand them to ``emit(first row, classes,
    confidence)`` in order; rows count from the top of the processed region.

    The rows are those :func:`predict_scene` writes, bit for bit: the block runs the windows of
    the whole scene's plan that cover its rows and blends them in the same order with the same
    weights. Without ``confidence`` the confidence rows are a one-pixel-wide placeholder.
    Memory is that of :func:`predict_scene`; nothing is written.
    """
    opts = options or PredictOptions()
    m = model if isinstance(model, Model) else load_model(model, opts.providers)
    info = m.info
    tile, overlap = tiling(opts, m)
    name = Path(scene).name
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES), open_scene(scene) as ds:
        refuse_gcp_only(ds, name)
        check_scene_fits(info, ds, name)
        plan = plan_scene(ds, info, tile, overlap, bounds=bounds, resample=opts.resample, name=name)
        windows = plan.windows
        rows = block.window_rows
        total = len(rows) * len(windows.xs)
        check_batch_memory(
            batch_shape(windows, info, tile, min(opts.batch_size, total), confidence),
            opts.batch_size,
            tile_from_model=opts.tile_size is None,
        )
        blender = StreamingBlender(
            windows, info.num_classes, emit, confidence=confidence, rows=(block.row0, block.row1)
        )
        start = time.perf_counter()
        pixels = windows.width * (block.row1 - block.row0)
        report = _reporter(progress, total, pixels, (0.0, 1.0), start)
        batches = prefetch(read_batches(ds, windows, info, tile, plan.scale, opts.batch_size, rows))
        try:
            run = _run_batches(
                m, mark_last(readable(batches, name), only_batch=total <= opts.batch_size),
                blender, ConfidenceMeter(), report,
            )  # fmt: skip
            if not blender.finished:
                raise RuntimeError("internal error: a block finished with unwritten rows")
        finally:
            batches.close()
    return BlockResult(
        block, windows.width, run, total - run, time.perf_counter() - start, m.provider
    )


def write_prediction(
    scene: str | Path,
    out_raster: str | Path,
    rows: Iterable[tuple[int, np.ndarray, np.ndarray]],
    *,
    model: Model | str | Path | None = None,
    options: PredictOptions | None = None,
    confidence: str | Path | None = None,
    bounds: Sequence[float] | None = None,
    overwrite: bool = False,
) -> dict[int, int]:
    """Write the class COG ``out_raster`` (and the confidence COG ``confidence``) of ``scene``
    from ``rows``, ``(first row, classes, confidence)`` in order over the whole processed region
    (the rows of every :func:`predict_block` of the scene), atomically.

    The files are those :func:`predict_scene` writes, byte for byte: the same writer, tags,
    style and category names. Returns the pixels of each class that occurs.
    """
    opts = options or PredictOptions()
    m = model if isinstance(model, Model) else load_model(model, opts.providers)
    tile, overlap = tiling(opts, m)
    name = Path(scene).name
    with atomic_outputs(overwrite) as outputs:
        files = _reserve(outputs, scene, m, out_raster, confidence, None)
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):
            with open_scene(scene) as ds:
                plan = plan_scene(
                    ds, m.info, tile, overlap, bounds=bounds, resample=opts.resample, name=name
                )
            writer = ClassRows(files.raster, plan.grid, files.confidence is not None, None)
            try:
                end = 0
                for row, cls, conf in rows:
                    writer.write(row, cls, conf)
                    end = row + len(cls)
                if end != plan.grid.height:
                    raise ValueError(f"rows end at {end}, not at the region's {plan.grid.height}")
                _write_outputs(outputs, files, writer, m)
            finally:
                writer.discard()
    return writer.class_pixels
