"""The benchmark configs read tiny synthetic copies of each benchmark's distributed layout.

Every copy uses the real folder and file names, label encodings and (for Potsdam, Vaihingen and
OpenEarthMap) georeferenced GeoTIFFs; it is loaded with the real file in configs/data/ plus
``--set data.root=...``, through the data module the trainer uses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from PIL import Image
from rasterio.transform import from_origin

from s5geo.config import Config, load_config
from s5geo.data.module import SegmentationDataModule, build_source, split_files
from s5geo.datasets.classes import get_class_map
from s5geo.datasets.splits import SplitSpec, split_pairs
from s5geo.errors import UserError

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "data"
CROP = 16  # small crops keep the file fast; training windows are 2 * CROP

WHITE, BLUE, CYAN, GREEN, YELLOW, RED, BLACK = (
    (255, 255, 255), (0, 0, 255), (0, 255, 255), (0, 255, 0), (255, 255, 0), (255, 0, 0),
    (0, 0, 0),
)  # fmt: skip


def write_tif(path: Path, data: np.ndarray, crs: str = "EPSG:32633", x0: float = 368_000.0) -> None:
    """A georeferenced uint8 GeoTIFF of ``data`` [C, H, W] (5 cm pixels)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    c, h, w = data.shape
    with rasterio.open(
        path, "w", driver="GTiff", width=w, height=h, count=c, dtype="uint8", crs=crs,
        transform=from_origin(x0, 5_807_000.0, 0.05, 0.05),
    ) as dst:  # fmt: skip
        dst.write(data)


def isprs_label(size: int) -> np.ndarray:
    """Colour-coded ISPRS label [3, H, W]: impervious everywhere, then known patches of
    building (rows 0-3), car (4-5), clutter (6-7) and the eroded boundary's black (8)."""
    label = np.empty((size, size, 3), np.uint8)
    label[:] = WHITE
    label[0:4, 0:4] = BLUE
    label[4:6, 0:4] = YELLOW
    label[6:8, 0:4] = RED
    label[8, :] = BLACK
    label[10:12, 0:4] = CYAN
    label[12:14, 0:4] = GREEN
    return np.moveaxis(label, -1, 0)


def check_isprs_mask(mask: torch.Tensor) -> None:
    assert (mask[0:4, 0:4] == 1).all()  # building
    assert (mask[4:6, 0:4] == 4).all()  # car
    assert (mask[6:8, 0:4] == 255).all()  # clutter: ignored
    assert (mask[8, :] == 255).all()  # eroded boundary: ignored
    assert (mask[10:12, 0:4] == 2).all() and (mask[12:14, 0:4] == 3).all()
    assert (mask[0:4, 8:] == 0).all()  # impervious surface


def benchmark(name: str, root: Path, *overrides: str) -> Config:
    return load_config(CONFIGS / f"{name}.yaml", [f"data.root={root}", *overrides])


def split_ids(spec: str) -> list[str]:
    ids = SplitSpec.parse(spec).ids
    assert ids is not None
    return list(ids)


def counts(cfg: Config) -> dict[str, int]:
    d = cfg.data
    return {
        "train": len(build_source(d, d.split_labeled)),  # type: ignore[arg-type]
        "unlabeled": len(build_source(d, d.split_unlabeled, with_masks=False)),  # type: ignore[arg-type]
        "val": len(build_source(d, d.split_val)),  # type: ignore[arg-type]
        "test": len(build_source(d, d.split_test)),  # type: ignore[arg-type]
    }


def check_model_and_training_batch(cfg: Config, bands: int = 3) -> None:
    """model.num_classes matches the class map, and the data module yields S4P batches."""
    assert cfg.model.num_classes == get_class_map(cfg.data.class_map).num_classes
    module = SegmentationDataModule(cfg.data, cfg.data.split_labeled, True, 2, 2, 0)
    batch = next(iter(module.train_dataloader()))
    assert batch["image"].shape == (2, bands, CROP, CROP)
    assert batch["u_image"].shape == (2, bands, CROP, CROP)
    assert set(batch["mask"].unique().tolist()) <= set(range(cfg.model.num_classes)) | {255}
    val = next(iter(module.val_dataloader()))
    assert val["image"].dtype == torch.uint8 and val["image"].shape[1] == bands


