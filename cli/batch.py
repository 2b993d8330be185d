"""``s5geo predict ... --out-dir FOLDER``: many scenes in one run, its progress and summary."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import typer

from s5geo.errors import UserError
from s5geo.io.inputs import SceneInput
from s5geo.options import PredictOptions

# Exit status of a --keep-going run in which some scenes failed (2 is a user error, 1 a bug).
SOME_FAILED = 3


def run_folder(
    inputs: Sequence[SceneInput],
    out_dir: Path,
    loaded_model: Any,
    *,
    model: Path | None,
    options: PredictOptions,
    polygons: bool,
    confidence: bool,
    workers: int,
    scheduler: str | None,
    keep_going: bool,
    overwrite: bool,
    crs: str | None,
    quiet: bool,
    layer: Path | None = None,
    block_mp: float | None = None,
    extent: tuple[float, float, float, float] | None = None,
) -> None:
    """Run :func:`s5geo.largearea.predict_many` and report it: a line per scene on stderr, the
    run's files on stdout, exit status 3 when ``keep_going`` let scenes fail. ``layer``: the
    run's polygon layer (``--out run.gpkg`` or ``run.parquet`` beside ``--out-dir``);
    ``block_mp``: the block size in megapixels (``--block-mp``; None: the library's default).
    ``extent``: process only this rectangle (``--extent``), in ``crs`` or the first scene's."""
    from s5geo.cli.progress import progress_bar, stderr

    from s5geo.infer.runtime import short_name
    from s5geo.largearea import RunOptions, predict_many

    if workers < 0:
        raise UserError(f"--workers takes 0 (this process) or more, not {workers}")
    if crs is not None:
        from rasterio.crs import CRS
        from rasterio.errors import CRSError

        try:
            CRS.from_user_input(crs)
        except CRSError:
            raise UserError(f"--crs {crs} is not a CRS (e.g. EPSG:3857)") from None
    run_options = RunOptions(
        model=str(model) if model else None,
        predict=options,
        polygons=polygons,
        confidence=confidence,
        extent=extent,
        extent_crs=crs,
    )
    if block_mp is not None:
        if not block_mp > 0:
            raise UserError(f"--block-mp takes a number of megapixels above 0, not {block_mp:g}")
        run_options = replace(run_options, block_megapixels=block_mp)

    def log(line: str) -> None:
        if not quiet:
            stderr.print(line, soft_wrap=True, highlight=False, markup=False)

    where = f"{workers} Dask workers" if workers else (scheduler or "this process")
    log(f"{len(inputs)} scenes on {where}; model {loaded_model.path.name}")
    # A per-scene progress bar only in this process: Dask workers report per scene instead.
    quiet_bar = quiet or bool(workers or scheduler)
    with progress_bar(quiet_bar, label=f"({short_name(loaded_model.provider)})") as bar:
        result = predict_many(
            inputs, out_dir, run_options, workers=workers, scheduler=scheduler,
            keep_going=keep_going, overwrite=overwrite, crs=crs, layer=layer, progress=bar,
            log=log,
        )  # fmt: skip
    counts: dict[str, int] = {}
    for scene in result.scenes:
        counts[scene.status] = counts.get(scene.status, 0) + 1
    log(
        ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        + f"; {result.megapixels:.1f} MP in {result.seconds:.1f} s"
    )
    if result.mosaic_note:
        log(f"no mosaic: {result.mosaic_note}")
    if result.mosaic is not None:
        print(f"mosaic: {result.mosaic}")
    if result.layer is not None:
        print(f"polygons: {result.layer} ({result.layer_polygons} features)")
    print(f"run index: {result.index}")
    print(f"manifest: {result.manifest}")
    if result.failed:
        names = ", ".join(f"{s.input} ({s.error})" for s in result.failed)
        print(f"failed: {names}", file=sys.stderr)
        raise typer.Exit(SOME_FAILED)
