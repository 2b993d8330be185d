"""A curated selection (``s5geo curate``'s ``selection.gpkg``) read as an unlabeled training source.

The file format belongs to the data layer, so both sides import it from here: ``s5geo.curate``
writes it (:func:`s5geo.curate.manifest.write_selection`) and the S4P data module reads it
(``data.unlabeled_selection``) without the data layer importing the curation package.

A selection is a GeoPackage with one polygon per window, one layer per CRS (``selection`` or
``selection_<crs>``; files without georeferencing in ``selection_pixel``, pixel coordinates, no
CRS). Fields: ``scene`` (path of the file), ``col_off``, ``row_off``, ``width``, ``height`` (the
window in the file's pixels), ``entropy`` and ``cluster`` (the seed model's scores; NULL when the
windows were drawn at random without scoring) and ``rank`` (order of acceptance). Windows are
always read by their pixel offsets, never by their footprint, so a file's own pixel grid is used
whether or not it is georeferenced.

:class:`SelectedWindows` yields samples like :class:`s5geo.data.raster.GeoWindows` does for
unlabeled scenes: ``image`` float [C, h, w] in 0..1 (raw / ``input_scale``, the listed 1-based
bands) and ``valid`` (False where every band equals the file's nodata value). The weak/strong views
(:class:`s5geo.data.views.ViewStream`) crop them as usual.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio
import torch
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window
from torch.utils.data import Dataset

from s5geo.errors import UserError

SELECTION_FIELDS = ("scene", "col_off", "row_off", "width", "height", "entropy", "cluster", "rank")
REQUIRED_FIELDS = ("scene", "col_off", "row_off", "width", "height", "rank")
_INT_FIELDS = ("col_off", "row_off", "width", "height", "rank")
DEFAULT_CACHE_BYTES = 256 * 2**20


def _plain(value: Any) -> Any:
    """numpy scalar -> Python; NaN (how pyogrio returns NULL numbers) -> None."""
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def read_selection(path: Path) -> list[dict[str, Any]]:
    """The windows of a selection file as dicts (scene, col_off, row_off, width, height, entropy,
    cluster, rank), every layer, in rank order; NULL entropy/cluster come back as None."""
    import pyogrio
    import pyogrio.raw

    path = Path(path)
    if not path.is_file():
        raise UserError(f"selection file not found: {path}")
    try:
        layers = [str(name) for name, _ in pyogrio.list_layers(str(path))]
    except Exception as exc:  # not a GeoPackage / not readable by GDAL
        raise UserError(f"{path} is not a selection GeoPackage: {exc}") from None
    rows: list[dict[str, Any]] = []
    for layer in layers:
        meta, _, _, fields = pyogrio.raw.read(str(path), layer=layer, read_geometry=False)
        names = [str(n) for n in meta["fields"]]
        missing = [f for f in REQUIRED_FIELDS if f not in names]
        if missing:
            raise UserError(
                f"{path} (layer {layer}) is not a selection of s5geo curate: "
                f"no field {', '.join(missing)}"
            )
        for values in zip(*fields, strict=True):
            row = {n: _plain(v) for n, v in zip(names, values, strict=True)}
            for key in _INT_FIELDS:
                row[key] = int(row[key])
            if row.get("cluster") is not None:
                row["cluster"] = int(row["cluster"])
            rows.append(row)
    return sorted(rows, key=lambda r: r["rank"])


def _resolve_scene(scene: str, selection: Path) -> Path:
    """Absolute paths as they are; relative ones from the working folder, else from the
    selection file's folder."""
    path = Path(scene)
    if path.is_absolute() or path.exists():
        return path
    beside = selection.parent / path
    return beside if beside.exists() else path


class SelectedWindows(Dataset[dict[str, torch.Tensor]]):
    """The windows of a curated selection, read on demand.

    Construction checks the whole file at once, so a bad selection fails before training starts:
    every listed scene must exist, open, hold the requested bands and contain its windows.
    Raw windows are kept in memory up to ``cache_bytes`` (formats such as JPEG decode the whole
    file up to a window; later reads of the same window are free).
    """

    georeferenced = False  # samples carry no bounds (as for image folders)

    def __init__(
        self,
        selection: Path,
        bands: list[int],
        input_scale: float,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        self.selection = Path(selection)
        rows = read_selection(self.selection)
        if not rows:
            raise UserError(f"{self.selection} lists no window")
        self.bands = list(bands)
        self.input_scale = float(input_scale)
        self.cache_bytes = cache_bytes
        self._cache: dict[int, tuple[npt.NDArray[Any], npt.NDArray[np.bool_]]] = {}
        self._cached_bytes = 0
        scenes = {
            s: _resolve_scene(s, self.selection) for s in dict.fromkeys(r["scene"] for r in rows)
        }
        missing = [str(p) for p in scenes.values() if not p.is_file()]
        if missing:
            raise UserError(
                f"{self.selection}: {len(missing)} of the {len(scenes)} scenes it lists do not "
                f"exist, e.g. {missing[0]} (moved data? re-run s5geo curate on the files where "
                "they are now)"
            )
        self.scene_paths = [scenes[r["scene"]] for r in rows]
        self.rows = rows
        self._check_scenes(sorted(set(self.scene_paths)))

    def _check_scenes(self, paths: list[Path]) -> None:
        windows: dict[Path, list[dict[str, Any]]] = {}
        for path, row in zip(self.scene_paths, self.rows, strict=True):
            windows.setdefault(path, []).append(row)
        for path in paths:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                try:
                    src = rasterio.open(path)
                except rasterio.RasterioIOError as exc:
                    raise UserError(f"{self.selection}: cannot read scene {path}: {exc}") from None
            with src:
                count, width, height = src.count, src.width, src.height
            if max(self.bands) > count:
                raise UserError(
                    f"{self.selection}: scene {path} has {count} bands; data.bands reads "
                    f"{self.bands}"
                )
            for r in windows[path]:
                if (r["col_off"] < 0 or r["row_off"] < 0 or r["width"] < 1 or r["height"] < 1
                        or r["col_off"] + r["width"] > width
                        or r["row_off"] + r["height"] > height):  # fmt: skip
                    raise UserError(
                        f"{self.selection}: window col {r['col_off']}, row {r['row_off']}, "
                        f"{r['width']}x{r['height']} px lies outside {path} ({width}x{height})"
                    )

    def __len__(self) -> int:
        return len(self.rows)

    def _read(self, index: int) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_]]:
        """Raw window (the file's dtype) and validity (False where every band is nodata)."""
        r = self.rows[index]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(self.scene_paths[index]) as src:
                window = Window(r["col_off"], r["row_off"], r["width"], r["height"])
                raw = src.read(self.bands, window=window)
                nodata = src.nodata
        valid = (raw != nodata).any(0) if nodata is not None else np.ones(raw.shape[1:], bool)
        return raw, valid

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        """``image`` float32 [C, h, w] in 0..1 and ``valid`` bool [h, w] of window ``index``."""
        cached = self._cache.get(index)
        if cached is None:
            cached = self._read(index)
            size = cached[0].nbytes + cached[1].nbytes
            if self._cached_bytes + size <= self.cache_bytes:
                self._cache[index] = cached
                self._cached_bytes += size
        raw, valid = cached
        image = np.clip(raw.astype(np.float32) / self.input_scale, 0.0, 1.0)
        return {"image": torch.from_numpy(image), "valid": torch.from_numpy(valid.copy())}
