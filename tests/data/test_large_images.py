"""Large PNG/JPEG images in image folders are read in bounded memory.

Images above ``large_pixels`` (default 4096 x 4096) are read through rasterio/GDAL as the GeoTIFFs
are: training reads a half-overlapping grid of windows of twice the crop instead of decoding the
whole image per sample, and no Pillow decompression-bomb limit applies. They come out as Pillow's
``convert("RGB")`` gives them (grey repeated, palette looked up, alpha dropped). Smaller images
(Dubai, LoveDA) are read by Pillow exactly as before.
"""

from __future__ import annotations

import json
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from PIL import Image, ImageFile
from rasterio.errors import NotGeoreferencedWarning

from s5geo.config import load_config
from s5geo.data.image_folder import (
    LARGE_IMAGE_PIXELS,
    ImageFolderSegmentation,
    window_grid,
)
from s5geo.data.module import build_source
from s5geo.datasets.classes import get_class_map
from s5geo.datasets.splits import SplitItem
from s5geo.errors import UserError

H, W = 70, 90
WINDOW = 32
ISAID = get_class_map("isaid")
DUBAI = get_class_map("dubai")
DUBAI_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "data" / "dubai.yaml"


def rgb_image(h: int = H, w: int = W) -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def colour_label(h: int = H, w: int = W) -> np.ndarray:
    """iSAID colours: background with ship (0, 0, 63) rows and plane (0, 127, 255) columns."""
    label = np.zeros((h, w, 3), np.uint8)
    label[::5] = (0, 0, 63)
    label[:, ::7] = (0, 127, 255)
    return label


def pair(tmp_path: Path, image: Image.Image, name: str = "a.png") -> SplitItem:
    image.save(tmp_path / name)
    Image.fromarray(colour_label(image.height, image.width)).save(tmp_path / f"{name}_label.png")
    return SplitItem(Path(name).stem, tmp_path / name, tmp_path / f"{name}_label.png")


def pillow_rgb(path: Path) -> np.ndarray:
    """What the image-folder reader gives for a small image: Pillow's RGB, [3, H, W]."""
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB")).transpose(2, 0, 1).copy()


def folder(item: SplitItem, **kw: object) -> ImageFolderSegmentation:
    return ImageFolderSegmentation(Path("."), [], ISAID, items=[item], **kw)  # type: ignore[arg-type]


def test_training_reads_windows_of_large_pngs(tmp_path: Path) -> None:
    item = pair(tmp_path, Image.fromarray(rgb_image()))
    source = folder(item, window=WINDOW, large_pixels=1000)
    grid = window_grid(H, W, WINDOW)
    assert len(source) == len(grid) == 20
    whole = pillow_rgb(item.image)
    label = ISAID.encode(np.asarray(Image.open(item.mask)))  # type: ignore[arg-type]
    for i, w in enumerate(grid):
        assert w is not None
        rows = slice(w.row_off, w.row_off + w.height)
        cols = slice(w.col_off, w.col_off + w.width)
        sample = source[i]
        assert source.names[i] == f"a_r{w.row_off}_c{w.col_off}"
        assert torch.equal(
            sample["image"], torch.from_numpy(np.ascontiguousarray(whole[:, rows, cols]))
        )
        assert torch.equal(sample["mask"], torch.from_numpy(label[rows, cols].astype(np.int64)))
        assert "valid" not in sample  # PNGs declare no nodata, as with Pillow


@pytest.mark.parametrize("mode", ["RGB", "L", "P", "RGBA", "LA"])
def test_large_images_read_as_pillow_converts_them(tmp_path: Path, mode: str) -> None:
    image = Image.fromarray(rgb_image())
    image = image.quantize(40) if mode == "P" else image.convert(mode)
    item = pair(tmp_path, image)
    small = folder(item)[0]  # Pillow
    large = folder(item, large_pixels=1000)[0]  # rasterio, whole image (evaluation)
    assert torch.equal(large["image"], small["image"])
    assert torch.equal(large["image"], torch.from_numpy(pillow_rgb(item.image)))
    assert torch.equal(large["mask"], small["mask"])
    picked = folder(item, bands=[3, 1], large_pixels=1000)[0]["image"]
    assert torch.equal(picked, small["image"][[2, 0]])


