"""Faults and resume on a real Dask cluster (a LocalCluster of 2 worker processes on 127.0.0.1):
a worker killed mid-run and a run interrupted with Ctrl-C both end with the files of an
uninterrupted single-process run, byte for byte."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from largearea.la_helpers import NAIP_2015

from s5geo.io.inputs import resolve_inputs
from s5geo.largearea import RunOptions, RunResult, predict_many

S5GEO = [sys.executable, "-m", "s5geo.cli.main"]
OTHER_SCENES = (
    "naip/m_4709963_se_14_1_20090818.tif",
    "naip/m_4709963_se_14_1_20200831.tif",
    "landsat/RGB.byte.tif",
)


@pytest.fixture
def scenes(real_data: Path) -> list[str]:
    return [str(real_data / name) for name in (NAIP_2015, *OTHER_SCENES)]


def same_files(a: Path, b: Path, names: list[str]) -> None:
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def polygons(path: Path) -> list[tuple[int, bytes]]:
    frame = gpd.read_file(path, layer="landcover")
    wkb = [g.wkb for g in shapely.normalize(frame.geometry.values)]
    return sorted(zip(frame["class_id"].tolist(), wkb, strict=True))


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.parametrize("block_mp", [32.0, 0.15], ids=["scenes", "blocks"])
def test_a_killed_worker_changes_nothing(
    scenes: list[str], context_model: Path, tmp_path: Path, block_mp: float
) -> None:
    from distributed import Client, LocalCluster

    inputs = resolve_inputs(scenes, bands=(1, 2, 3))
    options = RunOptions(model=str(context_model), polygons=True)
    single = predict_many(inputs, tmp_path / "single", options, layer=tmp_path / "single.gpkg")
    # With 0.15 MP blocks every scene runs as 4 or 5 blocks: the worker dies during a block.
    options = RunOptions(model=str(context_model), polygons=True, block_megapixels=block_mp)
    assert {s.status for s in single.scenes} == {"done"}

    got: dict[str, RunResult | BaseException] = {}
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,  # fmt: skip
        Client(cluster) as client,
    ):

        def run() -> None:
            try:
                got["result"] = predict_many(
                    inputs, tmp_path / "dask", options, scheduler=cluster.scheduler_address,
                    layer=tmp_path / "dask.gpkg",
                )  # fmt: skip
            except BaseException as exc:  # reported by the assertion below
                got["result"] = exc

        pids = client.run(os.getpid)
        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + 60
        busy: list[str] = []
        while not busy and time.monotonic() < deadline:
            busy = [w for w, keys in client.processing().items() if keys]
            time.sleep(0.02)
        assert busy, "no task started within a minute"
        os.kill(pids[busy[0]], signal.SIGKILL)  # a scene's task dies with its worker
        thread.join(timeout=600)
    result = got["result"]
    assert isinstance(result, RunResult), result
    assert {s.status for s in result.scenes} == {"done"}
    names = [f"{s.scene}.tif" for s in single.scenes]
    same_files(tmp_path / "single", tmp_path / "dask", names)
    for s in single.scenes:
        assert polygons(tmp_path / "dask" / f"{s.scene}.gpkg") == polygons(Path(str(s.polygons)))
    assert polygons(tmp_path / "dask.gpkg") == polygons(tmp_path / "single.gpkg")


@pytest.mark.realdata
@pytest.mark.slow
def test_an_interrupted_run_resumes_to_the_same_files(
    scenes: list[str], context_model: Path, tmp_path: Path
) -> None:
    whole = tmp_path / "whole"
    args = [*S5GEO, "predict", *scenes, "--model", str(context_model), "-q"]
    done = subprocess.run([*args, "--out-dir", str(whole)], capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr

    run_dir = tmp_path / "run"
    manifest = run_dir / "s5geo-run.json"
    stopped = subprocess.Popen([*args, "--out-dir", str(run_dir)], stderr=subprocess.PIPE)
    finished: list[str] = []
    while not finished and stopped.poll() is None:
        time.sleep(0.02)
        try:
            entries = json.loads(manifest.read_text())["scenes"].values()
        except (OSError, ValueError, KeyError):
            continue
        finished = [e["scene"] for e in entries if e.get("status") == "done"]
    stopped.send_signal(signal.SIGINT)  # Ctrl-C while the next scene runs
    _, err = stopped.communicate(timeout=120)
    assert stopped.returncode != 0, err
    entries = json.loads(manifest.read_text())["scenes"].values()
    left = [e["scene"] for e in entries if e["status"] != "done"]
    assert finished and left, "the run was not interrupted between its first and last scene"
    assert not [p for p in run_dir.iterdir() if ".tmp" in p.name or "s5geo-tmp" in p.name]

    resumed = subprocess.run([*args, "--out-dir", str(run_dir)], capture_output=True,
                             text=True, timeout=600)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    stems = [e["scene"] for e in entries]
    same_files(whole, run_dir, [f"{stem}.tif" for stem in stems])
