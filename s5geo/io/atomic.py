"""Atomic outputs: a set of files appears complete or not at all.

Every output is written under a short temporary name in its final folder (so the final rename is
atomic on one filesystem) and moved to its final name only when the whole job has succeeded. The
set is committed all or nothing: under an exclusive lock on each output folder (so two runs
writing the same outputs cannot interleave their commits), an output that appeared meanwhile is
refused without ``overwrite`` (a no-clobber hard link, not a check followed by a rename), a file
replaced with ``overwrite`` is kept under a backup link until every output is in place, and any
failure or interruption during the commit moves back what was moved, restoring the files that
were there. On any failure before the commit, including Ctrl-C, SIGTERM and cancellation, the
temporaries are removed and nothing at the final names is touched.

Write errors while the outputs are produced (a full disk, an I/O error, a read-only remount)
become one :class:`s5geo.errors.UserError` naming the output that could not be written.
"""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import socket
import sqlite3
import threading
import uuid
import warnings
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import rasterio
from rasterio._err import CPLE_BaseError
from rasterio.errors import NotGeoreferencedWarning, RasterioError

from s5geo.errors import Cancelled, UserError

try:  # POSIX only: without it, commits are not serialised between processes
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

TMP_MARKER = ".s5geo-tmp"
# Longest suffix kept on a temporary name: drivers that look at the extension (GTiff, GPKG, PNG)
# need it, and a longer one would only make the name longer than the filesystem allows.
_MAX_SUFFIX = 10
# Errors that mean an output could not be written. sqlite3's other errors are misuse (bugs).
_WRITE_ERRORS = (OSError, sqlite3.OperationalError, RasterioError, CPLE_BaseError)
# errno values that say the filesystem refused data, wherever the error came from.
_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def check_writable(path: Path, overwrite: bool) -> None:
    """Refuse an existing output without ``overwrite`` and an unwritable or missing folder."""
    if path.is_dir():
        raise UserError(f"{path} is a folder: name a file inside it for this output")
    if path.exists() and not overwrite:
        raise UserError(f"{path} exists; pass --overwrite to replace it")
    check_folder_writable(_folder(path), path.name)


def check_folder_writable(folder: Path, name: str) -> None:
    """Refuse a missing, non-folder or unwritable ``folder`` meant to hold the output ``name``.

    s5geo creates its outputs, never the folders that hold them: a mistyped folder fails at once
    instead of scattering results in a new tree (the same rule for every command).
    """
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} is a file, so it cannot hold the output {name}")
    if not folder.is_dir():
        raise UserError(f"output folder {folder} does not exist")
    # Try it: permission bits say nothing about read-only mounts, special filesystems or root.
    probe = folder / f".s5geo-write-probe-{uuid.uuid4().hex[:8]}"
    try:
        probe.touch(exist_ok=False)
    except OSError as exc:
        raise UserError(f"output folder {folder} is not writable ({exc.strerror})") from None
    probe.unlink(missing_ok=True)


def check_output_folder(folder: Path) -> None:
    """Refuse ``folder`` as a folder of results before any work: a file, an unwritable folder,
    or a missing one whose parent is missing too (the folder itself is an output, created when
    the results are written; the folders above it are not, as for files)."""
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} is a file, not a folder to write results into")
    if folder.is_dir():
        check_folder_writable(folder, "its results")
    else:
        check_folder_writable(_folder(folder), folder.name)


def _folder(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


# Temporaries are tagged with this host and the writing process, so that those left by a killed
# run (kill -9 or a power cut, where no cleanup can run) are recognised and removed by the next
# run writing into the same folder; a live process's, or another host's on a shared folder, are
# kept.
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]


