"""``s5geo evaluate MODEL --data DATA_CONFIG --split NAME``: accuracy on a labelled split."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the ``evaluate`` command to the ``s5geo`` app."""

    @app.command("evaluate")
    def evaluate(
        model: str = typer.Argument(
            ..., help="Checkpoint (.ckpt) of s5geo train, an ONNX model file, or 'default'"
        ),
        data: Path = typer.Option(..., "--data", help="Data config, e.g. configs/data/dubai.yaml"),
        split: str = typer.Option("test", "--split", help="Split name in the data's splits"),
        out: Path | None = typer.Option(
            None, "--out", help="Folder for <split>.json + figure (its parent must exist)"
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the scores as JSON"),
        set_: list[str] = typer.Option([], "--set", help="Override a data config key"),
    ) -> None:
        """Score MODEL on a labelled split: mIoU, per-class IoU and F1, overall accuracy.

        Example: s5geo evaluate runs/dubai_cpu_seed0/checkpoints/best.ckpt
        --data configs/data/dubai.yaml --split test --json
        """
        from s5geo.config import load_config
        from s5geo.errors import UserError

        cfg = load_config(data, set_)
        if out is not None:  # before the work: a bad --out must not waste an evaluation
            from s5geo.io.atomic import check_output_folder

            check_output_folder(out)
        if model == "default" or model.lower().endswith(".onnx"):
            # Model files go through the same tiled predictor as s5geo predict; no torch needed.
            from s5geo.evaluate import evaluate_onnx

            path = None if model == "default" else Path(model)
            result = evaluate_onnx(path, cfg.data, split, out)
        else:
            if not Path(model).is_file():
                raise UserError(f"model not found: {model}")
            from s5geo.models.checkpoint import require_torch_file
            from s5geo.train.evaluate import evaluate_checkpoint

            require_torch_file(Path(model), "s5geo evaluate takes a .ckpt or an .onnx model")

            result = evaluate_checkpoint(Path(model), cfg.data, split, out)
        if as_json:
            typer.echo(json.dumps({k: v for k, v in result.items() if k != "confusion"}))
            return
        typer.echo(f"{split}: mIoU {result['miou']:.2f}  mF1 {result['mf1']:.2f}  "
                   f"OA {result['overall_accuracy']:.2f}  ({result['pixels']} pixels)")  # fmt: skip
        for name, iou in result["iou"].items():
            typer.echo(f"  {name:<20} IoU {iou}")
