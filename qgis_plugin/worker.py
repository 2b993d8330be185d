"""Runs one s5geo job (segmentation or fitting a model) in a child Python process, outside QGIS.

Why a separate process: the QGIS executable links its own GDAL, GEOS and PROJ into the global
symbol namespace, so inside ``qgis`` and ``qgis_process`` the wheels s5geo uses (shapely,
rasterio, pyogrio) would call into QGIS's older libraries instead of the ones they were built
with (shapely 2.1 on Debian 12's GEOS 3.11 fails on every WKB write, for example). A child
process has only the wheels' libraries, and a crash in native code cannot take QGIS down.

Protocol (JSON lines; no QGIS import here):
- stdin, first line: the job, either ``{"scene": ..., "kwargs": {...}, "names": {...}}`` for
  :func:`s5geo.segment.segment_scene` (``kwargs["options"]`` holds the fields of
  :class:`s5geo.options.PredictOptions`, ``names`` what errors call the library's parameters),
  or ``{"task": "fit", "scenes": [...], "labels": ..., "out": ..., "kwargs": {...}, "map": {...}
  | null}`` for :func:`s5geo.fit.fit_model` followed, when ``map`` is given, by the
  segmentation of the first scene with the fitted model (``map`` holds ``segment_scene``
  arguments); any later line asks to cancel.
- stdout: ``{"progress": {"stage", "fraction", "message"}}`` lines, then one final line,
  ``{"result": {...}}`` or ``{"error": message, "kind": "user" | "cancelled" | "missing"}``.
  Anything else (a bug) ends with a traceback on stderr and a non-zero status.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Share of a fit job's progress bar given to fitting when a map follows (the rest: the map).
FIT_SHARE = 0.8
# What the progress bar says in each stage of a fit (the library's own text is terse: "fit 0/1").
FIT_STAGES = {
    "features": "Reading the image features under the labels",
    "validate": "Cross-validating by polygon",
    "fit": "Fitting the model",
}


def emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def reporter(
    cancelled: threading.Event,
    span: tuple[float, float] = (0.0, 1.0),
    texts: dict[str, str] | None = None,
) -> Callable[[Any], bool]:
    """A progress callback for s5geo that relays reports and answers False once cancelled.

    A report's fraction is placed in ``span`` of the whole job's bar; ``texts`` replace the
    messages of some stages.
    """
    lo, hi = span
    texts = texts or {}

    def progress(p: Any) -> bool:
        fraction = lo + (hi - lo) * min(1.0, float(p.fraction))
        message = texts.get(p.stage, p.message)
        emit({"progress": {"stage": p.stage, "fraction": fraction, "message": message}})
        return not cancelled.is_set()

    return progress


def segment(job: dict[str, Any], cancelled: threading.Event) -> dict[str, Any]:
    """Segment one scene; the summary the plugin reports."""
    from s5geo.options import PredictOptions
    from s5geo.segment import segment_scene

    kwargs = dict(job["kwargs"])
    options = PredictOptions(**kwargs.pop("options", {}))
    result = segment_scene(job["scene"], options=options, progress=reporter(cancelled), **kwargs)
    pred = result.prediction
    return {
        "provider": pred.provider,
        "width": pred.width,
        "height": pred.height,
        "tiles": pred.windows_run,
        "tile_size": pred.tile_size,
        "seconds": result.seconds,
        "warnings": list(pred.warnings),
    }


def fit(job: dict[str, Any], cancelled: threading.Event) -> dict[str, Any]:
    """Fit a model and, when asked, map the first scene with it; the summary the plugin reports.

    The map is made after the model is committed, so a Cancel or an error while mapping removes
    what the fit wrote: a cancelled job leaves nothing behind, as a cancelled fit alone does.
    """
    from s5geo.fit import fit_model
    from s5geo.segment import segment_scene

    wanted_map = job.get("map")
    share = FIT_SHARE if wanted_map else 1.0
    result = fit_model(
        job["scenes"],
        job["labels"],
        job["out"],
        maps=False,
        overwrite=True,  # Processing asks before overwriting a file the analyst picked
        progress=reporter(cancelled, (0.0, share), texts=FIT_STAGES),
        **job["kwargs"],
    )
    written = [p for p in (result.model, result.report, result.confusion_png) if p is not None]
    mapped = None
    if wanted_map:
        try:
            mapped = segment_scene(
                job["scenes"][0],
                model=str(result.model),
                overwrite=True,
                progress=reporter(
                    cancelled, (share, 1.0), texts={"window": "Mapping the first raster"}
                ),
                **wanted_map,
            )
        except BaseException:
            for path in written:
                Path(path).unlink(missing_ok=True)
            raise
    v = result.validation
    summary: dict[str, Any] = {
        "model": str(result.model),
        "report": str(result.report),
        "confusion_png": None if result.confusion_png is None else str(result.confusion_png),
        "class_names": {str(k): name for k, name in result.class_names.items()},
        "pixels": result.pixels,
        "geometries": result.geometries,
        "outside": result.outside,
        "seconds": result.seconds,
        "accuracy": None if v is None else v.accuracy,
        "miou": None if v is None else v.miou,
        "scores": result.scores,
        "warnings": list(result.warnings),
    }
    if mapped is not None:
        summary["warnings"] += list(mapped.prediction.warnings)
        summary["map_seconds"] = mapped.seconds
    return summary


TASKS: dict[str, Callable[[dict[str, Any], threading.Event], dict[str, Any]]] = {
    "segment": segment,
    "fit": fit,
}


def main() -> int:
    job = json.loads(sys.stdin.readline())
    cancelled = threading.Event()

    def watch_stdin() -> None:
        if sys.stdin.readline():  # any line (or the parent closing the pipe abnormally)
            cancelled.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    try:
        from s5geo.errors import Cancelled, ParameterError, UserError
    except ImportError as exc:
        emit({"error": str(exc), "kind": "missing"})
        return 3

    try:
        result = TASKS[job.get("task", "segment")](job, cancelled)
    except ImportError as exc:  # an s5geo too old for the task, or a dependency missing
        emit({"error": str(exc), "kind": "missing"})
        return 3
    except Cancelled:
        emit({"error": "Cancelled: no output was written.", "kind": "cancelled"})
        return 130
    except ParameterError as exc:  # named as the plugin's fields name the parameter
        emit({"error": exc.worded(job.get("names") or {}), "kind": "user"})
        return 2
    except UserError as exc:
        emit({"error": str(exc), "kind": "user"})
        return 2
    emit({"result": result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
