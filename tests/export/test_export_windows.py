"""``s5geo export`` reads its real windows (parity check, INT8 calibration) from the run's
validation split, found as training finds it: benchmark configs in their distributed layout work.

A tiny copy of ISPRS Potsdam's layout (the real config file, ``--set data.root=...``) has training
tiles of one grey value and test tiles (Potsdam's val = test) of another, so windows drawn from
the wrong split show.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers import write_scene

torch = pytest.importorskip("torch")

from s5geo.config import Config, DataConfig, load_config  # noqa: E402
from s5geo.datasets.splits import SplitSpec  # noqa: E402
from s5geo.export.pipeline import (  # noqa: E402
    comparison_images,
    export_checkpoint,
    model_info_for,
    real_windows,
    validation_images,
    windows_and_extent,
)
from s5geo.infer import load_model  # noqa: E402
from s5geo.models import build_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
POTSDAM = ROOT / "configs" / "data" / "potsdam.yaml"
TILE = 64
TRAIN_VALUE, TEST_VALUE = 10, 200


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def potsdam_copy(root: Path) -> Config:
    """Two training tiles and the 14 official test tiles, 48 px, images only."""
    cfg = load_config(
        POTSDAM,
        [f"data.root={root}", "model.name=vit_tiny", f"model.img_size={TILE}",
         "model.decoder_channels=16", f"train.eval_tile={TILE}",
         "data.split_labeled=ids=2_10,2_11"],
    )  # fmt: skip
    test = SplitSpec.parse(cfg.data.split_test).ids or ()
    folder = root / "2_Ortho_RGB"
    folder.mkdir(parents=True)
    for tile in ["2_10", "2_11", *test]:
        value = TEST_VALUE if tile in test else TRAIN_VALUE
        write_scene(folder / f"top_potsdam_{tile}_RGB.tif", np.full((3, 48, 48), value, np.uint8))
    return cfg


def test_windows_come_from_the_validation_split_of_a_benchmark(tmp_path: Path) -> None:
    cfg = potsdam_copy(tmp_path)
    images = validation_images(cfg)  # Potsdam's val split: the official test tiles (no splits file)
    assert len(images) == 14 and images[0].name == "top_potsdam_2_13_RGB.tif"
    raster = Config(cfg.model, DataConfig(**{**vars(cfg.data), "kind": "raster"}), cfg.train)
    assert validation_images(raster) == images

    info = model_info_for(cfg, tmp_path / "x.ckpt", TILE)
    windows = real_windows(info, images, 3)
    mean = np.asarray(cfg.data.mean, np.float32)[:, None, None]
    std = np.asarray(cfg.data.std, np.float32)[:, None, None]
    np.testing.assert_allclose(windows[:, :, :48, :48], np.broadcast_to(
        (TEST_VALUE / 255.0 - mean) / std, (3, 3, 48, 48)), rtol=1e-5)  # fmt: skip
    assert (windows[:, :, 48:, :] == 0).all()  # zero-padded past the 48 px tiles


def test_versions_are_compared_on_other_images_than_the_calibration(tmp_path: Path) -> None:
    cfg = potsdam_copy(tmp_path / "potsdam")
    calibration = validation_images(cfg)
    others, where = comparison_images(cfg, calibration)
    assert sorted(p.stem for p in others) == ["top_potsdam_2_10_RGB", "top_potsdam_2_11_RGB"]
    assert where == "real windows of training images (not the calibration images)"
    info = model_info_for(cfg, tmp_path / "x.ckpt", TILE)
    windows, inside = windows_and_extent(info, others, 3)
    assert (windows == real_windows(info, others, 3)).all()
    assert inside[:, :48, :48].all() and not inside[:, 48:].any() and not inside[:, :, 48:].any()
    # labelled and validation splits the same: the calibration images, and the line says so
    same = DataConfig(**{**vars(cfg.data), "split_labeled": cfg.data.split_val})
    assert comparison_images(Config(cfg.model, same, cfg.train), calibration) == (
        calibration, "real windows of the calibration images (the config has no others)"
    )  # fmt: skip


def test_export_of_a_benchmark_run(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    cfg = potsdam_copy(tmp_path / "potsdam")
    torch.manual_seed(0)
    net = build_model(cfg.model).eval()
    ckpt = tmp_path / "run.ckpt"
    state = {f"net.{k}": v for k, v in net.state_dict().items()}
    torch.save({"hyper_parameters": {"config": cfg.to_dict()}, "state_dict": state}, ckpt)
    out = tmp_path / "potsdam.onnx"
    lines = export_checkpoint(ckpt, out, n_windows=2, int8=True)
    assert "parity with PyTorch on 2 real windows" in lines[0]
    assert lines[1].startswith(f"{out.with_suffix('.int8.onnx')}: int8 version; classes agree")
    assert "of 2 real windows of training images (not the calibration images); network" in lines[1]
    assert "x as fast on CPU" in lines[1]
    printed = capfd.readouterr()
    assert "[torch.onnx]" not in printed.out + printed.err  # the exporter's own step lines
    info = load_model(out).info
    assert info.class_names[1] == "building" and info.bands == (1, 2, 3)


def test_aligned_scenes_keep_their_stems_split(real_data: Path) -> None:
    """``aligned`` data (pixel-aligned masks, MoE-MDF configs): the ``stems=`` of split_val."""
    data = DataConfig(
        kind="aligned", root=str(real_data / "swiss_trees"), class_map="swiss_trees",
        images_dir="images", masks_dir="masks", image_glob="*.tif", label_glob="*.tif",
        split_val="stems=1091-322_11",
    )  # fmt: skip
    assert [p.stem for p in validation_images(Config(data=data))] == ["1091-322_11"]
    rows = DataConfig(**{**vars(data), "split_val": "rows=0:60"})
    assert len(validation_images(Config(data=rows))) == 4  # a row split keeps every scene