def _temp_name(final: Path) -> str:
    """A short, unique hidden name for a temporary of ``final``: about 40 characters whatever
    the length of ``final``'s name, so a legal output name never gives an illegal temporary."""
    suffix = final.suffix if len(final.suffix) <= _MAX_SUFFIX else ""
    return f"{TMP_MARKER}-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}"


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def _refuse_input(output: Path, path: Path, what: str) -> None:
    """Refuse ``output`` when it is ``path``, which ``what`` describes ("the input scene",
    "read by the input scene a.vrt")."""
    if _same_file(output, path):
        raise UserError(
            f"{output} is {what} of this run; it is never overwritten: name the output "
            "differently (for a .gpkg, --raster sets the class raster's path)"
        )


def dataset_files(name: str | Path) -> list[Path]:
    """Every file GDAL reads for the raster dataset ``name``: the file itself, its sidecars
    (``.aux.xml``, ``.ovr``, ``.msk``) and, for a VRT or another multi-file format, its sources.

    Sources that are VRTs themselves are opened in turn, so nested VRTs are followed to the
    files holding pixels. ``name`` alone when GDAL cannot open it as a raster (a model file).
    """
    found = [str(name)]
    todo = [str(name)]
    while todo:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                with rasterio.open(todo.pop()) as ds:
                    files = list(ds.files)
        except (RasterioError, CPLE_BaseError, OSError):
            continue
        for file in files:
            if file not in found:
                found.append(file)
                if file.lower().endswith(".vrt"):
                    todo.append(file)
    return [Path(f) for f in found]


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _remove_stale_temporaries(folder: Path) -> None:
    """Remove this host's temporaries in ``folder`` (and their companions) whose process is gone.

    The pattern also matches the longer names of earlier versions (``.<stem>.s5geo-tmp-...``).
    """
    marker = f"{TMP_MARKER[1:]}-{_HOST}-"
    for leftover in folder.glob(f".*{marker}*"):
        pid = leftover.name.split(marker, 1)[1].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_alive(int(pid)):
            leftover.unlink(missing_ok=True)


@dataclass
class _Move:
    """One output of a commit in progress, with what rolling it back must undo."""

    final: Path
    backup: Path | None = None  # the file that was at ``final``, linked (or moved) aside
    backup_moved: bool = False  # True when ``final`` itself was renamed to ``backup``
    placed: bool = False  # the new file is at ``final``


