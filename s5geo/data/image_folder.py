"""Image/label pairs read on their pixel grid: Dubai and the benchmarks in their own layouts.

Source of the Dubai set: "Semantic segmentation of aerial imagery", Humans in the Loop with MBRSC
satellite imagery, listed as CC0. 72 RGB JPEG images of Dubai in 8 Tiles with dense masks of 5
classes (building, land, road, vegetation, water) and 255 for unlabeled pixels. The protocol
(``splits.json``) keeps whole Tiles apart: train 1,3-7 (12 labeled ``_001``/``_005`` images, 42
unlabeled), val Tile 2, test Tile 8.

The benchmarks (ISPRS Potsdam and Vaihingen, LoveDA, OpenEarthMap; configs/data/, docs/DATA.md)
are read from the folders they are distributed in: images and labels are paired by file name
pattern and splits come from tile ids, folders or the benchmark's file lists
(:mod:`s5geo.datasets.splits`). Labels are decoded by the dataset's class map (colour-coded ISPRS
labels, LoveDA's 0 = no-data offset). torchgeo's ``Potsdam2D``/``Vaihingen2D``/``LoveDA`` are not
used directly: they expect one fixed layout each (Potsdam: ``4_Ortho_RGBIR`` with labels at the
root, no ``noBoundary`` labels), return float images with raw class codes (ISPRS clutter as class
0), and torchgeo has no OpenEarthMap; their official split lists are what configs/data/ uses.

Pairs are read on their pixel grid, also when the files are GeoTIFFs: a label is pixel-aligned
with its image by construction, and OpenEarthMap's regions lie in many different CRSs that a
torchgeo ``GeoDataset`` would reproject into one. The samples have no ``bounds`` and the dataset
says so with ``georeferenced = False``.

GeoTIFFs are read with rasterio (any band count, ``data.bands``), other images with Pillow. For
training, GeoTIFFs larger than twice the crop are read as a grid of windows of that size, half
overlapping, instead of whole (a 6000 x 6000 Potsdam tile is not decoded per sample); evaluation
reads whole images. Decoded samples are cached in memory up to ``cache_bytes``.

PNG/JPEG images larger than :data:`LARGE_IMAGE_PIXELS` (4096 x 4096; iSAID's DOTA images reach
~13000 px), or larger than Pillow's decompression-bomb limit, are read through rasterio/GDAL like
the GeoTIFFs (windows for training, without georeferencing and without its warning), as Pillow's
``convert("RGB")`` would give them: grey repeated to three bands, a palette looked up, alpha
dropped; ``data.bands`` then picks from R, G, B. GDAL decodes a PNG/JPEG window from the image's
first row down to the window's last one, one row at a time, so memory stays bounded by a window
and time by about the image's decoding (docs/DATA.md gives measurements). Smaller images (Dubai's
2149 x 1479 JPEGs at most, LoveDA) are read whole by Pillow as before.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio
import torch
from PIL import Image
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window
from torchgeo.datasets import NonGeoDataset

from s5geo.datasets.classes import ClassMap
from s5geo.datasets.splits import SplitItem, find_image, split_items
from s5geo.errors import UserError

TIFF_SUFFIXES = (".tif", ".tiff")
DEFAULT_CACHE_BYTES = 2**30
# PNG/JPEG images with more pixels than this are read through rasterio in windows (see above).
LARGE_IMAGE_PIXELS = 4096 * 4096


def _is_tiff(path: Path) -> bool:
    return path.suffix.lower() in TIFF_SUFFIXES


def _open(path: Path) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        return rasterio.open(path)


def _pixel_size(path: Path) -> tuple[int, int, bool]:
    """``(height, width, pillow_reads_it)`` from the file's header, without decoding pixels.

    ``pillow_reads_it`` is False for GeoTIFFs and for images beyond Pillow's decompression-bomb
    limit (which Pillow refuses to open).
    """
    if not _is_tiff(path):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(path) as img:
                    return img.height, img.width, True
        except Image.DecompressionBombError:
            pass
    with _open(path) as src:
        return src.height, src.width, False


def _read_rgb(path: Path, window: Window | None) -> npt.NDArray[np.uint8]:
    """A PNG/JPEG (window) read through GDAL as uint8 ``[3, H, W]``, as Pillow's
    ``convert("RGB")`` gives it: grey (+ alpha) repeated, a palette looked up, alpha dropped."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with _open(path) as src:
            if src.dtypes[0] != "uint8":
                raise UserError(
                    f"{path} is {src.dtypes[0]}; image folders read 8-bit imagery "
                    "(use data.kind: raster for other data types)"
                )
            if src.count >= 3:
                return np.asarray(src.read([1, 2, 3], window=window))
            band = np.asarray(src.read(1, window=window))
            try:
                colormap = src.colormap(1)
            except ValueError:  # no palette
                colormap = None
    if colormap:
        lut = np.zeros((256, 3), np.uint8)
        for value, rgba in colormap.items():
            if 0 <= value < 256:
                lut[value] = rgba[:3]
        return np.ascontiguousarray(np.moveaxis(lut[band], -1, 0))
    return np.repeat(band[None], 3, axis=0)


