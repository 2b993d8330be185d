"""What every task of a run does on its worker: load the model once, read the task's options.

Tasks travel as small dicts of names and numbers (the scheduler never holds pixels); the model
is loaded once per worker process and kept for every task it runs after.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from s5geo.errors import UserError
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
    return PredictOptions(**task["options"])


def one_line(exc: BaseException) -> str:
    """The first line of an error's message (its type when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextmanager
def outcome(out: dict[str, Any], task: dict[str, Any]) -> Iterator[None]:
    """Record the task's work in the ``with`` body into its summary ``out``: the seconds it
    took, and an error. A scene's own errors (:class:`UserError`, GDAL's) leave ``out`` failed
    with the message; other exceptions are bugs: recorded with ``bug: True``, or raised when
    ``task['raise_bugs']``. Tasks return summaries rather than raise so that one bad scene does
    not stop a Dask run (``--keep-going`` decides what happens next)."""
    from rasterio.errors import RasterioError

    start = time.perf_counter()
    try:
        yield
    except (UserError, RasterioError) as exc:
        out["error"] = one_line(exc)
    except Exception as exc:
        if task.get("raise_bugs"):
            raise
        out.update(error=f"{type(exc).__name__}: {one_line(exc)}", bug=True)
    finally:
        out["seconds"] = time.perf_counter() - start


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
