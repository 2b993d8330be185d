"""``s5geo train CONFIG [--set key=value]...``: run a training recipe into its run folder."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the ``train`` command to the ``s5geo`` app."""

    @app.command("train")
    def train(
        config: Path = typer.Argument(..., help="YAML recipe, e.g. configs/s4p/dubai_cpu.yaml"),
        set_: list[str] = typer.Option(
            [], "--set", help="Override a config key, e.g. --set train.steps=100 (repeatable)"
        ),
        resume: Path | None = typer.Option(
            None, "--resume", help="Checkpoint to continue from (default: the run's last.ckpt)"
        ),
    ) -> None:
        """Train a segmentation model (supervised, S4P or MoE-MDF) as CONFIG says.

        Example: s5geo train configs/s4p/dubai_cpu.yaml --set train.seed=1

        Each run writes config.yaml, metrics.csv, checkpoints/, curves.png and test.json into
        train.out_dir/run_name; running the same command again resumes from checkpoints/last.ckpt.
        """
        from s5geo.config import load_config, load_yaml
        from s5geo.models.mdf import is_mdf_tree

        if is_mdf_tree(load_yaml(config)):  # multi-dataset fine-tuning (MoE-MDF)
            from s5geo.train.mdf import train_mdf

            typer.echo(f"run folder: {train_mdf(config, set_, resume)}")
            return
        from s5geo.train.runner import train as run_training

        cfg = load_config(config, set_)
        run = run_training(cfg, Path(config), resume)
        typer.echo(f"run folder: {run}")
