"""Atomic outputs: files appear complete or not at all.

Every output is written under a temporary name in its final folder (so the final rename is atomic on
one filesystem) and renamed only when the whole job has succeeded. On any failure, including
Ctrl-C, SIGTERM and cancellation, the temporaries are removed and nothing at the final names is
touched.
"""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from s5geo.errors import UserError

TMP_MARKER = ".s5geo-tmp"


def check_writable(path: Path, overwrite: bool) -> None:
    """Refuse an existing output without ``overwrite`` and an unwritable or missing folder."""
    if path.is_dir():
        raise UserError(f"{path} is a folder: name a file inside it for this output")
    if path.exists() and not overwrite:
        raise UserError(f"{path} exists; pass --overwrite to replace it")
    folder = path.parent if str(path.parent) else Path(".")
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} is a file, so it cannot hold the output {path.name}")
    if not folder.is_dir():
        raise UserError(f"output folder {folder} does not exist")
    # Try it: permission bits say nothing about read-only mounts, special filesystems or root.
    probe = folder / f".s5geo-write-probe-{uuid.uuid4().hex[:8]}"
    try:
        probe.touch(exist_ok=False)
    except OSError as exc:
        raise UserError(f"output folder {folder} is not writable ({exc.strerror})") from None
    probe.unlink(missing_ok=True)


# Temporaries are tagged with this host and the writing process, so that those left by a killed
# run (kill -9 or a power cut, where no cleanup can run) are recognised and removed by the next
# run writing the same output; a live process's, or another host's on a shared folder, are kept.
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def _refuse_input(output: Path, path: Path, role: str) -> None:
    if _same_file(output, path):
        raise UserError(
            f"{output} is the input {role} of this run; it is never overwritten: "
            "name the output differently (for a .gpkg, --raster sets the class raster's path)"
        )


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _remove_stale_temporaries(final: Path) -> None:
    """Remove this host's temporaries of ``final`` (and their companions) whose process is gone."""
    folder = final.parent if str(final.parent) else Path(".")
    prefix = f".{final.stem}{TMP_MARKER}-{_HOST}-"
    for leftover in folder.glob(prefix + "*"):
        pid = leftover.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_alive(int(pid)):
            leftover.unlink(missing_ok=True)


class OutputSet:
    """A group of outputs committed together: ``temp(final)`` hands out a temporary path."""

    def __init__(self, overwrite: bool) -> None:
        self.overwrite = overwrite
        self._pending: list[tuple[Path, Path]] = []
        self._inputs: list[tuple[Path, str]] = []

    def protect(self, path: str | Path, role: str) -> None:
        """Never write over ``path``, an input of this job (``role``: 'scene', 'model', ...),
        not even with ``overwrite``: the default raster name beside a ``.gpkg`` can be the scene.
        Outputs reserved before are checked too."""
        p = Path(path)
        for final, _ in self._pending:
            _refuse_input(final, p, role)
        self._inputs.append((p, role))

    def temp(self, final: str | Path) -> Path:
        """Reserve ``final`` and return the temporary path to write it under (same folder)."""
        final = Path(final)
        for p, role in self._inputs:
            _refuse_input(final, p, role)
        check_writable(final, self.overwrite)
        if any(f == final for f, _ in self._pending):
            raise UserError(f"{final} is named twice as an output")
        _remove_stale_temporaries(final)
        # Keep the real suffix last so drivers that look at the extension (GTiff, GPKG) are happy.
        tag = f"{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp = final.with_name(f".{final.stem}{TMP_MARKER}-{tag}{final.suffix}")
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
