"""`s5geo predict` and `s5geo info` as users run them: real processes, real files, exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
from helpers import ROOT, build_perpixel_model
from rio_cogeo.cogeo import cog_validate

from s5geo.infer import load_model

S5GEO = [sys.executable, "-m", "s5geo.cli.main"]


def s5geo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*S5GEO, *args], capture_output=True, text=True, timeout=600)


def assert_user_error(run: subprocess.CompletedProcess[str], words: str) -> None:
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    assert words in lines[0]
    assert "Traceback" not in run.stderr


def assert_outputs_match_scene(scene: Path, gpkg: Path, classes: set[str]) -> None:
    raster = gpkg.with_suffix(".tif")
    assert cog_validate(str(raster))[0], cog_validate(str(raster))[1]
    with rasterio.open(scene) as src, rasterio.open(raster) as out:
        assert out.crs == src.crs and out.transform == src.transform
        assert (out.width, out.height) == (src.width, src.height)
        counts = np.bincount(out.read(1).ravel(), minlength=256)
    info = pyogrio.read_info(gpkg, layer="landcover")
    assert info["geometry_type"] in ("Polygon", "MultiPolygon")
    assert rasterio.crs.CRS.from_user_input(info["crs"]) == src.crs
    df = pyogrio.read_dataframe(gpkg, layer="landcover")
    assert set(df["class_name"]) <= classes and len(df) > 0
    assert df.geometry.is_valid.all()
    pixel_area = abs(src.transform.a * src.transform.e)
    for class_id, area in df.groupby("class_id")["area_m2"].sum().items():
        assert area == pytest.approx(counts[class_id] * pixel_area, rel=1e-6)


@pytest.mark.realdata
def test_naip_with_the_bundled_model(real_data: Path, tmp_path: Path) -> None:
    scene = real_data / "naip" / "m_4709963_se_14_1_20200831.tif"
    out = tmp_path / "landcover.gpkg"
    run = s5geo("predict", str(scene), "--out", str(out), "--quicklook", str(tmp_path / "q.png"))
    assert run.returncode == 0, run.stderr
    assert "execution provider: CPUExecutionProvider" in run.stderr
    assert f"polygons: {out}" in run.stdout
    bundled = set(load_model().info.class_names.values())
    assert_outputs_match_scene(scene, out, bundled)
    assert (tmp_path / "q.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.realdata
def test_landsat_with_its_nodata_collar(real_data: Path, tmp_path: Path) -> None:
    scene = real_data / "landsat" / "RGB.byte.tif"
    model = build_perpixel_model(tmp_path / "rgb.onnx", tile=256)
    out = tmp_path / "landsat.gpkg"
    run = s5geo("predict", str(scene), "--out", str(out), "--model", str(model), "--quiet")
    assert run.returncode == 0, run.stderr
    assert_outputs_match_scene(scene, out, {"water", "forest", "urban"})
    with rasterio.open(scene) as src, rasterio.open(out.with_suffix(".tif")) as o:
        invalid = src.dataset_mask() == 0
        classes = o.read(1)
    assert invalid.mean() > 0.2
    assert (classes[invalid] == 255).all() and (classes[~invalid] != 255).all()


@pytest.mark.realdata
def test_spacenet_uint16_panchromatic(real_data: Path, tmp_path: Path) -> None:
    scene = real_data / "spacenet" / "sample_geotiff.tif"
    model = build_perpixel_model(tmp_path / "pan.onnx", bands=(1,), input_scale=2047.0, tile=128)
    out = tmp_path / "spacenet.gpkg"
    run = s5geo("predict", str(scene), "--out", str(out), "--model", str(model), "--quiet",
                "--min-area", "5", "--simplify", "0.5")  # fmt: skip
    assert run.returncode == 0, run.stderr
    with rasterio.open(scene) as src, rasterio.open(out.with_suffix(".tif")) as o:
        assert src.dtypes[0] == "uint16" and o.crs == src.crs and o.transform == src.transform
    df = pyogrio.read_dataframe(out, layer="landcover")
    assert df.geometry.is_valid.all() and (df["area_m2"] >= 5).all()


def test_user_errors_exit_2_with_one_line(tmp_path: Path, make_scene) -> None:
    scene = make_scene(80, 80)
    model = build_perpixel_model(tmp_path / "m.onnx")
    two = make_scene(40, 40, bands=2, name="two.tif")
    existing = tmp_path / "taken.gpkg"
    existing.write_text("keep me")
    bad_model = tmp_path / "bad.onnx"
    bad_model.write_bytes(b"not onnx")
    nocrs = tmp_path / "nocrs.tif"
    with (
        rasterio.open(scene) as src,
        rasterio.open(
            nocrs, "w", driver="GTiff", width=80, height=80, count=3, dtype="uint8"
        ) as dst,
    ):
        dst.write(src.read())
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    cases = [
        (("predict", str(tmp_path / "nope.tif"), "--out", str(tmp_path / "a.gpkg")),
         "no such file"),
        (("predict", str(scene), "--out", str(tmp_path / "a.shp")), "must end in .gpkg or .tif"),
        (("predict", str(scene), "--out", str(existing), "--model", str(model)), "--overwrite"),
        (("predict", str(two), "--out", str(tmp_path / "b.tif"), "--model", str(model)), "band"),
        (("predict", str(scene), "--out", str(tmp_path / "c.tif"), "--model", str(bad_model)),
         "cannot be loaded"),
        (("predict", str(scene), "--out", str(tmp_path / "d.tif"), "--providers", "cuda"),
         "not available"),
        (("info", str(tmp_path / "nope.onnx")), "no such file"),
        (("predict", str(scene)), "Missing option '--out'"),
        (("predict", str(scene), "--out", str(tmp_path / "f.gpkg"), "--tile-size", "many"),
         "Invalid value for '--tile-size'"),
        (("predict", str(scene), "--out", str(tmp_path / "scene.gpkg"), "--overwrite"),
         "is the input scene"),
        (("predict", str(nocrs), "--out", str(tmp_path / "g.gpkg"), "--model", str(model)),
         "has no CRS"),
    ]  # fmt: skip
    # Not writable even for root: a special filesystem, or a folder without permissions.
    unwritable = Path("/proc") if os.geteuid() == 0 else locked
    cases.append(
        (
            ("predict", str(scene), "--out", str(unwritable / "e.tif"), "--model", str(model)),
            "not writable",
        )
    )
    for args, words in cases:
        assert_user_error(s5geo(*args), words)
    assert existing.read_text() == "keep me"
    leftovers = {p.name for p in tmp_path.iterdir()} - {
        "m.onnx", "scene.tif", "two.tif", "taken.gpkg", "bad.onnx", "locked", "nocrs.tif"
    }  # fmt: skip
    assert leftovers == set()


def test_training_commands_in_the_deployment_install_say_what_to_install(tmp_path: Path) -> None:
    """Without torch (``sys.modules['torch'] = None`` makes ``import torch`` fail as if it were not
    installed), a training command answers with one line naming the training install."""
    config = ROOT / "configs" / "s4p" / "dubai_cpu.yaml"
    code = (
        "import sys; sys.modules['torch'] = None; "
        f"sys.argv = ['s5geo', 'train', {str(config)!r}]; "
        "from s5geo.cli.main import run; run()"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert_user_error(run, "pip install '.[train]'")
    assert list(tmp_path.iterdir()) == []


def test_progress_in_a_log_is_plain_lines(tmp_path: Path, make_scene) -> None:
    scene = make_scene(300, 300)
    model = build_perpixel_model(tmp_path / "m.onnx")
    run = s5geo("predict", str(scene), "--out", str(tmp_path / "o.gpkg"), "--model", str(model),
                "--quicklook", str(tmp_path / "q.png"))  # fmt: skip
    assert run.returncode == 0, run.stderr
    lines = run.stderr.splitlines()
    assert sum(line.startswith("predict (cpu): ") for line in lines) >= 5, run.stderr
    assert any(line.startswith("polygonize (cpu): 100 %") for line in lines), run.stderr
    assert "" not in lines[:3] and "\x1b" not in run.stderr and "Warning" not in run.stderr


def test_help_shows_an_example() -> None:
    for command in ("predict", "info"):
        run = s5geo(command, "--help")
        assert run.returncode == 0 and "Example" in run.stdout


def test_info_describes_models_and_scenes(tmp_path: Path, make_scene) -> None:
    run = s5geo("info", "--json")
    assert run.returncode == 0, run.stderr
    default = json.loads(run.stdout)
    bundled = load_model().info
    assert default["kind"] == "model" and default["bands"] == list(bundled.bands)
    assert default["classes"] == {str(k): v for k, v in bundled.class_names.items()}
    assert default["provider"] == "CPUExecutionProvider"
    scene = make_scene(50, 60, crs="EPSG:4326", res=0.001, origin=(5.0, 45.0))
    described = json.loads(s5geo("info", str(scene), "--json").stdout)
    assert (described["width"], described["height"], described["epsg"]) == (60, 50, 4326)
    assert described["geographic"] is True
    assert s5geo("info", str(scene)).returncode == 0  # the human-readable table


@pytest.mark.realdata
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_leaves_no_file(real_data: Path, tmp_path: Path, sig: int) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from scenes import mosaic_vrt

    scene = mosaic_vrt(real_data / "naip" / "m_4709963_se_14_1_20200831.tif",
                       tmp_path / "big.vrt", 60)  # fmt: skip
    outdir = tmp_path / "out"
    outdir.mkdir()
    proc = subprocess.Popen([*S5GEO, "predict", str(scene), "--out", str(outdir / "lc.gpkg"),
                             "--quiet"], stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while not any(outdir.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)  # wait until it is writing its temporaries
    time.sleep(0.5)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err  # 130 for Ctrl-C, 143 for SIGTERM
    assert "interrupted" in err and "Traceback" not in err
    assert list(outdir.iterdir()) == []
