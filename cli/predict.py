"""``s5geo predict``: segment a scene into a land-cover COG and a polygon GeoPackage."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.table import Table

from s5geo.errors import ParameterError, UserError
from s5geo.options import OVERLAP_MAX_SHARE, PredictOptions

EXAMPLE = """
Example:

    s5geo predict scene.tif --out landcover.gpkg

writes landcover.gpkg (polygons) and landcover.tif (class raster, COG) with the bundled model.
Use --out landcover.tif for a raster-only run, --model to use your own ONNX model.
"""


def _parse_extent(extent: str | None) -> tuple[float, float, float, float] | None:
    if extent is None:
        return None
    try:
        xmin, ymin, xmax, ymax = (float(v) for v in extent.split(","))
    except ValueError:
        raise UserError("--extent takes four numbers: xmin,ymin,xmax,ymax (scene CRS)") from None
    if not all(math.isfinite(v) for v in (xmin, ymin, xmax, ymax)):
        raise UserError(f"--extent takes four finite numbers, not {extent}")
    if xmin >= xmax or ymin >= ymax:
        raise UserError("--extent must have xmin < xmax and ymin < ymax")
    return xmin, ymin, xmax, ymax


# The library's parameters, as this command's flags: a ParameterError is worded with them.
FLAGS = {
    "tile_size": "--tile-size",
    "overlap": "--overlap",
    "batch_size": "--batch-size",
    "providers": "--providers",
    "resample": "--resample",
    "min_area_m2": "--min-area",
    "simplify_m": "--simplify",
    "out_raster": "--raster",
    "out_vector": "--out .gpkg",
    "confidence": "--confidence",
    "quicklook": "--quicklook",
    "bounds": "--extent",
}
DEFAULTS = PredictOptions()
LIMITS = PredictOptions.LIMITS


@contextmanager
def _as_flags() -> Iterator[None]:
    """Library errors name its parameters (``batch_size``): re-raise them naming the flags."""
    try:
        yield
    except ParameterError as exc:
        raise UserError(exc.worded(FLAGS)) from None


def predict(
    # Strings, not Paths: GDAL dataset names such as /vsizip//abs/path.zip/scene.tif and URLs keep
    # their double slash.
    scenes: list[str] = typer.Argument(
        ...,
        help="Scenes to segment: GeoTIFF, COG, VRT, /vsi... names, https:// or s3:// URLs, globs, "
        "@list.txt, or a STAC Item/ItemCollection JSON. Several scenes need --out-dir.",
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Output .gpkg (polygons + raster) or .tif, for one scene; with --out-dir, the "
        "run's one polygon layer, .gpkg or .parquet (GeoParquet).",
    ),
    out_dir: Path | None = typer.Option(
        None,
        "--out-dir",
        help="Run folder for several scenes: STEM.tif per scene, mosaic.vrt, run_index.gpkg, "
        "and a manifest that lets the same command resume (docs/LARGE_AREAS.md).",
    ),
    polygons: bool = typer.Option(False, help="With --out-dir: also STEM.gpkg per scene."),
    with_confidence: bool = typer.Option(
        False, help="With --out-dir: also STEM_confidence.tif per scene."
    ),
    asset: str | None = typer.Option(
        None, help="STAC asset key to segment (default: matched to the model's bands)."
    ),
    workers: int = typer.Option(
        0, help="With --out-dir: run on a local Dask cluster of N worker processes."
    ),
    scheduler: str | None = typer.Option(
        None, help="With --out-dir: run on the Dask cluster at this address (tcp://host:8786)."
    ),
    keep_going: bool = typer.Option(
        False, help="With --out-dir: record unreadable scenes as failed and go on (exit 3)."
    ),
    block_mp: float | None = typer.Option(
        None,
        help="With --out-dir: scenes larger than this many megapixels run as blocks of about "
        "this size, spread over the workers and resumed block by block (default 32).",
    ),
    crs: str | None = typer.Option(
        None,
        help="With --out-dir: CRS of the run index and the --out polygon layer "
        "(default: the first scene's).",
    ),
    raster: Path | None = typer.Option(None, help="Class raster path (default: OUT with .tif)."),
    model: Path | None = typer.Option(None, help="ONNX model file (default: the bundled model)."),
    confidence: Path | None = typer.Option(None, help="Also write a confidence COG (0-100 %)."),
    quicklook: Path | None = typer.Option(None, help="Also write a PNG quicklook of the map."),
    tile_size: int | None = typer.Option(
        None, help=f"Tile side in pixels, at least {LIMITS['tile_size'].low:g} (model default)."
    ),
    overlap: int | None = typer.Option(
        None,
        help=f"Overlap between tiles in pixels, at most {OVERLAP_MAX_SHARE:.0%} of the tile "
        "(model default).",
    ),
    batch_size: int = typer.Option(DEFAULTS.batch_size, help="Tiles per inference batch."),
    providers: str | None = typer.Option(
        None, help="Execution providers in order, e.g. 'tensorrt,cuda,cpu' (default: best)."
    ),
    extent: str | None = typer.Option(
        None,
        help="Process only xmin,ymin,xmax,ymax (scene CRS; pixels if not georeferenced). With "
        "--out-dir: in --crs or the first scene's CRS; scenes outside it are not run.",
    ),
    min_area: float = typer.Option(
        DEFAULTS.min_area_m2, help="Minimum mapping unit in m² (smaller regions merge)."
    ),
    simplify: float = typer.Option(
        DEFAULTS.simplify_m, help="Simplification tolerance in metres (keeps topology)."
    ),
    resample: bool = typer.Option(
        DEFAULTS.resample, help="Resample to the model's resolution when it differs."
    ),
    overwrite: bool = typer.Option(False, help="Replace existing outputs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
) -> None:
    """Segment SCENES into land-cover classes: a COG class raster and GeoPackage polygons."""
    from s5geo.cli.progress import progress_bar, stderr

    from s5geo.infer import load_model
    from s5geo.infer.planning import tiling
    from s5geo.infer.runtime import short_name
    from s5geo.io.inputs import check_remote, remote_env, resolve_inputs
    from s5geo.segment import segment_scene

    with _as_flags():
        options = PredictOptions(
            tile_size=tile_size,
            overlap=overlap,
            batch_size=batch_size,
            providers=tuple(p.strip() for p in (providers or "").split(",") if p.strip()) or None,
            resample=resample,
            min_area_m2=min_area,
            simplify_m=simplify,
        )
    run_flags = {
        "--polygons": polygons, "--with-confidence": with_confidence, "--workers": workers,
        "--scheduler": scheduler, "--keep-going": keep_going, "--crs": crs,
        "--block-mp": block_mp is not None,
    }  # fmt: skip
    if out_dir is None and out is None:
        raise UserError(
            "Missing option '--out' (or --out-dir FOLDER, for several scenes): where to write"
        )
    if out_dir is None:
        used = [flag for flag, value in run_flags.items() if value]
        if used:
            raise UserError(f"{used[0]} applies to runs into a folder: use --out-dir FOLDER")
    m = load_model(model, options.providers)
    inputs = resolve_inputs(scenes, asset=asset, bands=m.info.bands)
    if out_dir is not None:
        from s5geo.cli.batch import run_folder

        if out is not None and out.suffix.lower() not in (".gpkg", ".parquet"):
            raise UserError(
                f"with --out-dir, --out names the run's polygon layer: .gpkg or .parquet, not "
                f"{out.name} (the class rasters are STEM.tif in the folder)"
            )
        if raster is not None or confidence is not None or quicklook:
            raise UserError(
                "--out-dir writes one set of files per scene: --raster, --confidence and "
                "--quicklook name single files (use --with-confidence for confidence COGs)"
            )
        with _as_flags():
            tiling(options, m)  # a tile or overlap the model cannot take fails before any scene
            run_folder(
                inputs, out_dir, m, model=model, options=options, polygons=polygons,
                confidence=with_confidence, workers=workers, scheduler=scheduler,
                keep_going=keep_going, overwrite=overwrite, crs=crs, quiet=quiet, layer=out,
                block_mp=block_mp, extent=_parse_extent(extent),
            )  # fmt: skip
        return
    if len(inputs) > 1:
        raise UserError(
            f"{len(inputs)} scenes given: --out names one output; use --out-dir FOLDER for several"
        )
    scene = inputs[0].name
    if inputs[0].is_remote:
        check_remote(scene)  # one line for a 404 or a refused connection, naming the URL
    assert out is not None
    suffix = out.suffix.lower()
    if suffix in (".tif", ".tiff"):
        if raster is not None:
            raise UserError("--out names a raster already; --raster is for .gpkg outputs")
        out_raster, out_vector = out, None
    elif suffix == ".gpkg":
        out_raster, out_vector = (raster or out.with_suffix(".tif")), out
    else:
        raise UserError(f"--out must end in .gpkg or .tif, not {out.suffix or 'nothing'}")
    if out_vector is None and (min_area or simplify):
        raise UserError("--min-area and --simplify apply to polygons: use --out NAME.gpkg")
    with (
        _as_flags(),
        remote_env(),
        progress_bar(quiet, label=f"({short_name(m.provider)})") as bar,
    ):
        result = segment_scene(
            scene,
            out_raster=out_raster,
            out_vector=out_vector,
            model=m,
            options=options,
            confidence=confidence,
            quicklook=quicklook,
            bounds=_parse_extent(extent),
            overwrite=overwrite,
            progress=bar,
        )
    if quiet:
        return
    pred = result.prediction
    stderr.print(
        f"model: {m.path.name} ({m.info.architecture or 'unnamed'}); "
        f"execution provider: {m.provider}",
        soft_wrap=True,
    )
    for warning in pred.warnings:
        stderr.print(f"[yellow]warning:[/] {warning}", soft_wrap=True, highlight=False)
    if pred.scale != 1.0:
        stderr.print(
            f"resampled: the scene was read at {pred.scale:.2f}x its pixel size to match the "
            f"model's {m.info.resolution_cm / 100:g} m pixels; outputs are on the scene's grid",
            soft_wrap=True,
        )
    total = sum(pred.class_pixels.values()) or 1
    table = Table(title="land cover", show_edge=False)
    table.add_column("class")
    table.add_column("share", justify="right")
    for k, n in sorted(pred.class_pixels.items()):
        table.add_row(m.info.class_names.get(k, str(k)), f"{100 * n / total:.1f} %")
    stderr.print(table)
    stderr.print(
        f"{pred.width}x{pred.height} px, {pred.windows_run} tiles run, "
        f"{pred.windows_skipped} nodata tiles skipped, {pred.megapixels_per_second:.2f} MP/s"
    )
    print(f"raster: {out_raster}", file=sys.stdout)
    if pred.confidence:
        print(f"confidence: {pred.confidence}")
    if quicklook:
        print(f"quicklook: {quicklook}")
    if out_vector is not None and result.vector is not None:
        print(f"polygons: {out_vector} ({result.vector.n_polygons} polygons)")


def register(app: typer.Typer) -> None:
    app.command(help=(predict.__doc__ or "") + "\n" + EXAMPLE, epilog=None)(predict)
