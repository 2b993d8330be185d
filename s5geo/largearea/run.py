"""Many scenes in one run: scheduling, resume, run index (package doc).

The work unit is a scene no larger than ``RunOptions.block_megapixels`` (:func:`run_scene`), or
one block of a larger scene's window rows, whose scene is assembled once its blocks are done
(:mod:`s5geo.largearea.blocks`). A task takes and returns small dicts of names and numbers: the
scheduler never holds pixels, and each worker reads its scene and writes its outputs itself,
into the run folder that every worker must see (a shared file system).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from s5geo import __version__
from s5geo.errors import UserError
from s5geo.io.inputs import SceneInput, input_identity, remote_env
from s5geo.largearea import blocks as units
from s5geo.largearea import outputs as files
from s5geo.largearea.layer import check_layer_name, write_run_layer
from s5geo.largearea.worker import footprint, outcome, task_options, worker_model
from s5geo.options import PredictOptions


@dataclass(frozen=True)
class RunOptions:
    """What shapes every scene's outputs; a change between two runs restarts the run."""

    model: str | None = None  # ONNX file; None: the bundled model
    predict: PredictOptions = field(default_factory=PredictOptions)  # for every scene
    polygons: bool = False  # a GeoPackage per scene
    confidence: bool = False  # a confidence COG per scene
    # A scene of more pixels runs as blocks of about this many, spread over the workers; 32 MP
    # keeps a block's files (one byte a pixel) and its share of repeated windows small.
    block_megapixels: float = 32.0
    # Process only (xmin, ymin, xmax, ymax) in extent_crs (None: the run's crs, else the first
    # scene's); scenes outside it are recorded as outside and not run.
    extent: tuple[float, float, float, float] | None = None
    extent_crs: str | None = None

    def key(self) -> dict[str, Any]:
        """The options that decide the outputs (the batch and block sizes do not: they may
        change)."""
        d = asdict(self.predict)
        del d["batch_size"]
        d["providers"] = list(self.predict.providers) if self.predict.providers else None
        d.update(polygons=self.polygons, confidence=self.confidence)
        if self.extent is not None:  # absent otherwise: runs without one keep their key
            d.update(extent=list(self.extent), extent_crs=self.extent_crs)
        return d


@dataclass
class SceneOutcome:
    """What became of one scene: ``status`` is done, skipped (done by an earlier run) or
    failed (``error`` says why)."""

    scene: str  # the output stem
    input: str
    status: str
    seconds: float = 0.0
    error: str | None = None
    item_id: str | None = None
    raster: str | None = None
    confidence: str | None = None
    polygons: str | None = None


@dataclass
class RunResult:
    out_dir: Path
    scenes: list[SceneOutcome]
    manifest: Path
    index: Path
    mosaic: Path | None
    restarted: str | None  # why an earlier run's results were discarded
    mosaic_note: str | None = None
    dashboard: str | None = None
    seconds: float = 0.0
    megapixels: float = 0.0
    failed: list[SceneOutcome] = field(default_factory=list)
    layer: Path | None = None  # the run's polygon layer, when asked
    layer_polygons: int = 0


def model_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def run_scene(task: dict[str, Any], progress: Any = None) -> dict[str, Any]:
    """Segment one scene as ``task`` says, and return its summary (no pixels).

    Runs on a Dask worker or in the calling process. A scene's own errors (:class:`UserError`,
    GDAL's) are returned as ``status: failed``; other exceptions are bugs: returned as failed
    with ``bug: True``, or raised when ``task['raise_bugs']``.
    """
    from s5geo.segment import segment_scene

    out: dict[str, Any] = {"status": "failed", "worker_pid": os.getpid()}
    with outcome(out, task):
        with remote_env():
            out.update(footprint(task["name"]))
            model = worker_model(task["model"], task["providers"], task["threads"])
            result = segment_scene(
                task["name"],
                out_raster=task["raster"],
                out_vector=task.get("polygons"),
                model=model,
                options=task_options(task),
                confidence=task.get("confidence"),
                overwrite=task["overwrite"],
                bounds=task["bounds"],
                progress=progress,
            )
        pred = result.prediction
        out.update(status="done", width=pred.width, height=pred.height)
    return out


