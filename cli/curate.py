"""``s5geo curate CHECKPOINT --pool ... --labeled ... --out DIR --target N``: RS4P selection, or
a uniformly random selection of the same size (``--strategy random``, the comparison's baseline)."""

from __future__ import annotations

from pathlib import Path

import typer

from s5geo.errors import UserError


def register(app: typer.Typer) -> None:
    """Add the ``curate`` command to the ``s5geo`` app."""

    @app.command("curate")
    def curate(
        checkpoint: Path = typer.Argument(..., help="Seed model: an s5geo train checkpoint"),
        pool: list[str] = typer.Option(
            ..., "--pool", help="Unlabeled scenes/images: file, folder, glob or split:NAME"
        ),
        labeled: list[str] = typer.Option(
            [],
            "--labeled",
            help="Labelled images (for the clusters; never drawn from the pool): file, folder, "
            "glob, split:NAME. Needed unless --strategy random without --score",
        ),
        out: Path = typer.Option(..., "--out", help="Output folder (selection.gpkg, report)"),
        target: int = typer.Option(..., "--target", help="Windows to select (B_u)"),
        clusters: int = typer.Option(8, "--clusters", help="k-means clusters M"),
        window: int = typer.Option(256, "--window", help="Window side in pixels"),
        batch: int = typer.Option(8, "--batch", help="Windows per forward pass"),
        background: int | None = typer.Option(
            None, "--background", help="Class left out of the entropy sum (the paper's option)"
        ),
        ceiling: float | None = typer.Option(
            None, "--ceiling", help="Never select windows whose entropy is above this"
        ),
        seed: int = typer.Option(0, "--seed", help="k-means seed, and the random draw's seed"),
        strategy: str = typer.Option(
            "rs4p",
            "--strategy",
            help="rs4p (entropy + cluster quotas) or random (--target windows drawn uniformly "
            "from the same pool windows: the baseline; no model is run)",
        ),
        score: bool = typer.Option(
            False,
            "--score",
            help="With --strategy random: also score the windows with the seed model to fill "
            "entropy and cluster (slow; the draw is the same)",
        ),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing selection"),
        threads: int = typer.Option(2, "--threads", help="CPU threads for torch"),
        quiet: bool = typer.Option(False, "--quiet", help="No progress output"),
    ) -> None:
        """Select a confident, diverse subset of an unlabeled pool with a seed model (RS4P).

        Example:

            s5geo curate runs/dubai/dubai_cpu_supervised_seed0/checkpoints/best.ckpt
                --pool split:train_unlabeled --labeled split:train_labeled
                --target 40 --clusters 4 --window 256 --out runs/curate/dubai

        The random baseline of the same size (seconds: no model is run; entropy and cluster
        are left NULL):

            s5geo curate runs/dubai/dubai_cpu_supervised_seed0/checkpoints/best.ckpt
                --pool split:train_unlabeled --target 40 --window 256
                --strategy random --seed 0 --out runs/curate/dubai_random

        Scores every window by its mean per-pixel entropy and pooled backbone embedding, clusters
        the labelled images' embeddings (k-means), and accepts windows in ascending entropy under
        quotas proportional to the labelled clusters. Writes OUT/selection.gpkg (footprints in
        each scene's CRS; pixel coordinates for images without georeferencing), report.json and
        entropy.png. The selection is what data.unlabeled_selection of an S4P config reads.
        """
        import torch

        from s5geo.curate.run import CurateOptions
        from s5geo.curate.run import curate as run_curate

        if (out / "selection.gpkg").exists() and not overwrite:
            raise UserError(f"{out / 'selection.gpkg'} exists; pass --overwrite to replace it")
        if target < 1 or clusters < 1 or batch < 1:
            raise UserError("--target, --clusters and --batch must be at least 1")
        if score and strategy != "random":
            raise UserError("--score applies to --strategy random (rs4p always scores)")
        torch.set_num_threads(threads)
        options = CurateOptions(
            target=target, clusters=clusters, window=window, batch=batch,
            background=background, ceiling=ceiling, seed=seed, strategy=strategy, score=score,
        )  # fmt: skip

        def show(stage: str, n: int) -> None:
            if not quiet and n % (batch * 10) == 0:
                typer.echo(f"{stage}: {n} windows scored", err=True)

        report = run_curate(checkpoint, pool, labeled, out, options, progress=show)
        typer.echo(
            f"selected {report['selected']} of {report['pool_windows']} windows "
            f"({report['pool_files']} files) -> {out / 'selection.gpkg'}"
        )
