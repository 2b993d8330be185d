"""A real curation run on a few Dubai images and a synthetic georeferenced scene."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import torch
from helpers import write_scene

from s5geo.config import load_config
from s5geo.curate.manifest import read_selection
from s5geo.curate.run import CurateOptions, curate, resolve_items
from s5geo.errors import UserError
from s5geo.models import build_model

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def seed_checkpoint(tmp_path: Path) -> Path:
    """An s5geo train checkpoint (config + ``net.`` state dict) of a small Dubai model."""
    cfg = load_config(
        ROOT / "configs" / "s4p" / "dubai_cpu_supervised.yaml",
        ["model.name=vit_tiny", "model.img_size=128", "model.decoder_channels=16"],
    )
    torch.manual_seed(0)
    net = build_model(cfg.model)
    path = tmp_path / "seed.ckpt"
    state = {f"net.{k}": v for k, v in net.state_dict().items()}
    torch.save({"hyper_parameters": {"config": cfg.to_dict()}, "state_dict": state}, path)
    return path


def test_curate_dubai_images(real_data: Path, seed_checkpoint: Path, tmp_path: Path) -> None:
    images = real_data / "dubai" / "images"
    report = curate(
        seed_checkpoint,
        pool=[str(images / "Tile2_image_part_00[1-4].jpg")],  # a glob: 4 images, 24 windows
        labeled=[str(images / f"Tile1_image_part_00{i}.jpg") for i in (1, 5)],
        out_dir=tmp_path / "out",
        options=CurateOptions(target=12, clusters=3, window=256, batch=4, background=1),
    )  # fmt: skip
    assert report["selected"] == 12
    assert sum(c["quota"] for c in report["clusters"]) == 12
    assert sum(c["labelled"] for c in report["clusters"]) == report["labelled_windows"]
    assert report["georeferenced"] == ["none (pixel coordinates)"]
    rows = read_selection(tmp_path / "out" / "selection.gpkg")
    assert len(rows) == 12 and [r["rank"] for r in rows] == sorted(r["rank"] for r in rows)
    entropies = [r["entropy"] for r in rows]
    assert entropies == sorted(entropies)
    assert all(Path(r["scene"]).is_file() for r in rows)
    assert (
        pyogrio.read_info(str(tmp_path / "out" / "selection.gpkg"), layer="selection_pixel")["crs"]
        is None
    )
    assert (tmp_path / "out" / "entropy.png").stat().st_size > 0
    assert json.loads((tmp_path / "out" / "report.json").read_text())["selected"] == 12


def test_split_names_resolve_through_the_seed_config(real_data: Path) -> None:
    cfg = load_config(ROOT / "configs" / "s4p" / "dubai_cpu_supervised.yaml")
    paths = resolve_items(["split:val"], cfg)
    assert len(paths) == 9 and all(p.name.startswith("Tile2_") for p in paths)


def test_curate_scene_footprints_in_scene_crs(seed_checkpoint: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = rng.integers(1, 255, size=(3, 300, 200), dtype=np.uint8)
    data[:, :100, :] = 0  # a no-data band: its windows are wholly invalid and never scored
    scene = write_scene(tmp_path / "scene.tif", data, crs="EPSG:32633", res=0.5, nodata=0)
    labeled = write_scene(tmp_path / "lab.tif", data[:, 100:, :].copy(), crs="EPSG:32633")
    report = curate(
        seed_checkpoint, [str(scene)], [str(labeled)], tmp_path / "out",
        CurateOptions(target=2, clusters=1, window=64, batch=3, ceiling=10.0),
    )  # fmt: skip
    assert report["pool_windows"] == 4 * 4  # 200x200 valid rows of 64-px windows, edge-aligned
    info = pyogrio.read_info(str(tmp_path / "out" / "selection.gpkg"), layer="selection")
    assert "32633" in info["crs"] and info["features"] == 2
    x0, y0, x1, y1 = pyogrio.read_bounds(str(tmp_path / "out" / "selection.gpkg"))[1][:, 0]
    assert x1 - x0 == pytest.approx(32.0) and y1 - y0 == pytest.approx(32.0)  # 64 px x 0.5 m
    assert y1 <= 5_000_000.0 - 100 * 0.5 + 1e-6  # below the no-data band


def test_selection_is_an_unlabeled_source_and_random_baseline(
    seed_checkpoint: Path, tmp_path: Path
) -> None:
    from s5geo.data.selection import SelectedWindows
    from s5geo.data.views import ViewStream

    data = np.random.default_rng(1).integers(1, 255, size=(3, 128, 192), dtype=np.uint8)
    scene = write_scene(tmp_path / "scene.tif", data)
    labeled = write_scene(tmp_path / "lab.tif", data[:, :64, :64].copy())
    for strategy in ("rs4p", "random"):
        out = tmp_path / strategy
        curate(seed_checkpoint, [str(scene)], [str(labeled)], out,
               CurateOptions(target=3, clusters=1, window=64, strategy=strategy))  # fmt: skip
        source = SelectedWindows(out / "selection.gpkg", [1, 2, 3], 255.0)
        assert len(source) == 3
        r = source.rows[0]
        expected = data[:, r["row_off"] : r["row_off"] + 64, r["col_off"] : r["col_off"] + 64]
        np.testing.assert_allclose(source[0]["image"].numpy(), expected / 255.0, rtol=1e-6)
        stream = ViewStream(source, None, length=2, crop_size=32, scale_range=(1.0, 1.0),
                            rotation=False, ignore_index=255)  # fmt: skip
        assert stream[0]["image"].shape == (3, 32, 32)


@pytest.fixture
def config_only_checkpoint(seed_checkpoint: Path, tmp_path: Path) -> Path:
    """The seed checkpoint's config with no weights: any attempt to build the model fails."""
    ckpt = torch.load(seed_checkpoint, map_location="cpu", weights_only=True)
    path = tmp_path / "config_only.ckpt"
    torch.save({"hyper_parameters": ckpt["hyper_parameters"], "state_dict": {}}, path)
    return path