def test_potsdam_official_layout(tmp_path: Path) -> None:
    torchgeo = pytest.importorskip("torchgeo.datasets")
    cfg = benchmark("potsdam", tmp_path, f"data.crop_size={CROP}")
    train, test = split_ids(cfg.data.split_labeled), split_ids(cfg.data.split_test)
    official = {k: {n.removeprefix("top_potsdam_") for n in v}
                for k, v in torchgeo.Potsdam2D.splits.items()}  # fmt: skip
    assert (set(train), set(test)) == (official["train"], official["test"])
    assert cfg.data.split_val == cfg.data.split_test  # no official validation tiles
    rng = np.random.default_rng(0)
    for tile in train + test:
        # As some unzip tools leave them: 2_Ortho_RGB/2_Ortho_RGB/*.tif (found by **/).
        image = rng.integers(0, 256, (3, 48, 48), dtype=np.uint8)
        write_tif(tmp_path / "2_Ortho_RGB" / "2_Ortho_RGB" / f"top_potsdam_{tile}_RGB.tif", image)
        write_tif(tmp_path / "5_Labels_all_noBoundary" / f"top_potsdam_{tile}_label_noBoundary.tif",
                  isprs_label(48))  # fmt: skip
    (tmp_path / "2_Ortho_RGB" / "2_Ortho_RGB" / "top_potsdam_2_10_RGB.tfw").write_text("0.05\n")

    assert counts(cfg) == {"train": 24, "unlabeled": 24, "val": 14, "test": 14}
    assert len(build_source(cfg.data, "test")) == 14  # type: ignore[arg-type]  # evaluate --split
    pairs = split_pairs(cfg.data, cfg.data.split_test)
    assert pairs[0][0].name == "top_potsdam_2_13_RGB.tif"
    assert pairs[0][1].name == "top_potsdam_2_13_label_noBoundary.tif"
    sample = build_source(cfg.data, "ids=2_13")[0]
    check_isprs_mask(sample["mask"])
    assert sample["image"].shape == (3, 48, 48)  # evaluation: whole tiles
    # Training reads half-overlapping windows of 2 * crop: 2 x 2 per 48 px tile.
    windows = build_source(cfg.data, "ids=2_13", for_training=True)
    assert len(windows) == 4  # type: ignore[arg-type]
    assert windows[3]["image"].shape == (3, 32, 32)
    assert torch.equal(windows[0]["mask"], sample["mask"][:32, :32])
    check_model_and_training_batch(cfg)


def test_potsdam_rgbir_and_full_labels(tmp_path: Path) -> None:
    """The documented overrides: 4_Ortho_RGBIR with 4 bands, 5_Labels_all (with boundaries)."""
    cfg = benchmark(
        "potsdam", tmp_path, "data.images_dir=4_Ortho_RGBIR",
        "data.image_glob=**/top_potsdam_*_RGBIR.tif", "data.bands=[1,2,3,4]",
        "data.masks_dir=5_Labels_all", "data.label_glob=**/top_potsdam_*_label.tif",
        "data.split_test=ids=2_13",
    )  # fmt: skip
    image = np.arange(4 * 16 * 16, dtype=np.uint16).reshape(4, 16, 16).astype(np.uint8)
    write_tif(tmp_path / "4_Ortho_RGBIR" / "top_potsdam_2_13_RGBIR.tif", image)
    write_tif(tmp_path / "5_Labels_all" / "top_potsdam_2_13_label.tif", isprs_label(16))
    sample = build_source(cfg.data, cfg.data.split_test)[0]
    assert torch.equal(sample["image"], torch.from_numpy(image))
    check_isprs_mask(sample["mask"])


def test_vaihingen_official_layout(tmp_path: Path) -> None:
    torchgeo = pytest.importorskip("torchgeo.datasets")
    cfg = benchmark("vaihingen", tmp_path, f"data.crop_size={CROP}")
    train, test = split_ids(cfg.data.split_labeled), split_ids(cfg.data.split_test)
    official = {k: {n.removeprefix("top_mosaic_09cm_").removesuffix(".tif") for n in v}
                for k, v in torchgeo.Vaihingen2D.splits.items()}  # fmt: skip
    assert (set(train), set(test)) == (official["train"], official["test"])
    gts = tmp_path / "ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE"
    for area in train + test:
        write_tif(
            tmp_path / "top" / f"top_mosaic_09cm_{area}.tif", np.full((3, 20, 24), 7, np.uint8)
        )
        write_tif(gts / f"top_mosaic_09cm_{area}_noBoundary.tif", isprs_label(24)[:, :20])
    assert counts(cfg) == {"train": 16, "unlabeled": 16, "val": 17, "test": 17}
    check_isprs_mask(build_source(cfg.data, "ids=area38")[0]["mask"])
    check_model_and_training_batch(cfg)

    # gts_for_participants (training labels only): training reads, the test split says why not.
    cfg = benchmark("vaihingen", tmp_path, "data.masks_dir=gts_for_participants",
                    "data.label_glob=**/top_mosaic_09cm_*.tif")  # fmt: skip
    for area in train:
        write_tif(
            tmp_path / "gts_for_participants" / f"top_mosaic_09cm_{area}.tif",
            isprs_label(24)[:, :20],
        )
    assert len(build_source(cfg.data, cfg.data.split_labeled)) == 16  # type: ignore[arg-type]
    with pytest.raises(UserError, match="17 of the 17 images of split .* have no label"):
        build_source(cfg.data, cfg.data.split_test)