class OutputSet:
    """A group of outputs committed together: ``temp(final)`` hands out a temporary path."""

    def __init__(self, overwrite: bool) -> None:
        self.overwrite = overwrite
        self._pending: list[tuple[Path, Path]] = []
        self._inputs: list[tuple[Path, str]] = []
        self._writing: list[Path] = []

    def protect(self, path: str | Path, role: str) -> None:
        """Never write over ``path``, an input of this job (``role``: 'scene', 'model', ...), or
        any file GDAL reads for it (a VRT's sources), not even with ``overwrite``: the default
        raster name beside a ``.gpkg`` can be the scene. Outputs reserved before are checked too.
        """
        files = dataset_files(path)
        for p in files:
            what = f"the input {role}"
            if p != files[0]:
                what = f"read by the input {role} {Path(path).name}"
            for final, _ in self._pending:
                _refuse_input(final, p, what)
            self._inputs.append((p, what))

    def temp(self, final: str | Path) -> Path:
        """Reserve ``final`` and return the temporary path to write it under (same folder)."""
        final = Path(final)
        for p, what in self._inputs:
            _refuse_input(final, p, what)
        check_writable(final, self.overwrite)
        if any(f == final for f, _ in self._pending):
            raise UserError(f"{final} is named twice as an output")
        _remove_stale_temporaries(_folder(final))
        tmp = final.with_name(_temp_name(final))
        self._pending.append((final, tmp))
        return tmp

    def temp_path(self, final: str | Path) -> Path:
        """The temporary path already reserved for ``final``."""
        for f, tmp in self._pending:
            if f == Path(final):
                return tmp
        raise KeyError(f"{final} is not a reserved output")

    @contextmanager
    def writing(self, path: str | Path) -> Iterator[None]:
        """Attribute write errors raised inside to the output ``path`` (its final name or its
        temporary), for errors that name no file: SQLite's "database or disk is full", a spill
        file's ENOSPC, GDAL's PNG driver."""
        final = next((f for f, tmp in self._pending if tmp == Path(path)), Path(path))
        self._writing.append(final)
        try:
            yield
        except _WRITE_ERRORS as exc:
            explained = self.explain(exc)
            if explained is None:
                raise
            raise explained from exc
        finally:
            self._writing.pop()

    def explain(self, exc: BaseException) -> UserError | None:
        """A one-line error for a write error ``exc``, naming the output it concerns; None when
        ``exc`` is not a write error of this set's outputs (it propagates as it is)."""
        if not isinstance(exc, _WRITE_ERRORS) or isinstance(exc, (UserError, Cancelled)):
            return None
        final = self._output_named_in(exc) or (self._writing[-1] if self._writing else None)
        if final is None and getattr(exc, "errno", None) not in _FULL:
            return None
        what = str(final) if final is not None else "the outputs"
        folder = _folder(final) if final is not None else Path(".")
        reason = "no space left on device" if _nearly_full(folder) else _reason(exc)
        return UserError(
            f"could not write {what} ({reason}); nothing was kept: no output of this run was "
            "written and existing files are unchanged"
        )

    def _output_named_in(self, exc: BaseException) -> Path | None:
        """The output whose temporary (or a companion of it) or final name ``exc`` mentions."""
        names = [getattr(exc, "filename", None), getattr(exc, "filename2", None)]
        texts = [str(exc), str(exc.__cause__ or ""), *(str(n) for n in names if n)]
        for final, tmp in self._pending:
            if any(tmp.name in t for t in texts) or any(n and Path(n) == final for n in names):
                return final
        return None

    def commit(self) -> None:
        """Move every temporary to its final name, all or nothing (module docstring)."""
        pending = [(final, tmp) for final, tmp in self._pending if tmp.exists()]
        for _, tmp in pending:
            _fsync(tmp)  # deferred write errors (NFS, quotas) surface before anything moves
        folders = {_folder(final).resolve() for final, _ in pending}
        with _locked(folders), _deferred_signals() as received:
            moves: list[_Move] = []
            try:
                for final, tmp in pending:
                    move = _Move(final)
                    moves.append(move)
                    self._move_in(move, tmp)
                if received:  # Ctrl-C or kill during the commit: leave everything as it was
                    self._roll_back(moves)
                    return
            except BaseException:
                self._roll_back(moves)
                raise
            for move in moves:
                if move.backup is not None:
                    move.backup.unlink(missing_ok=True)
        if received:  # its handler did not raise: still, nothing was committed
            raise Cancelled()
        for folder in folders:
            _fsync_folder(folder)
        self._pending.clear()

    def _move_in(self, move: _Move, tmp: Path) -> None:
        """Put ``tmp`` at ``move.final``, recording in ``move`` what a rollback must undo."""
        final = move.final
        if not self.overwrite:
            _place_new(final, tmp)
            move.placed = True
            tmp.unlink(missing_ok=True)
            return
        if os.path.lexists(final):
            move.backup = final.with_name(_temp_name(final))
            try:  # a second link: the file stays at ``final`` until it is replaced
                os.link(final, move.backup, follow_symlinks=False)
            except OSError as exc:
                if exc.errno not in _NO_LINKS:
                    raise
                os.replace(final, move.backup)
                move.backup_moved = True
        os.replace(tmp, final)
        move.placed = True

    def _roll_back(self, moves: list[_Move]) -> None:
        """Undo ``moves``, last first: remove what was placed and put back what was there."""
        for move in reversed(moves):
            if move.placed and move.backup is None:
                move.final.unlink(missing_ok=True)
            elif move.backup is not None and (move.placed or move.backup_moved):
                os.replace(move.backup, move.final)
            elif move.backup is not None:
                move.backup.unlink(missing_ok=True)

    def discard(self) -> None:
        """Remove every temporary and its GDAL/SQLite companions (``-journal``, ``.aux.xml``)."""
        for _, tmp in self._pending:
            for companion in tmp.parent.glob(tmp.name + "*"):
                companion.unlink(missing_ok=True)
        self._pending.clear()