def predict_many(
    scenes: Sequence[SceneInput],
    out_dir: str | Path,
    options: RunOptions | None = None,
    *,
    workers: int = 0,
    scheduler: str | None = None,
    keep_going: bool = False,
    overwrite: bool = False,
    crs: str | None = None,
    layer: str | Path | None = None,
    progress: Any = None,
    log: Callable[[str], None] | None = None,
) -> RunResult:
    """Segment ``scenes`` into the folder ``out_dir``: per scene ``STEM.tif`` (classes), with
    ``options.confidence`` ``STEM_confidence.tif``, with ``options.polygons`` ``STEM.gpkg``;
    for the run ``mosaic.vrt``, ``run_index.gpkg`` (layer ``scenes``: footprints in the first
    scene's CRS or ``crs``) and the manifest ``s5geo-run.json``.

    ``workers`` > 0 starts a Dask LocalCluster of that many worker processes; ``scheduler`` uses
    the Dask cluster at that address; neither runs in this process (``progress`` then drives a
    progress callback per scene or block). A scene of more than ``options.block_megapixels``
    runs as blocks of its window rows, spread over the workers, and its class COG is assembled
    from them byte for byte as a single task writes it. Scenes the manifest lists as done with
    the same model, options and input identity are skipped, and so are the finished blocks of
    an unfinished scene; a changed model or option discards the earlier results
    (``RunResult.restarted`` says why). A scene that fails stops the run with a
    :class:`UserError`, or with ``keep_going`` is recorded as failed while the rest completes.
    ``layer`` (a ``.gpkg`` or ``.parquet`` path): one polygon layer of every finished scene,
    regions merged across the borders of abutting scenes of one CRS, in ``crs`` or the first
    scene's (:func:`s5geo.largearea.layer.write_run_layer`); rewritten only when a scene's class
    raster changed since the manifest recorded it.
    ``log`` receives one line per event (a block or scene finished, with the blocks done of
    this run's and its megapixels per second; the dashboard link; a restart).
    """
    from s5geo.infer import default_model_path

    say = log or (lambda line: None)
    opts = options or RunOptions()
    if workers < 0:
        raise UserError(f"workers must be 0 (this process) or more, not {workers}")
    if workers and scheduler:
        raise UserError("give workers or scheduler, not both")
    if not opts.block_megapixels > 0:
        raise UserError(f"block_megapixels must be more than 0, not {opts.block_megapixels}")
    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} exists and is not a folder: out_dir names the run's folder")
    folder.mkdir(parents=True, exist_ok=True)
    layer_path = check_layer_name(layer) if layer is not None else None
    model_path = str(Path(opts.model).resolve()) if opts.model else str(default_model_path())
    if not Path(model_path).is_file():
        raise UserError(f"{opts.model}: no such model file")
    sha = model_sha256(model_path)
    if opts.extent is not None and opts.extent_crs is None:
        opts = replace(opts, extent_crs=crs or _first_crs(scenes))
    manifest_path = folder / files.MANIFEST
    old = files.read_manifest(manifest_path)
    restarted = None
    previous: dict[str, Any] = {}
    if old is not None:
        restarted = _why_restart(old, sha, opts)
        if restarted is None:
            previous = old.get("scenes", {})
        else:
            say(f"starting afresh: {restarted}")
    manifest: dict[str, Any] = {
        "format": files.MANIFEST_FORMAT,
        "s5geo_version": __version__,
        "model": model_path,
        "model_sha256": sha,
        "options": opts.key(),
        "scenes": {},
    }
    if old is not None and restarted is None and "layer" in old:
        manifest["layer"] = old["layer"]  # kept while its class rasters are unchanged
    # Written before any scene: its presence marks the folder's outputs as this run's own, which
    # a rerun may replace.
    owned = old is not None
    if not (overwrite or owned):
        for scene in scenes:
            _refuse_existing(_outputs(folder, scene.stem, opts))
    files.write_manifest(manifest_path, manifest)
    entries: dict[str, dict[str, Any]] = {}
    todo: list[tuple[SceneInput, dict[str, Any]]] = []
    for scene in scenes:
        entry: dict[str, Any] = {"scene": scene.stem, "input": scene.label, "name": scene.name}
        entry.update(item_id=scene.item_id, asset=scene.asset)
        try:
            identity = input_identity(scene)
        except UserError as exc:
            if not keep_going:
                _finish(folder, manifest, entries, sha, crs, opts)
                raise
            entry.update(status="failed", error=str(exc), seconds=0.0)
            entries[scene.stem] = entry
            continue
        entry["identity"] = identity
        entry.update(_outputs(folder, scene.stem, opts))
        done = previous.get(scene.stem)
        if done and _still_done(done, entry):
            kept = {k: v for k, v in done.items() if k not in ("status",)}
            entries[scene.stem] = {**kept, "status": "skipped"}
            continue
        entries[scene.stem] = {**entry, "status": "pending"}
        todo.append((scene, entry))
    if opts.extent is not None:
        todo = _within_extent(todo, entries, opts)
    manifest["scenes"] = entries
    files.write_manifest(manifest_path, manifest)

    threads = max(1, (os.cpu_count() or 1) // workers) if workers else 0
    common = {
        "model": model_path,
        "providers": opts.predict.providers,
        "threads": threads,
        "options": asdict(opts.predict),
        # Checked above: outputs that exist now are the run's own. A task replaces them, so
        # running it again (its worker died after the commit) gives the same files.
        "overwrite": True,
        "raise_bugs": not keep_going and not (workers or scheduler),
    }
    max_pixels = round(opts.block_megapixels * 1e6)
    works = [
        _plan_work(
            folder, scene, entries[scene.stem], previous.get(scene.stem), common, opts, max_pixels
        )
        for scene, _ in todo
    ]
    files.write_manifest(manifest_path, manifest)
    start = time.perf_counter()
    pixels = 0
    units_done = 0
    units_total = sum(len(w.blocks) if w.blocked else 1 for w in works)
    block_seconds: dict[str, float] = {}  # the seconds of each scene's blocks, this run
    failure: str | None = None
    dashboard = None
    n_skipped = sum(1 for e in entries.values() if e["status"] == "skipped")
    if n_skipped:
        say(f"resuming: {n_skipped} of {len(scenes)} scenes already done")

    def rate() -> str:
        mps = pixels / 1e6 / max(time.perf_counter() - start, 1e-9)
        return f"blocks {units_done}/{units_total}; run {mps:.2f} MP/s"

    def fail(entry: dict[str, Any], out: dict[str, Any]) -> str | None:
        if out["status"] == "done" or keep_going:
            return None
        message = str(out.get("error"))
        if out.get("bug"):
            raise RuntimeError(f"{entry['input']}: {message}")
        return message if entry["input"] in message else f"{entry['input']}: {message}"

    def record_block(stem: str, out: dict[str, Any]) -> str | None:
        nonlocal pixels, units_done
        entry = entries[stem]
        units_done += 1
        block_seconds[stem] = block_seconds.get(stem, 0.0) + float(out["seconds"])
        blocks = entry["blocks"]
        if out["status"] == "done":
            pixels += int(out["pixels"])
            blocks["done"][str(out["index"])] = int(out["windows_run"])
            files.write_manifest(manifest_path, manifest)
        what = "done" if out["status"] == "done" else f"failed: {out.get('error')}"
        say(
            f"  {entry['input']}: block {out['index'] + 1}/{len(blocks['rows'])} {what} "
            f"({out['seconds']:.1f} s); {rate()}"
        )
        return fail(entry, out)

    def record(stem: str, out: dict[str, Any]) -> str | None:
        nonlocal pixels, units_done
        entry = entries[stem]
        # A scene's seconds are those of its task, or of its blocks and their assembly.
        out = {**out, "seconds": out["seconds"] + block_seconds.get(stem, 0.0)}
        entry.update({k: v for k, v in out.items() if k not in ("worker_pid",)})
        if "blocks" not in entry:
            units_done += 1
            if out["status"] == "done":
                pixels += int(out.get("width", 0)) * int(out.get("height", 0))
        elif out["status"] == "done":
            del entry["blocks"]  # the scene's COG holds them now
        files.write_manifest(manifest_path, manifest)
        if out["status"] == "done":
            shutil.rmtree(folder / units.BLOCKS / stem, ignore_errors=True)
        finished = sum(1 for e in entries.values() if e["status"] in ("done", "failed"))
        what = "done" if out["status"] == "done" else f"failed: {out.get('error')}"
        say(
            f"[{finished + n_skipped}/{len(scenes)}] {entry['input']}: {what} "
            f"({out['seconds']:.1f} s); {rate()}"
        )
        return fail(entry, out)

    try:
        if workers or scheduler:
            failure, dashboard = _run_on_dask(works, workers, scheduler, record, record_block, say)
        else:
            failure = _run_here(works, record, record_block, progress)
    finally:
        for entry in entries.values():
            if entry["status"] == "pending":
                entry["status"] = "not run"
        _finish(folder, manifest, entries, sha, crs, opts)
        with contextlib.suppress(OSError):
            (folder / units.BLOCKS).rmdir()  # when no scene left blocks behind
    if failure:
        raise UserError(failure)
    mosaic, note = _mosaics(folder, entries, opts, crs)
    layer_polygons = 0
    if layer_path is not None:
        layer_polygons = _run_layer(layer_path, manifest, entries, crs, opts, say)
        files.write_manifest(manifest_path, manifest)
    outcomes = [_outcome(e) for e in entries.values()]
    return RunResult(
        out_dir=folder,
        scenes=outcomes,
        manifest=manifest_path,
        index=folder / files.INDEX,
        mosaic=mosaic,
        restarted=restarted,
        mosaic_note=note,
        dashboard=dashboard,
        seconds=time.perf_counter() - start,
        megapixels=pixels / 1e6,
        failed=[o for o in outcomes if o.status == "failed"],
        layer=layer_path,
        layer_polygons=layer_polygons,
    )


def _run_layer(
    path: Path,
    manifest: dict[str, Any],
    entries: dict[str, dict[str, Any]],
    crs: str | None,
    opts: RunOptions,
    say: Callable[[str], None],
) -> int:
    """Write the run's polygon layer unless the manifest's record of it still stands (the same
    file, CRS and class rasters, unchanged); record it. Returns its polygon count."""
    rasters = [e["raster"] for e in entries.values() if e["status"] in ("done", "skipped")]
    sources = {r: _file_stamp(Path(r)) for r in rasters}
    record = {"path": str(path.resolve()), "crs": crs, "sources": sources}
    old = manifest.get("layer") or {}
    if path.is_file() and {k: old.get(k) for k in record} == record:
        say(f"run layer {path} is up to date")
        return int(old.get("polygons", 0))
    say(f"writing the run layer {path} ({len(rasters)} scenes)")
    written = write_run_layer(
        rasters,
        path,
        crs=crs,
        min_area_m2=opts.predict.min_area_m2,
        simplify_m=opts.predict.simplify_m,
    )
    manifest["layer"] = {**record, "polygons": written.n_polygons}
    return written.n_polygons


def _file_stamp(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _outputs(folder: Path, stem: str, opts: RunOptions) -> dict[str, Any]:
    out: dict[str, Any] = {"raster": str(folder / f"{stem}.tif")}
    if opts.confidence:
        out["confidence"] = str(folder / f"{stem}_confidence.tif")
    if opts.polygons:
        out["polygons"] = str(folder / f"{stem}.gpkg")
    return out


def _refuse_existing(entry: dict[str, Any]) -> None:
    """Refuse to replace files that no run of this folder wrote (a folder without manifest)."""
    for key in ("raster", "confidence", "polygons"):
        if entry.get(key) and Path(entry[key]).exists():
            raise UserError(f"{entry[key]} exists; pass --overwrite to replace it")


def _why_restart(old: dict[str, Any], sha: str, opts: RunOptions) -> str | None:
    """Why the earlier run's results in the folder cannot be kept; None when they can."""
    if old.get("model_sha256") != sha:
        return (
            f"the model changed (SHA-256 {str(old.get('model_sha256'))[:12]} → {sha[:12]}); "
            "every scene runs again"
        )
    before, now = old.get("options", {}), opts.key()
    changed = [k for k in now if before.get(k) != now[k]]
    if changed:
        shown = ", ".join(f"{k} {before.get(k)!r} → {now[k]!r}" for k in changed)
        return f"options changed ({shown}); every scene runs again"
    return None


def _still_done(done: dict[str, Any], entry: dict[str, Any]) -> bool:
    """Whether an earlier run's ``done`` scene still stands: same input identity, same output
    names, and every output file still there."""
    if done.get("status") not in ("done", "skipped") or done.get("identity") != entry["identity"]:
        return False
    names = ("raster", "confidence", "polygons")
    if any(done.get(k) != entry.get(k) for k in names):
        return False
    return all(Path(entry[k]).is_file() for k in names if entry.get(k))


def _finish(
    folder: Path,
    manifest: dict[str, Any],
    entries: dict[str, dict[str, Any]],
    sha: str,
    crs: str | None,
    opts: RunOptions,
) -> None:
    """The manifest and run index as they stand (also after a failure or Ctrl-C)."""
    manifest["scenes"] = entries
    files.write_manifest(folder / files.MANIFEST, manifest)
    common = {"model_sha256": sha, "s5geo_version": __version__}
    files.write_index(folder / files.INDEX, list(entries.values()), crs, common)


def _mosaics(
    folder: Path, entries: dict[str, dict[str, Any]], opts: RunOptions, crs: str | None
) -> tuple[Path | None, str | None]:
    finished = [e for e in entries.values() if e["status"] in ("done", "skipped")]
    mosaic = folder / files.MOSAIC
    note = files.write_mosaic(mosaic, [Path(e["raster"]) for e in finished], crs)
    if note is None and opts.confidence:
        conf = [Path(e["confidence"]) for e in finished]
        files.write_mosaic(folder / files.CONFIDENCE_MOSAIC, conf, crs)
    return (mosaic if note is None else None), note


def _outcome(e: dict[str, Any]) -> SceneOutcome:
    return SceneOutcome(
        scene=e["scene"],
        input=e["input"],
        status=e["status"],
        seconds=float(e.get("seconds") or 0.0),
        error=e.get("error"),
        item_id=e.get("item_id"),
        raster=e.get("raster"),
        confidence=e.get("confidence"),
        polygons=e.get("polygons"),
    )


@dataclass
class _Work:
    """A scene to run: ``task`` for :func:`run_scene`, or, when ``blocked``, the block tasks
    still to run and then the assembly ``task`` (:mod:`s5geo.largearea.blocks`)."""

    stem: str
    task: dict[str, Any]
    blocks: list[dict[str, Any]]
    blocked: bool


def _plan_work(
    folder: Path,
    scene: SceneInput,
    entry: dict[str, Any],
    before: dict[str, Any] | None,
    common: dict[str, Any],
    opts: RunOptions,
    max_pixels: int,
) -> _Work:
    """The work of one scene: one task, or blocks of about ``max_pixels`` then an assembly.
    Blocks that an earlier run of the same scene finished (``before``, its manifest entry with
    the same input and the same blocks, their files still there) are not run again; ``entry``
    records the scene's blocks and those done."""
    task = {**common, "name": scene.name, "raster": entry["raster"],
            "confidence": entry.get("confidence"), "polygons": entry.get("polygons"),
            "bounds": entry.get("extent_bounds")}  # fmt: skip
    blocks = units.plan(scene.name, task, max_pixels, polygons=bool(entry.get("polygons")))
    if blocks is None:
        return _Work(scene.stem, task, [], False)
    rows = [[b.index, b.first, b.last, b.row0, b.row1] for b in blocks]
    parts = [units.block_files(folder, scene.stem, b.index, opts.confidence) for b in blocks]
    done: dict[str, int] = {}
    old = (before or {}).get("blocks") or {}
    if before and before.get("identity") == entry["identity"] and old.get("rows") == rows:
        done = {
            k: int(v)
            for k, v in old.get("done", {}).items()
            if all(Path(f).is_file() for f in parts[int(k)].values())
        }
    entry["blocks"] = {"rows": rows, "done": done}
    entry.update(footprint(scene.name))  # in the run index while its blocks run
    todo = [
        {**task, "block": asdict(b), **part, "polygons": None}
        for b, part in zip(blocks, parts, strict=True)
        if str(b.index) not in done
    ]
    listing = [
        {"row0": b.row0, "row1": b.row1, **part} for b, part in zip(blocks, parts, strict=True)
    ]
    assemble = {**task, "blocks": listing, "windows_run": sum(done.values())}
    return _Work(scene.stem, assemble, todo, True)


def _first_crs(scenes: Sequence[SceneInput]) -> str:
    """The first scene's CRS, the default CRS of a run's extent."""
    import rasterio

    with remote_env(), rasterio.open(scenes[0].name) as ds:
        if ds.crs is None:
            raise UserError(f"{scenes[0].label} has no CRS: give extent_crs to place the extent")
        return str(ds.crs)


def _within_extent(
    todo: list[tuple[SceneInput, dict[str, Any]]],
    entries: dict[str, dict[str, Any]],
    opts: RunOptions,
) -> list[tuple[SceneInput, dict[str, Any]]]:
    """The scenes of ``todo`` that overlap ``opts.extent``, each entry given the part it covers
    in its own CRS (``extent_bounds``); the others are recorded as outside. A scene that cannot
    be read stays, without bounds: its task fails with the reason."""
    import rasterio
    from rasterio.crs import CRS
    from rasterio.errors import RasterioError
    from rasterio.warp import transform_bounds

    assert opts.extent is not None and opts.extent_crs is not None
    source = CRS.from_user_input(opts.extent_crs)
    kept = []
    for scene, entry in todo:
        try:
            with remote_env(), rasterio.open(scene.name) as ds:
                if ds.crs is None:
                    raise UserError(f"{scene.label} has no CRS: an extent cannot be placed on it")
                # densified edges: a rectangle in one CRS is curved in another
                xmin, ymin, xmax, ymax = transform_bounds(
                    source, ds.crs, *opts.extent, densify_pts=21
                )
                left, bottom, right, top = ds.bounds
        except RasterioError:
            kept.append((scene, entry))
            continue
        part = (max(xmin, left), max(ymin, bottom), min(xmax, right), min(ymax, top))
        if part[0] >= part[2] or part[1] >= part[3]:
            entries[scene.stem] = {**entries[scene.stem], "status": "outside", "seconds": 0.0}
            continue
        entries[scene.stem]["extent_bounds"] = list(part)
        kept.append((scene, entries[scene.stem]))
    return kept


Recorder = Callable[[str, dict[str, Any]], "str | None"]


def _run_here(
    works: list[_Work], record: Recorder, record_block: Recorder, progress: Any
) -> str | None:
    """Run ``works`` one after the other in this process; the first failure's message (the
    rest is not run) or None."""
    for work in works:
        if not work.blocked:
            failure = record(work.stem, run_scene(work.task, progress))
        else:
            results = []
            for task in work.blocks:
                results.append(units.run_block(task, progress))
                failure = record_block(work.stem, results[-1])
                if failure:
                    return failure
            failure = record(work.stem, units.assemble_scene(work.task, *results))
        if failure:
            return failure
    return None


def _run_on_dask(
    works: list[_Work],
    workers: int,
    scheduler: str | None,
    record: Recorder,
    record_block: Recorder,
    say: Callable[[str], None],
) -> tuple[str | None, str | None]:
    """Run ``works`` on a Dask cluster (a LocalCluster of ``workers`` processes, or the one at
    ``scheduler``), recording each result as it arrives: every block of every scene runs as
    soon as a worker is free, and a scene's assembly once its blocks are done. Returns the first
    failure's message (without keep_going, the remaining tasks are cancelled) and the dashboard
    link."""
    import logging
    from importlib.util import find_spec

    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:  # pragma: no cover - a deployment dependency
        raise UserError(f"running on Dask needs dask[distributed] ({exc})") from None

    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as exc:
            raise UserError(f"cannot reach the Dask scheduler at {scheduler} ({exc})") from None
    else:
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            # The dashboard needs bokeh, which is optional: without it, no link to give.
            dashboard_address=":0" if find_spec("bokeh") else None,
            silence_logs=logging.ERROR,
        )
        client = Client(cluster)
    dashboard = client.dashboard_link if find_spec("bokeh") else None
    try:
        if dashboard:
            say(f"Dask dashboard: {dashboard}")
        futures: dict[Any, tuple[Recorder, str]] = {}
        for work in works:
            # retries: a task whose worker died runs again elsewhere; a scene's own errors are
            # returned, not raised, so they are never retried.
            parts = []
            for task in work.blocks:
                key = f"s5geo-{work.stem}-block{task['block']['index']}-{id(task)}"
                future = client.submit(units.run_block, task, key=key, pure=False, retries=2)
                futures[future] = (record_block, work.stem)
                parts.append(future)
            # An assembly waits for its scene's blocks (Dask hands it their summaries).
            run = units.assemble_scene if work.blocked else run_scene
            future = client.submit(run, work.task, *parts, key=f"s5geo-{work.stem}-{id(work)}",
                                   pure=False, retries=2)  # fmt: skip
            futures[future] = (record, work.stem)
        for future in as_completed(list(futures)):
            recorder, stem = futures[future]
            failure = recorder(stem, future.result())
            if failure:
                for other in futures:
                    other.cancel()
                return failure, dashboard
        return None, dashboard
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
