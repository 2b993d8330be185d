"""``s5geo fit``: a land-cover model for your own area from a few labelled polygons or points."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from s5geo.errors import UserError

EXAMPLE = """
Example:

    s5geo fit scene.tif --labels polygons.gpkg --out mymodel.onnx
    s5geo predict scene.tif --model mymodel.onnx --out landcover.gpkg

writes mymodel.onnx (an ordinary s5geo model file), mymodel.fit.json (cross-validated scores),
mymodel.confusion.png, and per scene the map and its confidence raster (low = unsure: draw the
next polygons there).
"""

# The library names its parameters in errors; this command's users know them as flags.
PHRASES = {
    "with class_field": "with --class-field",
    "with layer": "with --layer",
    "quality must": "--quality must",
    "quality 'full'": "--quality full",
    "use quality 'quick'": "use --quality quick",
    "minutes must": "--minutes must",
    "bands must": "--bands must",
    "out must": "--out must",
}


def _flags(message: str) -> str:
    for phrase, flag in PHRASES.items():
        message = message.replace(phrase, flag)
    return message


def _parse_bands(bands: str | None) -> list[int] | None:
    if bands is None:
        return None
    try:
        return [int(b) for b in bands.split(",")]
    except ValueError:
        raise UserError("--bands takes three 1-based band numbers, e.g. 4,3,2") from None


def fit(
    scenes: list[Path] = typer.Argument(..., help="Raster scene(s) the labels are drawn on."),
    labels: Path = typer.Option(
        ...,
        "--labels",
        "-l",
        help="Polygons or points: GeoPackage, Shapefile, GeoJSON, GeoParquet.",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="The model file to write (.onnx)."),
    class_field: str | None = typer.Option(None, help="Field holding the class (name or code)."),
    layer: str | None = typer.Option(None, help="Layer of LABELS when it holds several."),
    quality: str = typer.Option("quick", help="quick (seconds to a minute, no torch) or full."),
    minutes: float | None = typer.Option(None, help="Cap on the wall time in minutes."),
    bands: str | None = typer.Option(
        None, help="Three bands for the network's RGB input, e.g. 4,3,2 (default: R,G,B or 1,2,3)."
    ),
    maps: bool = typer.Option(True, help="Also write each scene's map and confidence raster."),
    overwrite: bool = typer.Option(False, help="Replace existing outputs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
) -> None:
    """Fit a land-cover model for SCENES from a few labelled polygons or points."""
    from s5geo.cli.progress import progress_bar, stderr

    from s5geo.fit import fit_model

    try:
        with progress_bar(quiet, label="") as bar:
            result = fit_model(
                scenes,
                labels,
                out,
                class_field=class_field,
                layer=layer,
                quality=quality,
                minutes=minutes,
                bands=_parse_bands(bands),
                maps=maps,
                overwrite=overwrite,
                progress=bar,
            )
    except UserError as exc:
        raise UserError(_flags(str(exc))) from None
    for warning in result.warnings:
        stderr.print(f"[yellow]warning:[/] {warning}", soft_wrap=True, highlight=False)
    if quiet:
        return
    v = result.validation
    title = (
        f"spatial {v.folds}-fold CV: accuracy {v.accuracy * 100:.1f} %, mIoU {v.miou * 100:.1f}"
        if v is not None
        else "no cross-validation"
    )
    table = Table(title=title, show_edge=False)
    for column in ("class", "pixels", "accuracy %", "IoU %"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for row in result.scores:
        table.add_row(
            row["class_name"],
            str(row.get("pixels", "")),
            _fmt(row.get("accuracy")),
            _fmt(row.get("iou")),
        )
    stderr.print(table)
    stderr.print(
        f"{result.pixels} labelled pixels from {result.geometries} features, {result.seconds:.0f} s"
    )
    print(f"model: {result.model}")
    print(f"report: {result.report}")
    if result.confusion_png is not None:
        print(f"confusion matrix: {result.confusion_png}")
    for m, c in zip(result.maps, result.confidences, strict=True):
        print(f"map: {m}  confidence: {c}")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def register(app: typer.Typer) -> None:
    app.command(help=(fit.__doc__ or "") + "\n" + EXAMPLE)(fit)
