"""A scene larger than a block runs as blocks of its window rows, then one task assembles it.

Each block task predicts one :class:`s5geo.infer.tiling.RowBlock` of the scene's window plan
(:func:`s5geo.infer.predict_block`: the rows the whole scene's run gives, bit for bit) into a
file of raw class rows (and confidence rows) under the run folder's ``.s5geo-blocks``, committed
by a rename. Once a scene's blocks are all done, its assembly task streams their rows in order
through the single-process writer (:func:`s5geo.infer.write_prediction`), so the class COG is
the one ``predict_scene`` writes, byte for byte, and then polygonizes the COG when asked.
Memory stays that of the single-process predictor: rows go to disk as they are finished and
come back a few at a time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

import numpy as np

from s5geo.errors import UserError
from s5geo.infer.tiling import RowBlock
from s5geo.io.inputs import remote_env
from s5geo.largearea.worker import footprint, outcome, task_options, worker_model
from s5geo.modelfile import NODATA

BLOCKS = ".s5geo-blocks"  # the run folder's subfolder of block files, one folder per scene
READ_ROWS = 256  # rows of a block file the assembly reads at a time


def block_files(folder: Path, stem: str, index: int, confidence: bool) -> dict[str, str]:
    """The files of block ``index`` of scene ``stem``: its class rows, and confidence rows."""
    base = folder / BLOCKS / stem
    files = {"classes": str(base / f"{index:05d}.classes")}
    if confidence:
        files["confidence_rows"] = str(base / f"{index:05d}.confidence")
    return files


def plan(name: str, task: dict[str, Any], max_pixels: int, polygons: bool) -> list[RowBlock] | None:
    """The blocks of about ``max_pixels`` pixels of scene ``name`` with the model and options of
    ``task``; None when the scene cannot be planned (it then runs as one task, which fails with
    the reason) or is no larger than a block."""
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    from s5geo.infer import plan_blocks
    from s5geo.segment import check_polygon_crs

    try:
        with remote_env(), warnings.catch_warnings():
            # A scene without georeferencing is predicted on its pixel grid, as its task says.
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(name) as ds:
                if ds.width * ds.height <= max_pixels:
                    return None
            if polygons:
                check_polygon_crs(name)
            model = worker_model(task["model"], task["providers"], task["threads"])
            blocks = plan_blocks(
                name, max_pixels, model=model, options=task_options(task), bounds=task["bounds"]
            )
    except (UserError, RasterioError):
        return None
    return blocks if len(blocks) > 1 else None


class _RowFile:
    """A block file written under a temporary name beside it, renamed when complete."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file: IO[bytes] = open(self.tmp, "wb")  # noqa: SIM115 - closed by commit/discard

    def write(self, rows: np.ndarray) -> None:
        self.file.write(np.ascontiguousarray(rows, np.uint8).tobytes())

    def commit(self) -> None:
        self.file.close()
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        self.file.close()
        self.tmp.unlink(missing_ok=True)


def run_block(task: dict[str, Any], progress: Any = None) -> dict[str, Any]:
    """Predict one block of a scene into its block files, and return its summary (no pixels).

    Errors are returned as in :func:`s5geo.largearea.run.run_scene`. Idempotent: a block run
    again replaces its files with the same bytes.
    """
    from s5geo.infer import predict_block

    block = RowBlock(**task["block"])
    out: dict[str, Any] = {"status": "failed", "worker_pid": os.getpid(), "index": block.index}
    with outcome(out, task):
        with remote_env(), ExitStack() as stack:
            model = worker_model(task["model"], task["providers"], task["threads"])
            classes = _RowFile(task["classes"])
            stack.callback(classes.discard)
            conf = _RowFile(task["confidence_rows"]) if task.get("confidence_rows") else None
            if conf is not None:
                stack.callback(conf.discard)

            def emit(row: int, cls: np.ndarray, confidence: np.ndarray) -> None:
                classes.write(cls)
                if conf is not None:
                    conf.write(confidence)

            result = predict_block(
                task["name"], block, emit, model=model, options=task_options(task),
                confidence=conf is not None, bounds=task["bounds"], progress=progress,
            )  # fmt: skip
            classes.commit()
            if conf is not None:
                conf.commit()
        out.update(status="done", pixels=result.pixels, windows_run=result.windows_run)
    return out


