"""``s5geo distill CONFIG [--set key=value]... [--stage NAME] [--resume]``: distil a teacher."""

from __future__ import annotations

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
        into train.out_dir/run_name/STAGE; summary.csv lists every finished stage. Run the same
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
