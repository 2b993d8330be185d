"""Outputs are complete or absent, inputs are never touched, existing outputs survive any failure:
VRT sources, full filesystems (real tmpfs mounts, and injected write errors where mounting is not
possible), two runs racing for the same outputs, interrupted commits, long names."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
import rasterio.shutil
from helpers import ROOT, build_perpixel_model, write_scene

from s5geo.errors import UserError
from s5geo.infer import predict_scene
from s5geo.io.atomic import TMP_MARKER, atomic_outputs, dataset_files
from s5geo.segment import segment_scene

S5GEO = [sys.executable, "-m", "s5geo.cli.main"]


def s5geo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*S5GEO, *args], capture_output=True, text=True, timeout=300)


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def contents(folder: Path) -> dict[str, bytes]:
    """Every file in ``folder`` (temporaries included) with its bytes."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    """A 600 x 600 scene of random pixels: its class map does not compress much, so a small
    filesystem fills at every stage of writing it."""
    rng = np.random.default_rng(30)
    data = rng.integers(1, 255, size=(3, 600, 600), dtype=np.uint8)
    return write_scene(tmp_path / "scene.tif", data)


@pytest.fixture
def blocky(tmp_path: Path) -> Path:
    """A 256 x 256 scene of random 16-px blocks: few polygons, quick to polygonize."""
    rng = np.random.default_rng(31)
    blocks = rng.integers(1, 255, size=(3, 16, 16), dtype=np.uint8)
    return write_scene(tmp_path / "blocky.tif", blocks.repeat(16, axis=1).repeat(16, axis=2))


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return build_perpixel_model(tmp_path / "perpixel.onnx")


@contextmanager
def small_filesystem(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``folder``; skips where it cannot be mounted."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root; test_*_injected cover the same code")
    folder.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)]
    run = subprocess.run(mount, capture_output=True, text=True)
    if run.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({run.stderr.strip()}); test_*_injected cover it")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def leave_free(folder: Path, free: int) -> None:
    """Fill ``folder``'s filesystem with a filler file until about ``free`` bytes are left."""
    stat = os.statvfs(folder)
    with open(folder / "filler", "wb") as f:
        f.write(b"\0" * max(stat.f_bavail * stat.f_frsize - free, 0))


# --- 1. Files a scene reads are inputs, never outputs ----------------------------------------


def test_a_vrt_source_is_never_overwritten(tmp_path: Path, scene: Path, model: Path) -> None:
    source = tmp_path / "src.tif"
    shutil.copy(scene, source)
    vrt = tmp_path / "mosaic.vrt"
    rasterio.shutil.copy(source, vrt, driver="VRT")
    before = source.read_bytes()
    # --out src.gpkg puts the class raster at src.tif, the file the VRT reads.
    run = s5geo("predict", str(vrt), "--out", str(tmp_path / "src.gpkg"), "--model", str(model),
                "--overwrite")  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert "src.tif is read by the input scene mosaic.vrt" in one_error_line(run.stderr)
    assert source.read_bytes() == before
    assert not (tmp_path / "src.gpkg").exists()


def test_nested_vrts_are_followed_to_their_sources(tmp_path: Path, scene: Path) -> None:
    inner, outer = tmp_path / "inner.vrt", tmp_path / "outer.vrt"
    rasterio.shutil.copy(scene, inner, driver="VRT")
    # GDAL flattens a VRT copied to a VRT, so the outer one is written by hand.
    outer.write_text(
        inner.read_text().replace(f'relativeToVRT="1">{scene.name}', 'relativeToVRT="1">inner.vrt')
    )
    assert "inner.vrt" in outer.read_text()
    assert set(dataset_files(outer)) >= {outer, inner, scene}
    refused = pytest.raises(UserError, match="read by the input scene outer.vrt")
    with refused, atomic_outputs(overwrite=True) as outputs:
        outputs.protect(outer, "scene")
        outputs.temp(scene)


# --- 2 and 5. Full disks: one error line, nothing committed, existing files unchanged ---------


def test_full_disk_at_every_stage_keeps_the_previous_outputs(
    tmp_path: Path, scene: Path, model: Path
) -> None:
    roomy = tmp_path / "roomy"
    roomy.mkdir()
    predict_scene(scene, roomy / "out.tif", model=model)
    size = (roomy / "out.tif").stat().st_size  # staging, overviews and the COG need ~2.5 x
    with small_filesystem(tmp_path / "small", "4m") as small:
        for previous in roomy.iterdir():
            shutil.copy(previous, small / previous.name)
        # Free space from nothing to nearly enough: the staging GeoTIFF, its tiles, the
        # overview levels, the VRT listing them and the COG copy each fail at one of these.
        for share in (0.05, 0.8, 1.1, 1.4, 1.7, 2.0):
            (small / "filler").unlink(missing_ok=True)
            leave_free(small, int(share * size))
            before = contents(small)
            with pytest.raises(UserError) as failed:
                predict_scene(scene, small / "out.tif", model=model, overwrite=True)
            message = str(failed.value)
            assert f"could not write {small / 'out.tif'}" in message, (share, message)
            assert "nothing was kept" in message
            assert contents(small) == before, share  # byte-identical, no temporaries