def write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_loveda_official_layout(tmp_path: Path) -> None:
    cfg = benchmark("loveda", tmp_path, f"data.crop_size={CROP}")
    rng = np.random.default_rng(1)
    files = {"Train/Urban": [1366, 1367], "Train/Rural": [0], "Val/Urban": [3514],
             "Val/Rural": [2522], "Test/Urban": [4191]}  # fmt: skip
    for folder, stems in files.items():
        for stem in stems:
            write_png(tmp_path / folder / "images_png" / f"{stem}.png",
                      rng.integers(0, 256, (24, 24, 3), dtype=np.uint8))  # fmt: skip
            if not folder.startswith("Test"):  # LoveDA withholds the test masks
                mask = np.tile(np.arange(8, dtype=np.uint8), (24, 3))  # values 0..7 by column
                write_png(tmp_path / folder / "masks_png" / f"{stem}.png", mask)
    assert counts(cfg) == {"train": 3, "unlabeled": 3, "val": 2, "test": 2}
    mask = build_source(cfg.data, cfg.data.split_val)[0]["mask"]
    assert mask[0, :8].tolist() == [255, 0, 1, 2, 3, 4, 5, 6]  # 0 = no-data; 1..7 -> 0..6
    urban = build_source(cfg.data, "dir=Train/Urban")
    assert urban.names == ["Train_Urban_1366", "Train_Urban_1367"]  # type: ignore[attr-defined]
    assert len(build_source(cfg.data, "dir=Test", with_masks=False)) == 1  # type: ignore[arg-type]
    check_model_and_training_batch(cfg)


def test_openearthmap_official_layout(tmp_path: Path) -> None:
    cfg = benchmark("openearthmap", tmp_path, f"data.crop_size={CROP}")
    regions = {"aachen": ("EPSG:32632", 3), "tokyo": ("EPSG:32654", 3)}
    for region, (crs, n) in regions.items():
        for i in range(1, n + 1):
            name = f"{region}_{i}.tif"
            write_tif(
                tmp_path / region / "images" / name, np.full((3, 20, 20), 50 * i, np.uint8), crs
            )
            if not (region == "tokyo" and i == 3):  # the test image: labels withheld
                label = np.tile(np.arange(9, dtype=np.uint8), (20, 3))[:, :20]  # 0..8 by column
                write_tif(tmp_path / region / "labels" / name, label[None], crs)
    # The lists name an xBD image that is distributed separately: skipped, as OEM's code does.
    (tmp_path / "train.txt").write_text("aachen_1.tif\naachen_2.tif\ntokyo_1.tif\npalu_7.tif\n")
    (tmp_path / "val.txt").write_text("aachen_3.tif\ntokyo_2.tif\n")
    (tmp_path / "test.txt").write_text("tokyo_3.tif\n")

    assert counts(cfg) == {"train": 3, "unlabeled": 3, "val": 2, "test": 2}
    sample = build_source(cfg.data, cfg.data.split_val)[0]
    assert sample["mask"][0, :9].tolist() == [255, 1, 2, 3, 4, 5, 6, 7, 8]  # 0 = unknown
    assert int(sample["image"][0, 0, 0]) == 150  # aachen_3
    assert [p.name for p in split_files(cfg.data, "list=test.txt")] == ["tokyo_3.tif"]
    with pytest.raises(UserError, match="withholds these labels"):
        build_source(cfg.data, "list=test.txt")
    check_model_and_training_batch(cfg)


def test_isprs_geotiffs_as_raster_scenes(tmp_path: Path) -> None:
    """kind: raster (torchgeo) reads the same files by their georeferencing: split specs select
    scenes and colour-coded label rasters are decoded by the class map."""
    cfg = benchmark("potsdam", tmp_path, "data.kind=raster", "data.crop_size=8",
                    "data.split_test=ids=2_13,2_14")  # fmt: skip
    for i, tile in enumerate(["2_13", "2_14", "3_13"]):
        x0 = 368_000.0 + i * 100
        image = np.full((3, 16, 16), 100, np.uint8)
        write_tif(tmp_path / "2_Ortho_RGB" / f"top_potsdam_{tile}_RGB.tif", image, x0=x0)
        write_tif(tmp_path / "5_Labels_all_noBoundary" / f"top_potsdam_{tile}_label_noBoundary.tif",
                  isprs_label(16), x0=x0)  # fmt: skip
    windows = build_source(cfg.data, cfg.data.split_test)
    assert len(windows) == 8  # type: ignore[arg-type]  # 2 scenes x 2 x 2 windows of 8 px
    masks = torch.stack([windows[i]["mask"] for i in range(8)])
    assert set(masks.unique().tolist()) == {0, 1, 2, 3, 4, 255}
    assert int((masks == 1).sum()) == 2 * 16  # the 4 x 4 building patch of each scene


def test_split_specs_are_checked(tmp_path: Path) -> None:
    cfg = benchmark("potsdam", tmp_path)
    write_tif(tmp_path / "2_Ortho_RGB" / "top_potsdam_2_13_RGB.tif", np.zeros((3, 4, 4), np.uint8))
    with pytest.raises(UserError, match="1 listed image id"):
        build_source(cfg.data, "ids=2_13,9_99", with_masks=False)
    with pytest.raises(UserError, match="expected 'all' or key=value"):
        build_source(cfg.data, "tiles=2_13")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no image matches"):
        build_source(benchmark("loveda", tmp_path / "empty").data, "dir=Train")
