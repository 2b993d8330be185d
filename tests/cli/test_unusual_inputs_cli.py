"""`s5geo` on unusual inputs as users run it (issue 30, part B): one `error:` line and exit 2
where the input cannot be used, no numpy or GDAL noise, `--version`, close option suggestions."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from helpers import build_perpixel_model, write_scene

from s5geo import __version__

S5GEO = [sys.executable, "-m", "s5geo.cli.main"]


def s5geo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*S5GEO, *args], capture_output=True, text=True, timeout=120)


def assert_one_error_line(run: subprocess.CompletedProcess[str], *words: str) -> None:
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    for word in words:
        assert word in lines[0], lines[0]


def _huge_vrt(source: Path, vrt: Path, side: int) -> Path:
    """A ``side`` x ``side`` px VRT holding ``source`` in its corner: a real scene GDAL reads,
    as large as wanted, at no cost on disk."""
    with rasterio.open(source) as src:
        w, h, t = src.width, src.height, src.transform
    bands = "".join(
        f'<VRTRasterBand dataType="Byte" band="{b}"><SimpleSource>'
        f'<SourceFilename relativeToVRT="0">{source}</SourceFilename><SourceBand>{b}</SourceBand>'
        f'<SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>'
        f'<DstRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/></SimpleSource></VRTRasterBand>'
        for b in (1, 2, 3)
    )
    vrt.write_text(
        f'<VRTDataset rasterXSize="{side}" rasterYSize="{side}">'
        f"<GeoTransform>{t.c}, {t.a}, 0, {t.f}, 0, {t.e}</GeoTransform>{bands}</VRTDataset>"
    )
    return vrt


def _vector(path: Path) -> Path:
    """A GeoPackage of one polygon, as a user might pass by mistake for the imagery."""
    import pyogrio
    import shapely

    geometry = shapely.to_wkb(np.array([shapely.box(0, 0, 1, 1)]))
    pyogrio.raw.write(path, geometry, field_data=[np.array([1])], fields=["id"], layer="fields",
                      geometry_type="Polygon", crs="EPSG:32633", driver="GPKG")  # fmt: skip
    return path


def test_absurd_sizes_are_refused_with_the_numbers(tmp_path: Path, rng) -> None:
    scene = write_scene(tmp_path / "scene.tif", rng.integers(1, 255, (3, 80, 80), dtype=np.uint8))
    dynamic = build_perpixel_model(tmp_path / "dynamic.onnx", dynamic=True)
    huge_tiles = build_perpixel_model(tmp_path / "huge.onnx", dynamic=True, tile=200_000)
    fixed = build_perpixel_model(tmp_path / "fixed.onnx", tile=512)
    wide = _huge_vrt(scene, tmp_path / "wide.vrt", 60_000)  # 24336 windows of 512 px
    cases = [
        (
            ("--model", str(dynamic), "--tile-size", "100000"),
            "(--tile-size 100000, --batch-size 4)",
        ),
        (("--model", str(huge_tiles)), "(the model's tiles_size 200000, --batch-size 4)"),
        (("--model", str(fixed), "--batch-size", "100000"), "24336 windows of 512 px"),
    ]
    for options, words in cases:
        source = wide if "fixed.onnx" in options[1] else scene
        run = s5geo("predict", str(source), "--out", str(tmp_path / "o.tif"), *options)
        assert_one_error_line(run, words, "GiB of memory", "GiB is available")
    # A batch larger than the scene's windows is no reason to refuse: it is one batch.
    model = build_perpixel_model(tmp_path / "m.onnx")
    run = s5geo("predict", str(scene), "--out", str(tmp_path / "o.tif"), "--quiet",
                "--model", str(model), "--batch-size", "100000")  # fmt: skip
    assert run.returncode == 0, run.stderr


def test_info_on_a_broken_vrt_and_a_truncated_file(tmp_path: Path, rng) -> None:
    source = write_scene(tmp_path / "source.tif", rng.integers(1, 255, (3, 80, 80), np.uint8))
    vrt = tmp_path / "mosaic.vrt"
    rasterio.shutil.copy(source, vrt, driver="VRT")
    source.unlink()
    big = write_scene(tmp_path / "big.tif", rng.integers(1, 255, (3, 600, 600), np.uint8))
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(big.read_bytes()[:200_000])
    assert_one_error_line(s5geo("info", str(vrt)), "source.tif, which does not exist")
    assert_one_error_line(s5geo("info", str(truncated)), "truncated or corrupt")


def test_scene_names_and_options_users_get_wrong(tmp_path: Path, rng) -> None:
    scene = write_scene(tmp_path / "scene.tif", rng.integers(1, 255, (3, 80, 80), np.uint8))
    model = build_perpixel_model(tmp_path / "m.onnx")
    archive = tmp_path / "scene.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(scene, "scene.tif")
    zipped = f"/vsizip/{archive}/scene.tif"  # /vsizip//abs/...: the absolute path's own slash
    assert zipped.startswith("/vsizip//")
    out = tmp_path / "z.tif"
    run = s5geo("predict", zipped, "--out", str(out), "--model", str(model), "--quiet")
    assert run.returncode == 0 and out.exists(), run.stderr
    assert s5geo("info", zipped).returncode == 0
    folder = tmp_path / "models"
    folder.mkdir()
    base = ("predict", str(scene), "--out", str(tmp_path / "o.tif"))
    cases = [
        ((*base, "--extent", "nan,0,1,1"), "--extent takes four finite numbers"),
        ((*base, "--model", str(folder)), "is a folder, not a model file"),
        (("predict", str(_vector(tmp_path / "fields.gpkg")), "--out", str(tmp_path / "o.tif")),
         "fields.gpkg is a vector file (layers: fields), not a raster"),
        ((*base, "--frobnicate"), "No such option: --frobnicate (see "),
        ((*base, "--overwrit"), "Possible options: --no-overwrite, --overwrite"),
    ]  # fmt: skip
    for args, words in cases:
        assert_one_error_line(s5geo(*args), words)
    version = s5geo("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"s5geo {__version__}"


def test_the_library_names_parameters_and_the_cli_its_flags(tmp_path: Path) -> None:
    """The library's errors name its parameters (what the QGIS plugin words as its fields); the
    command line names its flags, for one scene and, before any scene, for a run folder."""
    from s5geo.infer import ParameterError, PredictOptions, predict_scene

    scene = write_scene(tmp_path / "s.tif", np.full((3, 64, 64), 100, np.uint8))
    model = build_perpixel_model(tmp_path / "m.onnx")
    with pytest.raises(ParameterError) as caught:
        predict_scene(scene, tmp_path / "a.tif", model=model, options=PredictOptions(overlap=1000))
    assert str(caught.value) == "overlap must lie in 0..32 px for 64-px tiles, not 1000"
    base = ("predict", str(scene), "--model", str(model))
    for args, words in (
        (("--out", str(tmp_path / "b.tif"), "--overlap", "1000"),
         "--overlap must lie in 0..32 px for 64-px tiles, not 1000"),
        (("--out", str(tmp_path / "b.tif"), "--batch-size", "0"),
         "--batch-size must be at least 1, not 0"),
        (("--out", str(tmp_path / "b.gpkg"), "--min-area", "-5"),
         "--min-area must be at least 0 m², not -5"),
        (("--out-dir", str(tmp_path / "run"), "--overlap", "1000"),
         "--overlap must lie in 0..32 px for 64-px tiles, not 1000"),
    ):  # fmt: skip
        assert_one_error_line(s5geo(*base, *args), words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "s.tif"]