def test_full_disk_through_the_cli_names_the_geopackage(
    tmp_path: Path, scene: Path, model: Path
) -> None:
    roomy = tmp_path / "roomy"
    roomy.mkdir()
    predict_scene(scene, roomy / "out.tif", model=model)
    raster_peak = 3 * (roomy / "out.tif").stat().st_size  # room for the raster, not polygons
    with small_filesystem(tmp_path / "small", "4m") as small:
        leave_free(small, raster_peak)
        before = contents(small)
        run = s5geo("predict", str(scene), "--out", str(small / "out.gpkg"), "--model", str(model),
                    "--quiet")  # fmt: skip
        assert run.returncode == 2, run.stderr
        line = one_error_line(run.stderr)
        assert f"could not write {small / 'out.gpkg'} (no space left on device)" in line
        assert contents(small) == before


def test_a_cog_that_gdal_left_truncated_is_never_committed_injected(
    tmp_path: Path, scene: Path, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GDAL's COG copy can return as if it succeeded after libtiff failed to write the end of
    the file (a full disk): the same truncated file, made here on any filesystem."""
    out = tmp_path / "out.tif"
    predict_scene(scene, out, model=model)
    before = contents(tmp_path)
    copy = rasterio.shutil.copy

    def truncating_copy(source: object, dest: object, **options: object) -> None:
        copy(source, dest, **options)
        if options.get("driver") == "COG":
            with open(str(dest), "r+b") as f:
                f.truncate(os.path.getsize(str(dest)) * 2 // 3)

    monkeypatch.setattr(rasterio.shutil, "copy", truncating_copy)
    with pytest.raises(UserError, match=f"could not write {out}.*nothing was kept"):
        predict_scene(scene, out, model=model, overwrite=True)
    assert contents(tmp_path) == before


def test_spill_file_and_sqlite_errors_name_the_geopackage_injected(
    tmp_path: Path, blocky: Path, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from s5geo.vector import polygonize
    from s5geo.vector.spill import PieceStore

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def sqlite_full(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    # Strips of 16 rows: regions cross strip borders, so their pieces go to the spill file.
    monkeypatch.setattr(polygonize, "STRIP_PIXELS", 1)
    out = tmp_path / "out.gpkg"
    for target, name, error in (
        (PieceStore, "put", full),
        (polygonize, "write_polygon_layer", sqlite_full),
    ):
        with monkeypatch.context() as patch:
            patch.setattr(target, name, error)
            before = contents(tmp_path)
            with pytest.raises(UserError, match=f"could not write {out} .*nothing was kept"):
                segment_scene(blocky, out_raster=tmp_path / "out.tif", out_vector=out, model=model)
            assert contents(tmp_path) == before


# --- 3. Two runs writing the same outputs ------------------------------------------------------


@pytest.mark.realdata
def test_two_runs_racing_for_the_same_outputs(real_data: Path, tmp_path: Path) -> None:
    """Run A is paused (SIGSTOP) once it writes its temporaries, so past its check for existing
    outputs; run B writes the same outputs and commits; A, resumed, must then fail instead of
    replacing B's outputs, which stay a whole set."""
    sys.path.insert(0, str(ROOT / "bench"))
    from scenes import mosaic_vrt

    scene = mosaic_vrt(real_data / "naip" / "m_4709963_se_14_1_20200831.tif",
                       tmp_path / "big.vrt", 3)  # fmt: skip
    model_a = build_perpixel_model(tmp_path / "a.onnx", tile=256)
    # Another scale: another map, so a mixed set would show.
    model_b = build_perpixel_model(tmp_path / "b.onnx", tile=256, input_scale=100.0)
    outdir = tmp_path / "out"
    outdir.mkdir()
    out = outdir / "lc.gpkg"
    command_a = [*S5GEO, "predict", str(scene), "--out", str(out), "--quiet", "--model",
                 str(model_a)]  # fmt: skip
    run_a = subprocess.Popen(command_a, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not any(outdir.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.005)
    run_a.send_signal(signal.SIGSTOP)
    try:
        assert run_a.poll() is None, "run A finished before it could be paused"
        run_b = s5geo("predict", str(scene), "--out", str(out), "--quiet", "--model", str(model_b))
    finally:
        run_a.send_signal(signal.SIGCONT)
    _, err_a = run_a.communicate(timeout=120)
    assert run_b.returncode == 0, run_b.stderr
    assert run_a.returncode == 2, err_a
    assert "appeared while this run was writing it" in one_error_line(err_a)
    with rasterio.open(out.with_suffix(".tif")) as ds:
        assert ds.tags()["S5GEO_MODEL"] == "b.onnx"
        counts = np.bincount(ds.read(1).ravel(), minlength=256)
        pixel_area = abs(ds.transform.a * ds.transform.e)
    polygons = pyogrio.read_dataframe(out, layer="landcover")
    for class_id, area in polygons.groupby("class_id")["area_m2"].sum().items():
        assert area == pytest.approx(counts[class_id] * pixel_area, rel=1e-6)  # B's polygons
    assert not [p for p in outdir.iterdir() if TMP_MARKER in p.name]


def test_an_output_created_during_the_run_is_not_replaced(tmp_path: Path) -> None:
    final = tmp_path / "a.tif"
    refused = pytest.raises(UserError, match="appeared while this run was writing it")
    with refused, atomic_outputs() as outputs:
        outputs.temp(tmp_path / "a.qml").write_text("ours")
        outputs.temp(final).write_text("ours")
        final.write_text("another run's")  # after the check, before the commit
    assert contents(tmp_path) == {"a.tif": b"another run's"}  # and no a.qml of ours


# --- 4. The commit is all or nothing ---------------------------------------------------------


def _interrupt_on_call(monkeypatch: pytest.MonkeyPatch, name: str, call: int) -> None:
    """Make the ``call``-th call of ``os.<name>`` raise KeyboardInterrupt (after the ones
    before it did their work)."""
    real = getattr(os, name)
    calls = []

    def interrupted(*args: object, **kwargs: object) -> None:
        calls.append(args)
        if len(calls) == call:
            raise KeyboardInterrupt
        real(*args, **kwargs)

    monkeypatch.setattr(os, name, interrupted)


@pytest.mark.parametrize("overwrite", [False, True])
def test_an_interrupted_commit_restores_everything(
    tmp_path: Path, blocky: Path, model: Path, monkeypatch: pytest.MonkeyPatch, overwrite: bool
) -> None:
    outdir = tmp_path / "out"
    outdir.mkdir()
    if overwrite:  # the previous outputs, made by another model
        other = build_perpixel_model(tmp_path / "other.onnx", classes=5)
        segment_scene(blocky, out_raster=outdir / "lc.tif", out_vector=outdir / "lc.gpkg",
                      model=other)  # fmt: skip
    before = contents(outdir)
    # Without --overwrite outputs are placed with os.link, with it with os.replace: the second
    # one is interrupted, after the first output was moved into place.
    _interrupt_on_call(monkeypatch, "replace" if overwrite else "link", 2)
    with pytest.raises(KeyboardInterrupt):
        segment_scene(blocky, out_raster=outdir / "lc.tif", out_vector=outdir / "lc.gpkg",
                      model=model, overwrite=overwrite)  # fmt: skip
    assert contents(outdir) == before


def test_a_signal_during_the_commit_rolls_it_back(tmp_path: Path) -> None:
    """Ctrl-C that arrives while outputs are being moved into place is held until the set is
    back as it was, then raised."""
    real_link = os.link

    def link_then_signal(*args: object, **kwargs: object) -> None:
        real_link(*args, **kwargs)  # type: ignore[arg-type]
        os.kill(os.getpid(), signal.SIGINT)

    # A process started in the background by a shell inherits SIGINT ignored: Ctrl-C as a
    # terminal delivers it needs Python's default handler, as `s5geo` installs it.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(os, "link", link_then_signal)
            with pytest.raises(KeyboardInterrupt), atomic_outputs() as outputs:
                for name in ("a.gpkg", "a.tif", "a.qml"):
                    outputs.temp(tmp_path / name).write_text("new")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert list(tmp_path.iterdir()) == []


# --- 7. Long names -----------------------------------------------------------------------------


def test_a_235_character_output_name_works(tmp_path: Path, blocky: Path, model: Path) -> None:
    out = tmp_path / ("m" * 230 + ".gpkg")  # 235 characters: the raster's .aux.xml gets 238
    segment_scene(blocky, out_raster=out.with_suffix(".tif"), out_vector=out, model=model)
    assert out.exists() and out.with_suffix(".tif").exists()
    assert not [p for p in tmp_path.iterdir() if TMP_MARKER in p.name]
