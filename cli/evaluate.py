"""``s5geo evaluate MODEL --data DATA_CONFIG --split NAME``: accuracy on a labelled split."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the ``evaluate`` command to the ``s5geo`` app."""

    @app.command("evaluate")
    def evaluate(
        model: Path = typer.Argument(..., help="Checkpoint (.ckpt) written by s5geo train"),
        data: Path = typer.Option(..., "--data", help="Data config, e.g. configs/data/dubai.yaml"),
        split: str = typer.Option("test", "--split", help="Split name in the data's splits"),
        out: Path | None = typer.Option(None, "--out", help="Folder for <split>.json + figure"),
        as_json: bool = typer.Option(False, "--json", help="Print the scores as JSON"),
        set_: list[str] = typer.Option([], "--set", help="Override a data config key"),
    ) -> None:
        """Score MODEL on a labelled split: mIoU, per-class IoU and F1, overall accuracy.

        Example: s5geo evaluate runs/dubai_cpu_seed0/checkpoints/best.ckpt
        --data configs/data/dubai.yaml --split test --json
        """
        from s5geo.config import load_config
        from s5geo.errors import UserError

        if not model.is_file():
            raise UserError(f"model not found: {model}")
        if model.suffix == ".onnx":
            raise UserError("evaluating ONNX models needs s5geo.infer.predict_scene (not yet)")
        from s5geo.train.evaluate import evaluate_checkpoint

        cfg = load_config(data, set_)
        result = evaluate_checkpoint(model, cfg.data, split, out)
        if as_json:
            typer.echo(json.dumps({k: v for k, v in result.items() if k != "confusion"}))
            return
        typer.echo(f"{split}: mIoU {result['miou']:.2f}  mF1 {result['mf1']:.2f}  "
                   f"OA {result['overall_accuracy']:.2f}  ({result['pixels']} pixels)")  # fmt: skip
        for name, iou in result["iou"].items():
            typer.echo(f"  {name:<20} IoU {iou}")
