"""Runs an s5geo job in a child Python process (worker.py) and relays it to Processing.

Progress lines become the Processing progress bar and log, Cancel is passed on to the child (which
stops and leaves no output), and the child's final line becomes the result or a readable error.
The child uses the same Python and the same package paths as QGIS's own Python, so whatever
s5geo QGIS sees is what runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from subprocess import PIPE
from typing import IO, Any

from qgis.core import QgsProcessingException, QgsProcessingFeedback

from .backend import ReadableError, broken_install

WORKER = Path(__file__).with_name("worker.py")


def python_executable() -> str:
    """The Python interpreter of the Python that QGIS embeds.

    Inside QGIS ``sys.executable`` is the QGIS program itself; the interpreter of the same
    version lives under ``sys.base_prefix``.
    """
    if Path(sys.executable).name.lower().startswith("python"):
        return sys.executable
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    base = Path(sys.base_prefix)
    for candidate in (
        base / "bin" / f"python{version}",
        base / "bin" / "python3",
        base / "python.exe",
    ):
        if candidate.is_file():
            return str(candidate)
    found = shutil.which(f"python{version}") or shutil.which("python3")
    if found:
        return found
    raise ReadableError(f"Cannot find the Python {version} interpreter that QGIS uses ({base}).")


def child_environment() -> dict[str, str]:
    """QGIS's environment, with QGIS's module search path, so the child imports the same s5geo."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_job(job: dict[str, Any], feedback: QgsProcessingFeedback) -> dict[str, Any]:
    """Run one worker job (see worker.py for its shape) and return the child's result summary.

    Raises :class:`ReadableError` for problems the analyst can fix and ``QgsProcessingException``
    for a cancelled run or a failure of s5geo itself.
    """
    command = [python_executable(), "-u", str(WORKER)]
    # Nested, not one parenthesized with-statement: QGIS 3.22 may embed Python 3.9.
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8") as stderr:
        with subprocess.Popen(
            command, stdin=PIPE, stdout=PIPE, stderr=stderr, text=True, env=child_environment()
        ) as child:
            final, status = _follow(child, job, feedback)
        stderr.seek(0)
        details = stderr.read().strip()
    return _outcome(final, status, details, feedback)


def _follow(
    child: subprocess.Popen[str], job: dict[str, Any], feedback: QgsProcessingFeedback
) -> tuple[dict[str, Any] | None, int]:
    """Send the job, relay the child's progress and Cancel; return its final message and status."""
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(json.dumps(job) + "\n")
    child.stdin.flush()
    stop_watch = threading.Event()
    watcher = threading.Thread(
        target=_pass_cancel_on, args=(feedback, child.stdin, stop_watch), daemon=True
    )
    watcher.start()
    try:
        final = _relay(child.stdout, feedback)
        return final, child.wait()
    finally:
        stop_watch.set()
        watcher.join()
        if child.poll() is None:
            child.kill()


def _pass_cancel_on(feedback: QgsProcessingFeedback, stdin: IO[str], stop: threading.Event) -> None:
    """Tell the child to stop as soon as the analyst presses Cancel (checked 5 times a second)."""
    while not feedback.isCanceled():
        if stop.wait(0.2):
            return
    try:
        stdin.write("cancel\n")
        stdin.flush()
    except (BrokenPipeError, OSError, ValueError):
        pass  # the child has already finished


def _relay(stdout: IO[str], feedback: QgsProcessingFeedback) -> dict[str, Any] | None:
    """Forward progress lines to ``feedback``; return the child's final message."""
    stage = None
    final = None
    for line in stdout:
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            feedback.pushConsoleInfo(line.rstrip())  # something a library printed
            continue
        progress = message.get("progress")
        if progress is None:
            final = message
            continue
        if progress["stage"] != stage:
            stage = progress["stage"]
            feedback.setProgressText(progress["message"] or stage)
        feedback.setProgress(100.0 * float(progress["fraction"]))
    return final


def _outcome(
    final: dict[str, Any] | None, status: int, details: str, feedback: QgsProcessingFeedback
) -> dict[str, Any]:
    if final is not None and "result" in final:
        return final["result"]
    if details:
        feedback.pushConsoleInfo(details)
    if final is None:
        last = details.splitlines()[-1] if details else "no message"
        raise QgsProcessingException(
            f"s5geo stopped unexpectedly (exit status {status}): {last}. "
            "The Processing log has the details."
        )
    kind, error = final["kind"], final["error"]
    if kind == "cancelled":
        raise QgsProcessingException(error)
    if kind == "missing":
        raise broken_install(error)
    raise ReadableError(error)
