"""Windows of an unlabeled (or labelled) pool: scenes and image folders, read one at a time.

Every file is opened with rasterio, so GeoTIFF scenes and plain JPEG/PNG image folders are read
the same way. A scene is cut into ``size`` x ``size`` windows at stride ``size`` (the last row and
column aligned to the scene edge, so every pixel is covered; scenes smaller than a window give one
window). Footprints are the window bounds through the file's transform: map coordinates in the
scene's CRS for georeferenced scenes; for files without georeferencing GDAL's identity transform
gives pixel coordinates (x = column, y = row) and the CRS is None.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window, bounds

from s5geo.errors import UserError

POOL_SUFFIXES = (".tif", ".tiff", ".jpg", ".jpeg", ".png", ".vrt", ".jp2")


@dataclass(frozen=True)
class WindowRef:
    """One window of one scene, in pixels, with its footprint and the scene's CRS (or None)."""

    scene: Path
    col: int
    row: int
    width: int
    height: int
    footprint: tuple[float, float, float, float]  # left, bottom, right, top
    crs: str | None


def expand_paths(items: Sequence[str | Path]) -> list[Path]:
    """Files, folders (their image files, sorted) and globs -> a sorted, de-duplicated list."""
    found: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found += [p for p in sorted(path.iterdir()) if p.suffix.lower() in POOL_SUFFIXES]
        elif path.is_file():
            found.append(path)
        else:
            matches = (
                sorted(Path().glob(str(item)))
                if not path.is_absolute()
                else sorted(Path(path.anchor).glob(str(path.relative_to(path.anchor))))
            )
            if not matches:
                raise UserError(f"no such file, folder or glob match: {item}")
            found += [p for p in matches if p.is_file()]
    return list(dict.fromkeys(found))


def _starts(extent: int, size: int) -> list[int]:
    if extent <= size:
        return [0]
    starts = list(range(0, extent - size, size))
    return [*starts, extent - size]


def plan_windows(scene: Path, size: int) -> list[WindowRef]:
    """The windows covering ``scene``."""
    if size < 16:
        raise UserError(f"window size {size} is too small (at least 16 pixels)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        try:
            src = rasterio.open(scene)
        except rasterio.RasterioIOError as exc:
            raise UserError(f"cannot read {scene}: {exc}") from None
        with src:
            crs = src.crs.to_string() if src.crs else None
            refs = []
            for row in _starts(src.height, size):
                for col in _starts(src.width, size):
                    w, h = min(size, src.width), min(size, src.height)
                    box = bounds(Window(col, row, w, h), src.transform)
                    refs.append(WindowRef(scene, col, row, w, h, tuple(box), crs))
    return refs


def iter_windows(scenes: Sequence[Path], size: int) -> Iterator[WindowRef]:
    """Windows of every scene, scene by scene (nothing is read but the headers)."""
    for scene in scenes:
        yield from plan_windows(scene, size)


def read_window(
    ref: WindowRef, bands: Sequence[int], input_scale: float, size: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """(image [C, size, size] in 0..1, valid [size, size]): padded with invalid zeros to ``size``;
    nodata (the file's nodata value on every band) is invalid."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(ref.scene) as src:
            if max(bands) > src.count:
                raise UserError(f"{ref.scene} has {src.count} bands; the model reads {list(bands)}")
            window = Window(ref.col, ref.row, ref.width, ref.height)
            raw = src.read(list(bands), window=window).astype(np.float32)
            nodata = src.nodata
    valid = (raw != nodata).any(0) if nodata is not None else np.ones(raw.shape[1:], bool)
    image = np.zeros((len(bands), size, size), np.float32)
    mask = np.zeros((size, size), bool)
    image[:, : ref.height, : ref.width] = np.clip(raw / input_scale, 0.0, 1.0)
    mask[: ref.height, : ref.width] = valid
    return image, mask


def has_valid_pixels(ref: WindowRef, bands: Sequence[int]) -> bool:
    """Whether ``ref`` holds a valid pixel by :func:`read_window`'s rule, read only when the file
    has a nodata value (files without one are valid everywhere: nothing is decoded)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(ref.scene) as src:
            if src.nodata is None:
                return True
    _, valid = read_window(ref, bands, 1.0, max(ref.width, ref.height))
    return bool(valid.any())
