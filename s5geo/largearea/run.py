"""Many scenes in one run: scheduling, per-worker model cache, resume, run index (package doc).

The work unit is one scene. A task takes and returns small dicts of names and numbers
(:func:`run_scene`): the scheduler never holds pixels, and each worker reads its scene and writes
its outputs itself, into the run folder that every worker must see (a shared file system).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from s5geo import __version__
from s5geo.errors import UserError
from s5geo.io.inputs import SceneInput, input_identity, remote_env
from s5geo.largearea import outputs as files

# Errors that are the scene's fault (unreadable, missing, refused): recorded as "failed" and,
# without keep_going, shown as one line. Anything else is a bug and keeps its traceback.
_MODELS: dict[tuple[str, tuple[str, ...] | None, int], Any] = {}
_MODELS_LOCK = threading.Lock()


@dataclass(frozen=True)
class RunOptions:
    """What shapes every scene's outputs; a change between two runs restarts the run."""

    model: str | None = None  # ONNX file; None: the bundled model
    providers: tuple[str, ...] | None = None
    tile_size: int | None = None
    overlap: int | None = None
    batch_size: int = 4
    resample: bool = True
    polygons: bool = False  # a GeoPackage per scene
    confidence: bool = False  # a confidence COG per scene
    min_area_m2: float = 0.0
    simplify_m: float = 0.0

    def key(self) -> dict[str, Any]:
        """The options that decide the outputs (the batch size does not: it may change)."""
        d = asdict(self)
        del d["model"], d["batch_size"]
        d["providers"] = list(self.providers) if self.providers else None
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


def model_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _worker_model(path: str, providers: tuple[str, ...] | None, threads: int) -> Any:
    """The model of this process, loaded once (one ONNX Runtime session per worker process)."""
    from s5geo.infer import load_model

    key = (path, providers, threads)
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = load_model(Path(path), list(providers) if providers else None, threads)
        return _MODELS[key]


def run_scene(task: dict[str, Any], progress: Any = None) -> dict[str, Any]:
    """Segment one scene as ``task`` says, and return its summary (no pixels).

    Runs on a Dask worker or in the calling process. A scene's own errors (:class:`UserError`,
    GDAL's) are returned as ``status: failed``; other exceptions are bugs: returned as failed
    with ``bug: True``, or raised when ``task['raise_bugs']``.
    """
    from rasterio.errors import RasterioError

    from s5geo.segment import segment_scene

    start = time.perf_counter()
    out: dict[str, Any] = {"status": "failed", "worker_pid": os.getpid()}
    try:
        with remote_env():
            out.update(_footprint(task["name"]))
            model = _worker_model(task["model"], task["providers"], task["threads"])
            result = segment_scene(
                task["name"],
                out_raster=task["raster"],
                out_vector=task.get("polygons"),
                model=model,
                confidence=task.get("confidence"),
                tile_size=task["tile_size"],
                overlap=task["overlap"],
                batch_size=task["batch_size"],
                resample=task["resample"],
                min_area_m2=task["min_area_m2"],
                simplify_m=task["simplify_m"],
                overwrite=task["overwrite"],
                progress=progress,
            )
        pred = result.prediction
        out.update(status="done", width=pred.width, height=pred.height)
    except (UserError, RasterioError) as exc:
        out["error"] = _one_line(exc)
    except Exception as exc:
        if task.get("raise_bugs"):
            raise
        out.update(error=f"{type(exc).__name__}: {_one_line(exc)}", bug=True)
    out["seconds"] = time.perf_counter() - start
    return out


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _footprint(name: str) -> dict[str, Any]:
    """The scene's bounds and CRS for the run index; nothing when it cannot be opened (the
    prediction then fails with the reason)."""
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(name) as ds:
                return {
                    "bounds": list(ds.bounds),
                    "footprint_crs": ds.crs.to_wkt() if ds.crs else None,
                    "width": ds.width,
                    "height": ds.height,
                }
    except RasterioError:
        return {}


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
    progress: Any = None,
    log: Callable[[str], None] | None = None,
) -> RunResult:
    """Segment ``scenes`` into the folder ``out_dir``: per scene ``STEM.tif`` (classes), with
    ``options.confidence`` ``STEM_confidence.tif``, with ``options.polygons`` ``STEM.gpkg``;
    for the run ``mosaic.vrt``, ``run_index.gpkg`` (layer ``scenes``: footprints in the first
    scene's CRS or ``crs``) and the manifest ``s5geo-run.json``.

    ``workers`` > 0 starts a Dask LocalCluster of that many worker processes; ``scheduler`` uses
    the Dask cluster at that address; neither runs in this process (``progress`` then drives a
    per-scene progress callback). Scenes the manifest lists as done with the same model, options
    and input identity are skipped; a changed model or option discards the earlier results
    (``RunResult.restarted`` says why). A scene that fails stops the run with a
    :class:`UserError`, or with ``keep_going`` is recorded as failed while the rest completes.
    ``log`` receives one line per event (a scene finished, the dashboard link, a restart).
    """
    from s5geo.infer import default_model_path

    say = log or (lambda line: None)
    opts = options or RunOptions()
    if workers < 0:
        raise UserError(f"workers must be 0 (this process) or more, not {workers}")
    if workers and scheduler:
        raise UserError("give workers or scheduler, not both")
    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} exists and is not a folder: out_dir names the run's folder")
    folder.mkdir(parents=True, exist_ok=True)
    model_path = str(Path(opts.model).resolve()) if opts.model else str(default_model_path())
    if not Path(model_path).is_file():
        raise UserError(f"{opts.model}: no such model file")
    sha = model_sha256(model_path)
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
    # Written before any scene: its presence marks the folder's outputs as this run's own, which
    # a rerun may replace.
    owned = old is not None
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
    manifest["scenes"] = entries
    files.write_manifest(manifest_path, manifest)

    threads = max(1, (os.cpu_count() or 1) // workers) if workers else 0
    tasks = [
        {
            "name": scene.name,
            "model": model_path,
            "providers": opts.providers,
            "threads": threads,
            "tile_size": opts.tile_size,
            "overlap": opts.overlap,
            "batch_size": opts.batch_size,
            "resample": opts.resample,
            "min_area_m2": opts.min_area_m2,
            "simplify_m": opts.simplify_m,
            "overwrite": overwrite or owned,
            "raster": entry["raster"],
            "confidence": entry.get("confidence"),
            "polygons": entry.get("polygons"),
            "raise_bugs": not keep_going and not (workers or scheduler),
        }
        for scene, entry in todo
    ]
    start = time.perf_counter()
    pixels = 0
    failure: str | None = None
    dashboard = None
    n_skipped = sum(1 for e in entries.values() if e["status"] == "skipped")
    if n_skipped:
        say(f"resuming: {n_skipped} of {len(scenes)} scenes already done")

    def record(stem: str, out: dict[str, Any]) -> str | None:
        nonlocal pixels
        entry = entries[stem]
        entry.update({k: v for k, v in out.items() if k not in ("worker_pid",)})
        if out["status"] == "done":
            pixels += int(out.get("width", 0)) * int(out.get("height", 0))
        files.write_manifest(manifest_path, manifest)
        finished = sum(1 for e in entries.values() if e["status"] in ("done", "failed"))
        rate = pixels / 1e6 / max(time.perf_counter() - start, 1e-9)
        what = "done" if out["status"] == "done" else f"failed: {out.get('error')}"
        say(
            f"[{finished + n_skipped}/{len(scenes)}] {entry['input']}: {what} "
            f"({out['seconds']:.1f} s); run {rate:.2f} MP/s"
        )
        if out["status"] == "failed" and not keep_going:
            message = str(out.get("error"))
            if out.get("bug"):
                raise RuntimeError(f"{entry['input']}: {message}")
            return message if entry["input"] in message else f"{entry['input']}: {message}"
        return None

    try:
        if workers or scheduler:
            failure, dashboard = _run_on_dask(todo, tasks, workers, scheduler, record, say)
        else:
            for (scene, _), task in zip(todo, tasks, strict=True):
                failure = record(scene.stem, run_scene(task, progress))
                if failure:
                    break
    finally:
        for entry in entries.values():
            if entry["status"] == "pending":
                entry["status"] = "not run"
        _finish(folder, manifest, entries, sha, crs, opts)
    if failure:
        raise UserError(failure)
    mosaic, note = _mosaics(folder, entries, opts)
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
    )


