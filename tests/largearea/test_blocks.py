"""Scenes run as blocks of window rows (in this process and on a LocalCluster of 2 worker
processes): the class and confidence COGs of one task per scene, byte for byte, the same
polygons, and a run interrupted between blocks resumes block by block."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from largearea.la_helpers import NAIP_2015

from s5geo.infer import Progress
from s5geo.io.inputs import resolve_inputs
from s5geo.largearea import RunOptions, RunResult, predict_many

# 0.15 MP blocks cut the 0.68 MP NAIP scene into 5 blocks and the 0.57 MP Landsat one into 4.
BLOCK_MP = 0.15


@pytest.fixture
def inputs(real_data: Path) -> list:
    names = [real_data / NAIP_2015, real_data / "landsat" / "RGB.byte.tif"]
    return resolve_inputs([str(n) for n in names], bands=(1, 2, 3))


def options(model: Path, **kwargs: float) -> RunOptions:
    return RunOptions(model=str(model), polygons=True, confidence=True, **kwargs)


def polygons(path: Path) -> list[tuple[int, bytes]]:
    frame = gpd.read_file(path, layer="landcover")
    wkb = [g.wkb for g in shapely.normalize(frame.geometry.values)]
    return sorted(zip(frame["class_id"].tolist(), wkb, strict=True))


def assert_same_outputs(a: RunResult, b: RunResult) -> None:
    assert {s.status for s in b.scenes} == {"done"}
    for s in a.scenes:
        for suffix in (".tif", "_confidence.tif"):
            name = s.scene + suffix
            assert (a.out_dir / name).read_bytes() == (b.out_dir / name).read_bytes(), name
        assert polygons(b.out_dir / f"{s.scene}.gpkg") == polygons(a.out_dir / f"{s.scene}.gpkg")
    assert not (b.out_dir / ".s5geo-blocks").exists()  # the block files are removed


@pytest.mark.realdata
def test_scenes_in_blocks_give_the_files_of_one_task_per_scene(
    inputs: list, context_model: Path, tmp_path: Path
) -> None:
    single = predict_many(inputs, tmp_path / "single", options(context_model))
    lines: list[str] = []
    blocked = predict_many(
        inputs, tmp_path / "blocks", options(context_model, block_megapixels=BLOCK_MP),
        log=lines.append,
    )  # fmt: skip
    assert_same_outputs(single, blocked)
    assert any("block 5/5 done" in line and "blocks 5/9" in line for line in lines), lines
    assert "blocks 9/9" in lines[-1]
    assert blocked.megapixels == pytest.approx(single.megapixels)


@pytest.mark.realdata
def test_blocks_on_a_cluster_of_two_workers(
    inputs: list, context_model: Path, tmp_path: Path
) -> None:
    from distributed import LocalCluster

    single = predict_many(inputs, tmp_path / "single", options(context_model))
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:  # fmt: skip
        spread = predict_many(
            inputs, tmp_path / "dask", options(context_model, block_megapixels=BLOCK_MP),
            scheduler=cluster.scheduler_address,
        )  # fmt: skip
    assert_same_outputs(single, spread)


@pytest.mark.realdata
def test_a_run_stopped_between_blocks_resumes_block_by_block(
    inputs: list, context_model: Path, tmp_path: Path
) -> None:
    single = predict_many(inputs, tmp_path / "single", options(context_model))
    run_dir = tmp_path / "run"
    opts = options(context_model, block_megapixels=BLOCK_MP)
    starts: list[int] = []

    def stop_at_third_block(report: Progress) -> None:
        if report.done == 0:  # each block reports once before its first window
            starts.append(1)
            if len(starts) == 3:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        predict_many(inputs, run_dir, opts, progress=stop_at_third_block)
    manifest = json.loads((run_dir / "s5geo-run.json").read_text())
    first = manifest["scenes"][Path(NAIP_2015).stem]
    assert sorted(first["blocks"]["done"]) == ["0", "1"]
    assert not [p for p in (run_dir / ".s5geo-blocks").rglob("*") if ".tmp" in p.name]

    lines: list[str] = []
    resumed = predict_many(inputs, run_dir, opts, log=lines.append)
    ran = [line for line in lines if " block " in line]
    assert len(ran) == 3 + 4  # the first scene's last 3 blocks, the second scene's 4
    assert_same_outputs(single, resumed)