def test_random_half_needs_no_model_and_keeps_the_format(
    real_data: Path, seed_checkpoint: Path, config_only_checkpoint: Path, tmp_path: Path
) -> None:
    """The random baseline on real Dubai images: same pool windows, same size, same layers and
    fields as an RS4P selection; entropy/cluster NULL unless scored; the draw depends on the seed
    only (scoring does not change it)."""
    images = real_data / "dubai" / "images"
    pool = [str(images / "Tile3_image_part_00[2-4].jpg")]  # 3 images of 682x658: 27 windows
    labeled = [str(images / "Tile3_image_part_001.jpg")]

    def run(ckpt: Path, name: str, **kw: object) -> list[dict[str, object]]:
        options = CurateOptions(target=9, clusters=2, window=256, batch=9, **kw)  # type: ignore[arg-type]
        curate(ckpt, pool, labeled if name != "nolabel" else [], tmp_path / name, options)
        return read_selection(tmp_path / name / "selection.gpkg")

    rs4p = run(seed_checkpoint, "rs4p")
    plain = run(config_only_checkpoint, "random", strategy="random", seed=3)
    nolabel = run(config_only_checkpoint, "nolabel", strategy="random", seed=3)
    other = run(config_only_checkpoint, "other", strategy="random", seed=4)
    scored = run(seed_checkpoint, "scored", strategy="random", seed=3, score=True)
    assert len(rs4p) == len(plain) == len(scored) == 9
    layers = [pyogrio.list_layers(str(tmp_path / n / "selection.gpkg")).tolist()
              for n in ("rs4p", "random", "scored")]  # fmt: skip
    assert layers[0] == layers[1] == layers[2] == [["selection_pixel", "Polygon"]]
    assert set(rs4p[0]) == set(plain[0]) == set(scored[0])
    key = [(r["scene"], r["col_off"], r["row_off"], r["rank"]) for r in plain]
    assert key == [(r["scene"], r["col_off"], r["row_off"], r["rank"]) for r in scored]
    assert key == [(r["scene"], r["col_off"], r["row_off"], r["rank"]) for r in nolabel]
    assert key != [(r["scene"], r["col_off"], r["row_off"], r["rank"]) for r in other]
    assert all(r["entropy"] is None and r["cluster"] is None for r in plain)
    assert all(r["entropy"] > 0 and r["cluster"] in (0, 1) for r in scored)
    assert all(Path(str(r["scene"])).is_absolute() for r in plain)
    report = json.loads((tmp_path / "random" / "report.json").read_text())
    assert report["scored"] is False and report["pool_windows"] == 27
    assert report["entropy"] is None and not (tmp_path / "random" / "entropy.png").exists()
    with pytest.raises(UserError, match="labelled images"):
        curate(seed_checkpoint, pool, [], tmp_path / "x", CurateOptions(target=9, window=256))