def _outputs(folder: Path, stem: str, opts: RunOptions) -> dict[str, Any]:
    out: dict[str, Any] = {"raster": str(folder / f"{stem}.tif")}
    if opts.confidence:
        out["confidence"] = str(folder / f"{stem}_confidence.tif")
    if opts.polygons:
        out["polygons"] = str(folder / f"{stem}.gpkg")
    return out


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
    folder: Path, entries: dict[str, dict[str, Any]], opts: RunOptions
) -> tuple[Path | None, str | None]:
    finished = [e for e in entries.values() if e["status"] in ("done", "skipped")]
    mosaic = folder / files.MOSAIC
    note = files.write_mosaic(mosaic, [Path(e["raster"]) for e in finished])
    if note is None and opts.confidence:
        conf = [Path(e["confidence"]) for e in finished]
        files.write_mosaic(folder / files.CONFIDENCE_MOSAIC, conf)
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


def _run_on_dask(
    todo: list[tuple[SceneInput, dict[str, Any]]],
    tasks: list[dict[str, Any]],
    workers: int,
    scheduler: str | None,
    record: Callable[[str, dict[str, Any]], str | None],
    say: Callable[[str], None],
) -> tuple[str | None, str | None]:
    """Run ``tasks`` on a Dask cluster (a LocalCluster of ``workers`` processes, or the one at
    ``scheduler``), recording each result as it arrives. Returns the first failure's message
    (without keep_going, the remaining tasks are cancelled) and the dashboard link."""
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
        futures = {}
        for (scene, _), task in zip(todo, tasks, strict=True):
            # retries: a task whose worker died runs again elsewhere; a scene's own errors are
            # returned, not raised, so they are never retried.
            future = client.submit(run_scene, task, key=f"s5geo-{scene.stem}-{id(task)}",
                                   pure=False, retries=2)  # fmt: skip
            futures[future] = scene.stem
        for future in as_completed(list(futures)):
            failure = record(futures[future], future.result())
            if failure:
                for other in futures:
                    other.cancel()
                return failure, dashboard
        return None, dashboard
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
