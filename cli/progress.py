"""A rich progress bar fed by s5geo's progress callbacks (pixels per second, ETA)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from s5geo.infer import Progress as Report
from s5geo.infer import ProgressFn

stderr = Console(stderr=True)


@contextmanager
def progress_bar(quiet: bool, label: str = "") -> Iterator[ProgressFn | None]:
    """Yield a progress callback drawing one bar on stderr (None when ``quiet``).

    The bar is transient: it disappears when the work ends, so a run that fails leaves only its
    one ``error:`` line, and a run that succeeds leaves its summary. ``label`` follows the stage
    name (e.g. the execution provider).
    """
    if quiet:
        yield None
        return
    columns = (
        TextColumn("{task.description:<16}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=stderr, transient=True) as bar:
        task = bar.add_task(f"predict {label}", total=1.0, rate="")

        def update(report: Report) -> None:
            bar.update(
                task,
                completed=report.fraction,
                description=f"{report.stage} {label}",
                rate=f"{report.pixels_per_second / 1e6:6.2f} MP/s",
            )

        yield update
