"""Runs one segmentation job in a child Python process, outside QGIS's own process.

Why a separate process: the QGIS executable links its own GDAL, GEOS and PROJ into the global
symbol namespace, so inside ``qgis`` and ``qgis_process`` the wheels s5geo uses (shapely,
rasterio, pyogrio) would call into QGIS's older libraries instead of the ones they were built
with (shapely 2.1 on Debian 12's GEOS 3.11 fails on every WKB write, for example). A child
process has only the wheels' libraries, and a crash in native code cannot take QGIS down.

Protocol (JSON lines; no QGIS import here):
- stdin, first line: ``{"scene": ..., "kwargs": {...}}`` for :func:`s5geo.segment.segment_scene`;
  any later line asks to cancel.
- stdout: ``{"progress": {"stage", "fraction", "message"}}`` lines, then one final line,
  ``{"result": {...}}`` or ``{"error": message, "kind": "user" | "cancelled" | "missing"}``.
  Anything else (a bug) ends with a traceback on stderr and a non-zero status.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any


def emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> int:
    job = json.loads(sys.stdin.readline())
    cancelled = threading.Event()

    def watch_stdin() -> None:
        if sys.stdin.readline():  # any line (or the parent closing the pipe abnormally)
            cancelled.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    try:
        from s5geo.errors import Cancelled, UserError
        from s5geo.segment import segment_scene
    except ImportError as exc:
        emit({"error": str(exc), "kind": "missing"})
        return 3

    def progress(p: Any) -> bool:
        emit({"progress": {"stage": p.stage, "fraction": p.fraction, "message": p.message}})
        return not cancelled.is_set()

    try:
        result = segment_scene(job["scene"], progress=progress, **job["kwargs"])
    except Cancelled:
        emit({"error": "Cancelled: no output was written.", "kind": "cancelled"})
        return 130
    except UserError as exc:
        emit({"error": str(exc), "kind": "user"})
        return 2
    pred = result.prediction
    emit(
        {
            "result": {
                "provider": pred.provider,
                "width": pred.width,
                "height": pred.height,
                "tiles": pred.windows_run,
                "tile_size": pred.tile_size,
                "seconds": result.seconds,
                "warnings": list(pred.warnings),
            }
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
