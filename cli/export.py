"""``s5geo export``: a training checkpoint to an ONNX model file (plus FP16/INT8/TensorRT)."""

from __future__ import annotations

from pathlib import Path

import typer

from s5geo.errors import UserError

EXAMPLE = """
Example:

    s5geo export runs/dubai_s4p/checkpoints/best.ckpt --out dubai.onnx --int8

writes dubai.onnx (FP32, parity-checked against PyTorch on real windows) and dubai.int8.onnx
(static INT8 calibrated on the same windows).

    s5geo export runs/mdf/moe_p48/checkpoints/best.ckpt --dataset swiss_trees --out trees.onnx

exports one dataset's path of a MoE-MDF checkpoint: an ordinary single-dataset model file (that
dataset's classes, bands and normalisation) that costs what the dense model costs.
"""


def export(
    checkpoint: Path = typer.Argument(..., help="Lightning checkpoint of an s5geo run."),
    out: Path = typer.Option(..., "--out", "-o", help="The .onnx file to write."),
    dataset: str | None = typer.Option(
        None, "--dataset", help="MoE-MDF checkpoints: the dataset whose path is exported."
    ),
    fp16: bool = typer.Option(False, help="Also write OUT with .fp16.onnx (GPU inference)."),
    int8: bool = typer.Option(False, help="Also write OUT with .int8.onnx (CPU inference)."),
    tensorrt: bool = typer.Option(False, help="Build and cache a TensorRT engine."),
    dynamic_size: bool = typer.Option(False, help="Symbolic height/width (not for Deepness)."),
    tolerance: float = typer.Option(1e-3, help="Largest accepted logit difference vs PyTorch."),
    windows: int = typer.Option(16, help="Real windows for the parity check and calibration."),
    overwrite: bool = typer.Option(False, help="Replace existing files."),
) -> None:
    """Export CHECKPOINT to an ONNX model file that s5geo predict, QGIS and Deepness load."""
    from s5geo.export.pipeline import export_checkpoint

    if out.suffix.lower() != ".onnx":
        raise UserError("--out must end in .onnx")
    report = export_checkpoint(
        checkpoint,
        out,
        dataset=dataset,
        fp16=fp16,
        int8=int8,
        tensorrt=tensorrt,
        dynamic_size=dynamic_size,
        tolerance=tolerance,
        n_windows=windows,
        overwrite=overwrite,
    )
    for line in report:
        print(line)


def register(app: typer.Typer) -> None:
    app.command(help=(export.__doc__ or "") + "\n" + EXAMPLE)(export)
