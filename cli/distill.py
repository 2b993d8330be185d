"""``s5geo distill CONFIG [--set key=value]... [--stage NAME] [--resume]``: distil a teacher."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the ``distill`` command to the ``s5geo`` app."""

    @app.command("distill")
    def distill(
        config: Path = typer.Argument(
            ..., help="YAML recipe, e.g. configs/distill/sskd_dubai_cpu.yaml"
        ),
        set_: list[str] = typer.Option(
            [], "--set", help="Override a config key, e.g. --set distill.kd.steps=50 (repeatable)"
        ),
        stage: str | None = typer.Option(
            None, "--stage", help="Run only this stage (earlier stages' outputs must exist)"
        ),
        resume: bool = typer.Option(
            False, "--resume", help="Continue the existing run folder (finished stages are kept)"
        ),
    ) -> None:
        """Distil a teacher checkpoint into a compact student (SSKD, MCKD, plain KD).

        Example:

            s5geo distill configs/distill/sskd_dubai_cpu.yaml --set distill.skip=\\[adapt]

        Each stage writes metrics.csv, checkpoints/, curves.png and stage.json (val/test mIoU)
        into train.out_dir/run_name/STAGE; summary.csv lists every finished stage; student.json
        names the checkpoint to export once all stages have finished (SSKD: the better of the
        transferred and refined students on val, unless distill.sskd.keep=refine). Run the same
        command with --resume to continue an interrupted run.
        """
        from s5geo.distill.config import load_distill_config
        from s5geo.distill.runner import distill as run_distill

        cfg = load_distill_config(config, set_)
        run = run_distill(cfg, config, stage=stage, resume=resume)
        typer.echo(f"run folder: {run}")
        summary = run / "summary.csv"
        if summary.is_file():
            typer.echo(summary.read_text().rstrip())
        chosen = run / "student.json"
        if chosen.is_file():
            student = json.loads(chosen.read_text())
            others = ", ".join(f"{k} {v:.2f}" for k, v in student["other_val_miou"].items())
            typer.echo(
                f"student: {student['stage']} (val mIoU {student['val_miou']:.2f}"
                + (f"; {others}" if others else "")
                + f"): s5geo export {student['checkpoint']} --out model.onnx"
            )
