"""A curated selection as S4P's unlabeled source (``data.unlabeled_selection``), on real files:
Dubai JPEG windows on their pixel grid, georeferenced scenes with nodata, and clear refusals."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import shapely
from helpers import write_scene
from PIL import Image

from s5geo.config import DataConfig, load_config
from s5geo.curate.manifest import write_selection
from s5geo.curate.pool import plan_windows
from s5geo.data.module import SegmentationDataModule, selection_source
from s5geo.data.selection import SelectedWindows, read_selection
from s5geo.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
CURATED = ROOT / "configs" / "s4p" / "dubai_cpu_curated.yaml"


@pytest.fixture
def dubai_selection(real_data: Path, tmp_path: Path) -> Path:
    """Every 256-px window of two unlabelled Dubai images (as s5geo curate plans them)."""
    images = real_data / "dubai" / "images"
    refs = [
        *plan_windows(images / "Tile3_image_part_002.jpg", 256),
        *plan_windows(images / "Tile7_image_part_009.jpg", 256),  # 1817x2061: edge-aligned
    ]
    out = tmp_path / "selection.gpkg"
    write_selection(out, refs, None, None)
    return out


def test_dubai_windows_are_read_on_the_images_pixel_grid(dubai_selection: Path) -> None:
    source = SelectedWindows(dubai_selection, [1, 2, 3], 255.0)
    assert len(source) == 9 + 72
    last = source.rows[-1]  # the window aligned to the bottom-right corner of Tile 7 part 9
    assert (last["col_off"], last["row_off"]) == (1817 - 256, 2061 - 256)
    for index in (0, 4, len(source) - 1):
        r = source.rows[index]
        sample = source[index]
        assert sample["image"].shape == (3, 256, 256) and bool(sample["valid"].all())
        # The image-folder reader decodes with PIL: the window is that image's crop at the same
        # offsets (JPEG decoders differ by rounding only), and one pixel off is far worse.
        full = np.asarray(Image.open(source.scene_paths[index]).convert("RGB"), np.float32)
        full = full.transpose(2, 0, 1) / 255.0
        got = sample["image"].numpy()
        y, x = r["row_off"], r["col_off"]
        same = np.abs(got - full[:, y : y + 256, x : x + 256]).mean()
        assert same < 1.0 / 255
        y1, x1 = (y - 1, x) if y > 0 else (y + 1, x)
        assert np.abs(got - full[:, y1 : y1 + 256, x1 : x1 + 256]).mean() > 5 * same
    rows = read_selection(dubai_selection)
    assert rows[0]["entropy"] is None and rows[0]["cluster"] is None


def test_s4p_data_module_reads_the_selection(dubai_selection: Path, tmp_path: Path) -> None:
    cfg = load_config(CURATED, [f"data.unlabeled_selection={dubai_selection}",
                                "data.crop_size=64"])  # fmt: skip
    module = SegmentationDataModule(cfg.data, "train_labeled", True, 1, 2, 0)
    loader = module.train_dataloader()
    assert isinstance(loader.dataset.unlabeled, SelectedWindows)  # type: ignore[attr-defined]
    assert len(loader.dataset.unlabeled) == 81  # type: ignore[attr-defined]
    batch = next(iter(loader))
    assert (
        batch["u_image"].shape == (2, 3, 64, 64)
        and batch["u_valid"].dtype.is_floating_point is False
    )
    # Supervised runs have no unlabeled source, and never read the selection.
    supervised = SegmentationDataModule(
        dataclasses.replace(cfg.data, unlabeled_selection=str(tmp_path / "absent.gpkg")),
        "train_labeled", False, 1, 2, 0,
    )  # fmt: skip
    assert supervised.train_dataloader().dataset.unlabeled is None  # type: ignore[attr-defined]


def test_the_curated_configs_point_at_curate_outputs() -> None:
    for name, folder in (("dubai_cpu_curated", "dubai_half"),
                         ("dubai_cpu_random_half", "dubai_random_half")):  # fmt: skip
        cfg = load_config(ROOT / "configs" / "s4p" / f"{name}.yaml")
        assert cfg.data.unlabeled_selection == f"runs/curate/{folder}/selection.gpkg"
        assert cfg.train.method == "s4p" and cfg.data.split_unlabeled == "train_unlabeled"
        assert cfg.model == load_config(ROOT / "configs" / "s4p" / "dubai_cpu.yaml").model


@pytest.mark.filterwarnings("ignore:.crs. was not provided")
def test_bad_selections_are_refused_with_one_clear_message(
    real_data: Path, dubai_selection: Path, tmp_path: Path
) -> None:
    cfg = dataclasses.replace(DataConfig(), unlabeled_selection=str(tmp_path / "absent.gpkg"))
    with pytest.raises(UserError, match="selection file not found: .*absent.gpkg"):
        selection_source(cfg)
    # Scenes that are not where the selection says.
    moved = tmp_path / "moved.gpkg"
    meta, _, geoms, fields = pyogrio.raw.read(str(dubai_selection))
    fields[0] = np.array([s.replace("/images/", "/elsewhere/") for s in fields[0]], dtype=object)
    pyogrio.raw.write(str(moved), geoms, fields, fields=list(meta["fields"]), driver="GPKG",
                      geometry_type="Polygon", layer="selection_pixel")  # fmt: skip
    with pytest.raises(UserError, match=r"2 of the 2 scenes it lists do not exist, e\.g\. .*"):
        selection_source(dataclasses.replace(cfg, unlabeled_selection=str(moved)))
    # Windows of evaluation images (Tile 2 is the val split) would leak into training.
    leak = tmp_path / "leak.gpkg"
    write_selection(leak, plan_windows(real_data / "dubai/images/Tile2_image_part_003.jpg", 256),
                    None, None)  # fmt: skip
    with pytest.raises(UserError, match="belong to the 'val' split"):
        selection_source(dataclasses.replace(cfg, unlabeled_selection=str(leak)))
    with pytest.raises(UserError, match="has 3 bands; data.bands reads"):
        SelectedWindows(dubai_selection, [1, 2, 4], 255.0)
    other = tmp_path / "other.gpkg"  # a GeoPackage, but not a selection
    pyogrio.raw.write(str(other), shapely.to_wkb([shapely.Point(0, 0)]), [np.array([1])],
                      fields=["id"], driver="GPKG", geometry_type="Point")  # fmt: skip
    with pytest.raises(UserError, match="not a selection of s5geo curate: no field scene"):
        SelectedWindows(other, [1, 2, 3], 255.0)


def test_georeferenced_scenes_keep_nodata_invalid(tmp_path: Path) -> None:
    """Raster-kind data: windows of a GeoTIFF with nodata, and the val/test leak check by scene."""
    root = tmp_path / "scenes"
    (root / "images").mkdir(parents=True)
    data = np.random.default_rng(0).integers(1, 4000, size=(4, 96, 128)).astype(np.uint16)
    data[:, :20, :30] = 0
    train = write_scene(root / "images" / "a.tif", data, nodata=0)
    val = write_scene(root / "images" / "b.tif", data, nodata=0)
    (root / "splits.json").write_text(json.dumps({"train": ["a"], "val": ["b"], "test": ["b"]}))
    sel = tmp_path / "sel.gpkg"
    write_selection(sel, plan_windows(train, 64), None, None)
    cfg = DataConfig(kind="raster", root=str(root), bands=[4, 1], input_scale=4000.0,
                     mean=[0.5, 0.5], std=[0.2, 0.2], unlabeled_selection=str(sel))  # fmt: skip
    source = selection_source(cfg)
    first = source[0]  # the top-left window: 20 rows x 30 columns of nodata
    np.testing.assert_allclose(first["image"].numpy(), data[[3, 0], :64, :64] / 4000.0)
    assert not first["valid"][:20, :30].any() and first["valid"][20:, :].all()
    assert source[0]["valid"].sum() == first["valid"].sum()  # again, from the cache
    write_selection(sel, plan_windows(val, 64), None, None)
    with pytest.raises(UserError, match="belong to the 'val' split"):
        selection_source(cfg)


def test_train_command_refuses_a_missing_selection(real_data: Path, tmp_path: Path) -> None:
    # the recipe's data root is checked before its selection: the real Dubai data must exist
    done = subprocess.run(
        [sys.executable, "-m", "s5geo.cli.main", "train", str(CURATED),
         "--set", f"data.unlabeled_selection={tmp_path / 'none.gpkg'}",
         "--set", f"train.out_dir={tmp_path}"],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )  # fmt: skip
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: data.unlabeled_selection: selection file not found:")
    assert "Traceback" not in done.stderr
