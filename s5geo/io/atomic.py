"""Atomic outputs: files appear complete or not at all.

Every output is written under a temporary name in its final folder (so the final rename is atomic on
one filesystem) and renamed only when the whole job has succeeded. On any failure, including
Ctrl-C, SIGTERM and cancellation, the temporaries are removed and nothing at the final names is
touched.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from s5geo.errors import UserError

TMP_MARKER = ".s5geo-tmp"


def check_writable(path: Path, overwrite: bool) -> None:
    """Refuse an existing output without ``overwrite`` and an unwritable or missing folder."""
    if path.exists() and not overwrite:
        raise UserError(f"{path} exists; pass --overwrite to replace it")
    if path.exists() and path.is_dir():
        raise UserError(f"{path} is a folder, not a file")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UserError(f"output folder {folder} does not exist")
    # Try it: permission bits say nothing about read-only mounts, special filesystems or root.
    probe = folder / f".s5geo-write-probe-{uuid.uuid4().hex[:8]}"
    try:
        probe.touch(exist_ok=False)
    except OSError as exc:
        raise UserError(f"output folder {folder} is not writable ({exc.strerror})") from None
    probe.unlink(missing_ok=True)


class OutputSet:
    """A group of outputs committed together: ``temp(final)`` hands out a temporary path."""

    def __init__(self, overwrite: bool) -> None:
        self.overwrite = overwrite
        self._pending: list[tuple[Path, Path]] = []

    def temp(self, final: str | Path) -> Path:
        """Reserve ``final`` and return the temporary path to write it under (same folder)."""
        final = Path(final)
        check_writable(final, self.overwrite)
        if any(f == final for f, _ in self._pending):
            raise UserError(f"{final} is named twice as an output")
        # Keep the real suffix last so drivers that look at the extension (GTiff, GPKG) are happy.
        tmp = final.with_name(f".{final.stem}{TMP_MARKER}-{uuid.uuid4().hex[:8]}{final.suffix}")
        self._pending.append((final, tmp))
        return tmp

    def temp_path(self, final: str | Path) -> Path:
        """The temporary path already reserved for ``final``."""
        for f, tmp in self._pending:
            if f == Path(final):
                return tmp
        raise KeyError(f"{final} is not a reserved output")

    def commit(self) -> None:
        """Rename every temporary to its final name, in the order they were reserved."""
        for final, tmp in self._pending:
            if tmp.exists():
                os.replace(tmp, final)
        self._pending.clear()

    def discard(self) -> None:
        """Remove every temporary and its GDAL/SQLite companions (``-journal``, ``.aux.xml``)."""
        for _, tmp in self._pending:
            for companion in tmp.parent.glob(tmp.name + "*"):
                companion.unlink(missing_ok=True)
        self._pending.clear()


@contextmanager
def atomic_outputs(overwrite: bool = False) -> Iterator[OutputSet]:
    """Context manager: commit all outputs on success, discard them on any exception."""
    outputs = OutputSet(overwrite)
    try:
        yield outputs
    except BaseException:
        outputs.discard()
        raise
    outputs.commit()