def window_grid(height: int, width: int, size: int) -> list[Window | None]:
    """Windows of ``size`` px with stride ``size // 2``, the last row/column on the edge;
    ``[None]`` (the whole image) when the image is not larger than ``size``."""
    if height <= size and width <= size:
        return [None]

    def starts(length: int) -> list[int]:
        if length <= size:
            return [0]
        stride = max(1, size // 2)
        out = list(range(0, length - size + 1, stride))
        return out if out[-1] == length - size else [*out, length - size]

    return [
        Window(left, top, min(size, width), min(size, height))
        for top in starts(height)
        for left in starts(width)
    ]


class ImageFolderSegmentation(NonGeoDataset):
    """Images and (optionally) label masks; one sample per image, or per window for training.

    ``with_masks=False`` makes an unlabeled source: samples carry no ``mask``, so labels of the
    unlabeled split cannot leak into semi-supervised training. ``names`` holds one file-name-safe
    name per sample.
    """

    georeferenced = False

    def __init__(
        self,
        root: Path,
        names: list[str],
        class_map: ClassMap,
        images_dir: str = "images",
        masks_dir: str = "masks",
        with_masks: bool = True,
        *,
        items: list[SplitItem] | None = None,
        bands: list[int] | None = None,
        window: int | None = None,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        large_pixels: int | None = None,
    ) -> None:
        """Images ``names`` (stems) of ``root/images_dir`` with masks of the same stem in
        ``root/masks_dir``; or, with ``items``, those image/label pairs (``names`` unused).

        ``bands``: 1-based bands to read (None: RGB for Pillow images, all bands of GeoTIFFs).
        ``window``: read GeoTIFFs larger than this as a half-overlapping grid of windows.
        ``large_pixels``: PNG/JPEG images with more pixels (default :data:`LARGE_IMAGE_PIXELS`)
        are read through rasterio, in windows like GeoTIFFs when ``window`` is given.
        """
        self.root = Path(root)
        self.class_map = class_map
        self.with_masks = with_masks
        self.bands = list(bands) if bands is not None else None
        if items is None:
            items = [
                SplitItem(
                    n,
                    find_image(self.root / images_dir, n),
                    find_image(self.root / masks_dir, n) if with_masks else None,
                )
                for n in names
            ]
        if with_masks and any(i.mask is None for i in items):
            raise UserError("a labeled image folder needs a mask for every image")
        self.image_paths: list[Path] = []
        self.mask_paths: list[Path] = []
        self.names: list[str] = []
        self.windows: list[Window | None] = []
        # Per sample: read through rasterio although not a GeoTIFF (a large PNG/JPEG).
        self.large: list[bool] = []
        limit = LARGE_IMAGE_PIXELS if large_pixels is None else large_pixels
        for item in items:
            grid: list[Window | None] = [None]
            large = False
            if _is_tiff(item.image):
                if window is not None:
                    height, width, _ = _pixel_size(item.image)
                    grid = window_grid(height, width, window)
            else:
                height, width, by_pillow = _pixel_size(item.image)
                large = height * width > limit or not by_pillow
                if large and window is not None:
                    grid = window_grid(height, width, window)
            for w in grid:
                name = item.id.replace("/", "_")
                self.names.append(name if w is None else f"{name}_r{w.row_off}_c{w.col_off}")
                self.image_paths.append(item.image)
                if with_masks and item.mask is not None:
                    self.mask_paths.append(item.mask)
                self.windows.append(w)
                self.large.append(large)
        self.cache_bytes = cache_bytes
        self._cached_bytes = 0
        self._cache: dict[int, dict[str, torch.Tensor]] = {}

    @classmethod
    def from_config(
        cls,
        cfg: Any,
        split: str,
        class_map: ClassMap,
        with_masks: bool = True,
        for_training: bool = False,
    ) -> ImageFolderSegmentation:
        """The images of ``split`` of an ``image_folder`` data config (DataConfig)."""
        items = split_items(cfg, split, with_masks=with_masks)
        return cls(
            cfg.resolved_root(),
            [i.id for i in items],
            class_map,
            cfg.images_dir,
            cfg.masks_dir,
            with_masks=with_masks,
            items=items,
            bands=list(cfg.bands),
            window=2 * cfg.crop_size if for_training else None,
        )

    def __len__(self) -> int:
        return len(self.names)

    def _read_image(
        self, path: Path, window: Window | None, large: bool = False
    ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.bool_] | None]:
        """uint8 ``[C, H, W]`` and, when the file declares nodata, the valid pixels.

        ``large``: a PNG/JPEG read through rasterio (window or whole), as Pillow converts it.
        """
        if large and not _is_tiff(path):
            rgb = _read_rgb(path, window)
            if self.bands is not None and self.bands != [1, 2, 3]:
                if max(self.bands) > 3:
                    raise UserError(f"{path} has 3 bands; data.bands asks for {self.bands}")
                rgb = rgb[[b - 1 for b in self.bands]]
            return np.ascontiguousarray(rgb), None
        if _is_tiff(path):
            with _open(path) as src:
                bands = self.bands or list(range(1, src.count + 1))
                if max(bands) > src.count:
                    raise UserError(f"{path} has {src.count} bands; data.bands asks for {bands}")
                if src.dtypes[0] != "uint8":
                    raise UserError(
                        f"{path} is {src.dtypes[0]}; image folders read 8-bit imagery "
                        "(use data.kind: raster for other data types)"
                    )
                raw = src.read(bands, window=window)
                nodata = src.nodata
            valid = (raw != nodata).any(0) if nodata is not None else None
            return raw, valid
        with Image.open(path) as img:
            rgb = np.asarray(img.convert("RGB"))
        if self.bands is not None and self.bands != [1, 2, 3]:
            if max(self.bands) > 3:
                raise UserError(f"{path} has 3 bands; data.bands asks for {self.bands}")
            rgb = rgb[..., [b - 1 for b in self.bands]]
        array = np.ascontiguousarray(rgb.transpose(2, 0, 1))
        if window is not None:
            array = array[:, window.row_off : window.row_off + window.height,
                          window.col_off : window.col_off + window.width]  # fmt: skip
        return array, None

    @staticmethod
    def _read_mask(path: Path, window: Window | None, large: bool = False) -> npt.NDArray[Any]:
        """Raw label values ``[H, W]`` or colours ``[H, W, 3]``; through rasterio for GeoTIFFs
        and for the labels of large images (``large``)."""
        if _is_tiff(path) or large:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                with _open(path) as src:
                    if src.count >= 3:
                        return np.moveaxis(src.read([1, 2, 3], window=window), 0, -1)
                    return np.asarray(src.read(1, window=window))
        with Image.open(path) as img:
            raw = np.asarray(img)
        if window is not None:
            raw = raw[window.row_off : window.row_off + window.height,
                      window.col_off : window.col_off + window.width]  # fmt: skip
        return raw

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        """``image`` uint8 ``[C, H, W]``, ``mask`` int64 ``[H, W]`` (255 ignore) when labeled,
        ``valid`` bool ``[H, W]`` when the image file declares a nodata value."""
        if index not in self._cache:
            sample = self._load(index)
            size = sum(t.numel() * t.element_size() for t in sample.values())
            if self._cached_bytes + size > self.cache_bytes:
                return self._out(sample)
            self._cache[index] = sample
            self._cached_bytes += size
        return self._out(self._cache[index])

    @staticmethod
    def _out(sample: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = dict(sample)
        if "mask" in out:
            out["mask"] = out["mask"].long()  # cached as uint8 class ids, served as int64
        return out

    def _load(self, index: int) -> dict[str, torch.Tensor]:
        window = self.windows[index]
        large = self.large[index]
        image, valid = self._read_image(self.image_paths[index], window, large)
        sample = {"image": torch.from_numpy(np.ascontiguousarray(image))}
        if valid is not None:
            sample["valid"] = torch.from_numpy(valid)
        if self.with_masks:
            raw = self._read_mask(self.mask_paths[index], window, large)
            mask = self.class_map.encode(raw)
            if mask.shape != image.shape[1:]:
                raise UserError(f"{self.mask_paths[index]} differs in size from its image")
            if valid is not None:
                mask = np.where(valid, mask, self.class_map.ignore_index)
            sample["mask"] = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.uint8))
        return sample