def block_rows(
    blocks: Sequence[dict[str, Any]], width: int
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """The rows of the block files of ``blocks`` (each ``row0``, ``row1``, ``classes`` and
    ``confidence_rows`` when written), in order, ``READ_ROWS`` at a time, as
    :func:`s5geo.infer.write_prediction` takes them."""
    for block in blocks:
        row0, row1 = block["row0"], block["row1"]
        with ExitStack() as stack:
            cls_f = stack.enter_context(open(block["classes"], "rb"))
            conf_name = block.get("confidence_rows")
            conf_f = stack.enter_context(open(conf_name, "rb")) if conf_name else None
            for row in range(row0, row1, READ_ROWS):
                n = min(READ_ROWS, row1 - row)
                cls = _read(cls_f, n, width)
                conf = _read(conf_f, n, width) if conf_f else np.full((n, 1), NODATA, np.uint8)
                yield row, cls, conf


def _rows_width(blocks: Sequence[dict[str, Any]]) -> int:
    """The width of the rows in a scene's block files (the processed region's, which an
    extent makes narrower than the scene): a block file holds its rows, one byte a pixel."""
    first = blocks[0]
    return os.path.getsize(first["classes"]) // (first["row1"] - first["row0"])


def _read(f: IO[bytes], rows: int, width: int) -> np.ndarray:
    data = f.read(rows * width)
    if len(data) != rows * width:
        raise UserError(f"{f.name} is shorter than its block: the block must run again")
    return np.frombuffer(data, np.uint8).reshape(rows, width)


def assemble_scene(task: dict[str, Any], *block_results: dict[str, Any]) -> dict[str, Any]:
    """Write a scene's class COG (and confidence COG, polygons) from its block files, and
    return its summary as :func:`s5geo.largearea.run.run_scene` does.

    ``block_results`` are the summaries of the blocks run for it (on Dask, this task waits for
    them): a failed block fails the scene with the block's error. ``task['windows_run']``
    counts the windows of blocks done by an earlier run.
    """
    from s5geo.infer import write_prediction

    out: dict[str, Any] = {"status": "failed", "worker_pid": os.getpid()}
    failed = [b for b in block_results if b["status"] != "done"]
    if failed:
        out.update({k: v for k, v in failed[0].items() if k in ("error", "bug")})
        out["seconds"] = 0.0
        return out
    name = task["name"]
    with outcome(out, task):
        with remote_env():
            out.update(footprint(name))
            windows_run = task["windows_run"] + sum(b["windows_run"] for b in block_results)
            if windows_run == 0:  # as the single-process predictor says it
                raise UserError(
                    f"{Path(name).name} holds no valid pixels in the processed extent (all nodata)"
                )
            model = worker_model(task["model"], task["providers"], task["threads"])
            options = task_options(task)
            width = int(out["width"]) if task["bounds"] is None else _rows_width(task["blocks"])
            write_prediction(
                name, task["raster"], block_rows(task["blocks"], width),
                model=model, options=options, confidence=task.get("confidence"),
                bounds=task["bounds"], overwrite=True,
            )  # fmt: skip
            if task.get("polygons"):
                _polygons(Path(task["raster"]), Path(task["polygons"]), model, task)
        out["status"] = "done"
    return out


def _polygons(raster: Path, out: Path, model: Any, task: dict[str, Any]) -> None:
    """The polygons of the class COG ``raster`` in the GeoPackage ``out``, as
    :func:`s5geo.segment.segment_scene` makes them (the same polygonizer, of the same rows),
    written under a temporary name and renamed."""
    from s5geo.vector import polygonize_raster

    info = model.info
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp{out.suffix}")
    tmp.unlink(missing_ok=True)
    try:
        polygonize_raster(
            raster, tmp, class_names=dict(info.class_names),
            class_colors={k: info.color(k) for k in info.class_names},
            min_area_m2=task["options"]["min_area_m2"], simplify_m=task["options"]["simplify_m"],
        )  # fmt: skip
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