def test_random_strategy_from_the_command_line(
    config_only_checkpoint: Path, tmp_path: Path
) -> None:
    scene = write_scene(tmp_path / "pool.tif", np.full((3, 100, 150), 7, np.uint8))
    cmd = [sys.executable, "-m", "s5geo.cli.main", "curate", str(config_only_checkpoint),
           "--pool", str(scene), "--target", "2", "--window", "50", "--strategy", "random",
           "--out", str(tmp_path / "out")]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "selected 2 of 6 windows" in done.stdout
    rows = read_selection(tmp_path / "out" / "selection.gpkg")
    assert len(rows) == 2 and {r["width"] for r in rows} == {50}
    bad = subprocess.run([*cmd, "--overwrite", "--strategy", "entropy"], capture_output=True,
                         text=True, timeout=600)  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "error: unknown curation strategy 'entropy'; known: rs4p, random"
    ]


def potsdam_layout(root: Path, tiles: list[str]) -> None:
    """ISPRS Potsdam's distributed image folder (tiles extracted one folder deeper)."""
    folder = root / "2_Ortho_RGB" / "2_Ortho_RGB"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(2)
    for i, tile in enumerate(tiles):
        data = rng.integers(1, 255, size=(3, 96, 128), dtype=np.uint8)
        write_scene(
            folder / f"top_potsdam_{tile}_RGB.tif",
            data,
            res=0.05,
            origin=(368_000.0 + 10 * i, 5_807_000.0),
        )


def test_split_specs_resolve_through_a_benchmark_config(tmp_path: Path) -> None:
    """``split:NAME`` finds images as training does: a benchmark config's split names (no splits
    file) and split specs, for image folders and raster scenes."""
    potsdam_layout(tmp_path, ["2_10", "2_11", "2_13", "7_13"])
    over = [f"data.root={tmp_path}", "data.split_unlabeled=ids=2_10,2_11",
            "data.split_test=ids=2_13,7_13"]  # fmt: skip
    cfg = load_config(ROOT / "configs" / "data" / "potsdam.yaml", over)
    names = [p.name for p in resolve_items(["split:unlabeled"], cfg)]
    assert names == ["top_potsdam_2_10_RGB.tif", "top_potsdam_2_11_RGB.tif"]
    assert [p.name for p in resolve_items(["split:test"], cfg)] == [
        "top_potsdam_2_13_RGB.tif", "top_potsdam_7_13_RGB.tif",
    ]  # fmt: skip
    assert len(resolve_items(["split:ids=7_13", "split:ids=2_13,7_13"], cfg)) == 2  # no repeats
    raster = load_config(ROOT / "configs" / "data" / "potsdam.yaml", [*over, "data.kind=raster"])
    assert resolve_items(["split:test"], raster) == resolve_items(["split:test"], cfg)
    with pytest.raises(UserError, match="1 listed image id"):
        resolve_items(["split:ids=9_99"], cfg)


def test_random_curation_of_a_benchmark_pool(tmp_path: Path) -> None:
    """`s5geo curate` on a seed run of a benchmark config: the pool is its unlabeled split."""
    potsdam_layout(tmp_path / "potsdam", ["2_10", "2_11", "2_13"])
    cfg = load_config(
        ROOT / "configs" / "data" / "potsdam.yaml",
        [f"data.root={tmp_path / 'potsdam'}", "data.split_unlabeled=ids=2_10,2_11"],
    )
    ckpt = tmp_path / "config_only.ckpt"
    torch.save({"hyper_parameters": {"config": cfg.to_dict()}, "state_dict": {}}, ckpt)
    options = CurateOptions(target=3, window=64, strategy="random")
    report = curate(ckpt, ["split:unlabeled"], [], tmp_path / "out", options)
    assert report["pool_files"] == 2 and report["pool_windows"] == 2 * 2 * 2  # 96x128 in 64 px
    rows = read_selection(tmp_path / "out" / "selection.gpkg")
    assert len(rows) == 3
    assert {Path(str(r["scene"])).name for r in rows} <= {
        "top_potsdam_2_10_RGB.tif", "top_potsdam_2_11_RGB.tif",
    }  # fmt: skip
