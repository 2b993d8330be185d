"""Atomic outputs: inputs are protected, leftovers of killed runs are cleaned, clear refusals."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from s5geo.errors import UserError
from s5geo.io.atomic import _HOST, TMP_MARKER, atomic_outputs


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_temporaries_of_killed_runs_are_removed_by_the_next_run(tmp_path: Path) -> None:
    stale = tmp_path / f"{TMP_MARKER}-{_HOST}-{_dead_pid()}-0123abcd.tif"
    companion = stale.with_name(stale.name + ".stage.tif")
    older = tmp_path / f".a{TMP_MARKER}-{_HOST}-{_dead_pid()}-0123abcd.tif"  # earlier versions
    live = tmp_path / f".a{TMP_MARKER}-{_HOST}-1-0123abcd.tif"  # pid 1 is always alive
    other_host = tmp_path / f".a{TMP_MARKER}-zzzzzz-{_dead_pid()}-0123abcd.tif"
    for path in (stale, companion, older, live, other_host):
        path.write_bytes(b"x")
    with atomic_outputs() as outputs:
        outputs.temp(tmp_path / "a.tif").write_bytes(b"new")
    assert (tmp_path / "a.tif").read_bytes() == b"new"
    assert not stale.exists() and not companion.exists() and not older.exists()
    assert live.exists() and other_host.exists()


def test_an_input_is_never_an_output(tmp_path: Path) -> None:
    scene = tmp_path / "scene.tif"
    scene.write_bytes(b"pixels")
    with pytest.raises(UserError, match="is the input scene"), atomic_outputs(True) as outputs:
        outputs.protect(scene, "scene")
        outputs.temp(tmp_path / "." / "scene.tif")
    with pytest.raises(UserError, match="is the input model"), atomic_outputs(True) as outputs:
        outputs.temp(scene)  # reserved first, protected after: still refused
        outputs.protect(scene, "model")
    assert scene.read_bytes() == b"pixels"


def test_refusals_name_the_real_problem(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")
    for target, words in (
        (tmp_path / "folder", "is a folder"),
        (tmp_path / "file" / "o.tif", "is a file"),
        (tmp_path / "missing" / "o.tif", "does not exist"),
    ):
        with pytest.raises(UserError, match=words), atomic_outputs(True) as outputs:
            outputs.temp(target)
