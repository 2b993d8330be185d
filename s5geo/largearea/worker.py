"""What every task of a run does on its worker: load the model once, read the task's options.

Tasks travel as small dicts of names and numbers (the scheduler never holds pixels); the model
is loaded once per worker process and kept for every task it runs after.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from s5geo.options import PredictOptions

_MODELS: dict[tuple[str, tuple[str, ...] | None, int], Any] = {}
_MODELS_LOCK = threading.Lock()


def worker_model(path: str, providers: tuple[str, ...] | None, threads: int) -> Any:
    """The model of this process, loaded once (one ONNX Runtime session per worker process)."""
    from s5geo.infer import load_model

    key = (path, providers, threads)
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = load_model(Path(path), list(providers) if providers else None, threads)
        return _MODELS[key]


def task_options(task: dict[str, Any]) -> PredictOptions:
    """The prediction options a task carries."""
    return PredictOptions(
        tile_size=task["tile_size"],
        overlap=task["overlap"],
        batch_size=task["batch_size"],
        resample=task["resample"],
        min_area_m2=task["min_area_m2"],
        simplify_m=task["simplify_m"],
    )


def one_line(exc: BaseException) -> str:
    """The first line of an error's message (its type when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def footprint(name: str) -> dict[str, Any]:
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