# Hard links are refused by some filesystems (FAT, exFAT, some network shares).
_NO_LINKS = (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.EXDEV)


def _place_new(final: Path, tmp: Path) -> None:
    """Give ``tmp`` the name ``final`` only if nothing is there: a hard link fails when the name
    exists, so an output another program created meanwhile is never replaced."""
    try:
        os.link(tmp, final, follow_symlinks=False)
        return
    except FileExistsError:
        pass
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        # No hard links here: check and rename, which the folder lock makes safe between s5geo
        # runs (not against other programs).
        if not os.path.lexists(final):
            os.replace(tmp, final)
            return
    raise UserError(
        f"{final} appeared while this run was writing it (another run writing the same "
        "outputs?); nothing was kept: pass --overwrite to replace it"
    )


def _reason(exc: BaseException) -> str:
    """The short cause of a write error, as the system or library states it."""
    if isinstance(exc, RasterioError):  # "Read failed. See previous exception": GDAL's is why
        text = str(exc.__cause__ or exc)
    elif isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    else:
        text = str(exc)
    lines = text.strip().splitlines()
    return lines[0] if lines else type(exc).__name__


# Free space under which a write error is reported as a full disk: GDAL's and SQLite's own words
# for it ("TIFFAppendToStrip:Write error", "database or disk is full") leave users guessing.
_NEARLY_FULL_BYTES = 1 << 20


def _nearly_full(folder: Path) -> bool:
    try:
        stat = os.statvfs(folder)
    except (OSError, AttributeError):  # statvfs is POSIX only
        return False
    return stat.f_bavail * stat.f_frsize < _NEARLY_FULL_BYTES


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    """Make the renames durable; some filesystems cannot sync a folder, which is harmless."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def _locked(folders: Iterable[Path]) -> Iterator[None]:
    """Hold an exclusive lock on each folder (in a fixed order, so runs cannot deadlock).

    Advisory (flock): it serialises the commits of s5geo runs; where a filesystem has no locks
    the commit goes on without, still protected by the no-clobber link.
    """
    with ExitStack() as stack:
        for folder in sorted(folders):
            if fcntl is None:
                break
            try:
                fd = os.open(folder, os.O_RDONLY)
            except OSError:
                continue
            stack.callback(os.close, fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError:
                continue
        yield


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def _deferred_signals() -> Iterator[list[int]]:
    """Hold back Ctrl-C and SIGTERM: yields the list of those received meanwhile, then, once the
    previous handlers are back, raises the first one again, so it takes effect as it would have.

    Python runs signal handlers in the main thread only; elsewhere (a QGIS task) nothing is held.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    previous: dict[int, Any] = {}  # signal.signal's handlers: functions, SIG_DFL, SIG_IGN

    def hold(signum: int, frame: FrameType | None) -> None:
        if previous.get(signum) is not signal.SIG_IGN:  # an ignored signal stays ignored
            received.append(signum)

    for held in _SIGNALS:
        previous[held] = signal.signal(held, hold)
    try:
        yield received
    finally:
        for restored, handler in previous.items():
            signal.signal(restored, handler)
    if received:
        signal.raise_signal(received[0])


@contextmanager
def atomic_outputs(overwrite: bool = False) -> Iterator[OutputSet]:
    """Context manager: commit all outputs on success, discard them on any exception.

    A write error of an output becomes a :class:`UserError` naming it (:meth:`OutputSet.explain`).
    """
    outputs = OutputSet(overwrite)
    try:
        yield outputs
        outputs.commit()
    except BaseException as exc:
        explained = outputs.explain(exc)
        outputs.discard()
        if explained is not None:
            raise explained from exc
        raise
