"""``--extent`` with ``--out-dir``: each scene is predicted over the part of the extent it
covers, exactly as ``s5geo predict SCENE --extent`` does it alone; scenes outside are not run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import rasterio
from largearea.la_helpers import NAIP_2015, write_part
from largearea.test_run_layer import SEAM_ROW, s5geo
from rasterio.windows import Window

# In the NAIP scene's CRS (EPSG:26914): across the seam of the two halves (409 rows of the bottom
# one: two rows of the test model's 256 px windows), and inside the top one.
ACROSS = (486500.0, 5205700.0, 489500.0, 5208500.0)
TOP_ONLY = (486500.0, 5208000.0, 489500.0, 5209000.0)


def extent_arg(box: tuple[float, ...]) -> str:
    return ",".join(f"{v:g}" for v in box)


@pytest.fixture
def parts(real_data: Path, tmp_path: Path) -> list[Path]:
    scene = real_data / NAIP_2015
    with rasterio.open(scene) as ds:
        width, height = ds.width, ds.height
    return [
        write_part(scene, Window(0, 0, width, SEAM_ROW), tmp_path / "top.tif"),
        write_part(scene, Window(0, SEAM_ROW, width, height - SEAM_ROW), tmp_path / "bottom.tif"),
    ]


def classes(path: Path) -> tuple[np.ndarray, tuple[float, ...]]:
    with rasterio.open(path) as ds:
        return ds.read(1), tuple(ds.bounds)


@pytest.mark.realdata
@pytest.mark.parametrize("block_mp", ["32", "0.05"])  # one task a scene; blocks of rows
def test_each_scene_is_predicted_over_its_part_of_the_extent(
    parts: list[Path], context_model: Path, tmp_path: Path, block_mp: str
) -> None:
    run_dir = tmp_path / "run"
    run = s5geo("predict", *parts, "--out-dir", run_dir, "--model", context_model,
                "--extent", extent_arg(ACROSS), "--block-mp", block_mp)  # fmt: skip
    assert run.returncode == 0, run.stderr
    blocks = {int(n) for n in re.findall(r"bottom\S*: block \d+/(\d+) done", run.stderr)}
    assert (blocks and min(blocks) >= 2) if block_mp == "0.05" else not blocks, run.stderr
    for part in parts:
        alone = tmp_path / f"{part.stem}_alone.tif"
        single = s5geo("predict", part, "--out", alone, "--model", context_model,
                       "--extent", extent_arg(ACROSS), "-q")  # fmt: skip
        assert single.returncode == 0, single.stderr
        got, got_bounds = classes(run_dir / f"{part.stem}.tif")
        want, want_bounds = classes(alone)
        assert got_bounds == want_bounds  # the part of the extent inside this scene
        assert np.array_equal(got, want)


@pytest.mark.realdata
def test_scenes_outside_the_extent_are_not_run(
    parts: list[Path], context_model: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    run = s5geo("predict", *parts, "--out-dir", run_dir, "--model", context_model,
                "--extent", extent_arg(TOP_ONLY), "-q")  # fmt: skip
    assert run.returncode == 0, run.stderr
    status = {
        name: entry["status"]
        for name, entry in json.loads((run_dir / "s5geo-run.json").read_text())["scenes"].items()
    }
    assert status == {"top": "done", "bottom": "outside"}
    assert not (run_dir / "bottom.tif").exists()
    with rasterio.open(run_dir / "mosaic.vrt") as mosaic:
        assert mosaic.bounds == classes(run_dir / "top.tif")[1]
    # Another extent is another run: it starts afresh, saying why.
    again = s5geo("predict", *parts, "--out-dir", run_dir, "--model", context_model,
                  "--extent", extent_arg(ACROSS), "--overwrite")  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "starting afresh" in again.stderr and "extent" in again.stderr