def test_default_threshold_keeps_big_pngs_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 4160 x 4200 PNG (above 4096 x 4096) is read window by window: Pillow never decodes it
    and a training sample allocates a small part of the 52 MB image."""
    h, w = 4160, 4200
    assert h * w > LARGE_IMAGE_PIXELS
    array = np.zeros((h, w, 3), np.uint8)
    array[:, :, 0] = (np.arange(w) % 251).astype(np.uint8)[None]
    array[:, :, 1] = (np.arange(h) % 241).astype(np.uint8)[:, None]
    item = pair(tmp_path, Image.fromarray(array))
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("Pillow decoded"))
    source = folder(item, window=512)
    assert len(source) == len(window_grid(h, w, 512))
    last = len(source) - 1  # bottom-right: GDAL decodes the PNG rows above it, one at a time
    tracemalloc.start()
    sample = source[last]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert sample["image"].shape == (3, 512, 512)
    assert peak < 8 * 2**20, peak  # whole-image decoding allocated > 3 x 52 MB
    expected = array[h - 512 :, w - 512 :].transpose(2, 0, 1)
    assert torch.equal(sample["image"], torch.from_numpy(np.ascontiguousarray(expected)))


def test_pillow_decompression_bomb_limit_does_not_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    item = pair(tmp_path, Image.fromarray(rgb_image()))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow refuses > 2000 pixels
    with pytest.raises(Image.DecompressionBombError):
        Image.open(item.image)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither Pillow's nor rasterio's warnings
        train = folder(item, window=WINDOW)
        assert len(train) == 20
        whole = folder(item)[0]
        train[0]
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    assert torch.equal(whole["image"], torch.from_numpy(pillow_rgb(item.image)))


def test_large_jpeg_is_decoded_by_gdal_as_deployment_reads_it(tmp_path: Path) -> None:
    item = pair(tmp_path, Image.fromarray(rgb_image()), "a.jpg")
    sample = folder(item, large_pixels=1000)[0]["image"].numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(item.image) as src:
            assert np.array_equal(sample, src.read())  # s5geo predict/evaluate read it this way


def test_large_16_bit_png_is_refused(tmp_path: Path) -> None:
    image = Image.fromarray(np.arange(H * W, dtype=np.uint16).reshape(H, W) * 7)
    item = pair(tmp_path, image)
    with pytest.raises(UserError, match="uint16.*8-bit"):
        folder(item, large_pixels=1000)[0]


def test_dubai_images_stay_on_pillow() -> None:
    """The Dubai configs (2149 x 1479 JPEGs at most) read whole images by Pillow, as before."""
    cfg = load_config(DUBAI_CONFIG).data
    root = cfg.resolved_root()
    if not (root / cfg.splits_file).is_file():
        pytest.skip(f"Dubai data not found at {root} (set S5GEO_DATA)")
    names = json.loads((root / cfg.splits_file).read_text())[cfg.split_labeled]
    source = build_source(cfg, cfg.split_labeled, for_training=True)
    assert len(source) == len(names)  # type: ignore[arg-type]  # one sample per image
    assert source.windows == [None] * len(names)  # type: ignore[attr-defined]
    for i in (0, len(names) - 1):
        sample = source[i]
        path = source.image_paths[i]  # type: ignore[attr-defined]
        assert torch.equal(sample["image"], torch.from_numpy(pillow_rgb(path).copy()))
        with Image.open(source.mask_paths[i]) as mask:  # type: ignore[attr-defined]
            expected = DUBAI.encode(np.asarray(mask)).astype(np.int64)
        assert torch.equal(sample["mask"], torch.from_numpy(expected))


def test_isaid_config_reads_large_pngs_in_windows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """configs/data/isaid.yaml with a large image (threshold lowered): windows in training,
    the whole image for validation."""
    import s5geo.data.image_folder as image_folder

    (tmp_path / "train" / "images").mkdir(parents=True)
    (tmp_path / "train" / "Semantic_masks" / "images").mkdir(parents=True)
    Image.fromarray(rgb_image()).save(tmp_path / "train" / "images" / "P0000.png")
    Image.fromarray(colour_label()).save(
        tmp_path / "train" / "Semantic_masks" / "images" / "P0000_instance_color_RGB.png"
    )
    cfg = load_config(
        DUBAI_CONFIG.parent / "isaid.yaml",
        [f"data.root={tmp_path}", f"data.crop_size={WINDOW // 2}"],
    ).data
    assert len(build_source(cfg, "dir=train", for_training=True)) == 1  # type: ignore[arg-type]
    monkeypatch.setattr(image_folder, "LARGE_IMAGE_PIXELS", 1000)
    train = build_source(cfg, "dir=train", for_training=True)
    val = build_source(cfg, "dir=train")
    assert len(train) == 20 and len(val) == 1  # type: ignore[arg-type]
    assert val[0]["image"].shape == (3, H, W)
    assert torch.equal(train[0]["image"], val[0]["image"][:, :WINDOW, :WINDOW])
