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

    When stderr is not a terminal (a log file, CI, another program), a bar would only leave
    control characters and blank lines: progress is then written as plain lines, one per tenth of
    the job and stage. On a terminal the bar is transient: it disappears when the work ends, so a
    run that fails leaves only its one ``error:`` line, and a run that succeeds its summary.
    ``label`` follows the stage name (e.g. the execution provider).
    """
    if quiet:
        yield None
        return
    if not stderr.is_terminal:
        yield _log_lines(label)
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


def _log_lines(label: str) -> ProgressFn:
    """A callback writing ``stage label: NN % (x.xx MP/s)`` at each new tenth of the job."""
    last: dict[str, tuple[str, int]] = {}

    def update(report: Report) -> None:
        key = (report.stage, int(report.fraction * 10))
        if report.done == 0 or last.get("key") == key:
            return
        last["key"] = key
        stderr.print(
            f"{report.stage} {label}: {100 * report.fraction:3.0f} % "
            f"({report.pixels_per_second / 1e6:.2f} MP/s)",
            soft_wrap=True,
            highlight=False,
        )

    return update
