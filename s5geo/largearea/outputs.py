"""A run folder's shared files: the manifest (resume), the run index layer and the mosaic VRTs.

Each is rewritten whole under a temporary name and renamed, so a run killed while writing one
leaves the previous version, never half a file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT

from s5geo.modelfile import NODATA

MANIFEST = "s5geo-run.json"
INDEX = "run_index.gpkg"
INDEX_LAYER = "scenes"
MOSAIC = "mosaic.vrt"
CONFIDENCE_MOSAIC = "confidence_mosaic.vrt"
MANIFEST_FORMAT = 1


def _replace(path: Path, write: Any) -> None:
    # The same suffix: GDAL picks the driver, and checks the extension, by it.
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest at ``path``; None when there is none or it cannot be read (then the run
    starts afresh, as it would without one)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        return None
    return data


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    _replace(path, lambda tmp: tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True)))


def write_index(
    path: Path, entries: Sequence[dict[str, Any]], crs: str | None, common: dict[str, str]
) -> None:
    """The run index: one feature per scene, its footprint in ``crs`` (the first footprint's CRS
    when None), with its status, seconds, outputs and ``common`` fields (model hash, version).

    Footprints are stored as bounds and CRS in the manifest entries; a scene that could not be
    opened has no footprint (a null geometry).
    """
    import pyogrio.raw
    import shapely
    from rasterio.crs import CRS
    from rasterio.warp import transform_geom

    target = CRS.from_user_input(crs) if crs else None
    if target is None:
        first = next((e["footprint_crs"] for e in entries if e.get("footprint_crs")), None)
        target = CRS.from_wkt(first) if first else None
    geoms: list[bytes | None] = []
    for e in entries:
        bounds, wkt = e.get("bounds"), e.get("footprint_crs")
        if not bounds:
            geoms.append(None)
            continue
        box = shapely.box(*bounds)
        if wkt and target is not None and CRS.from_wkt(wkt) != target:
            geo = transform_geom(CRS.from_wkt(wkt), target, shapely.geometry.mapping(box))
            box = shapely.geometry.shape(geo)
        geoms.append(shapely.to_wkb(box))
    text_fields = [
        "scene", "input", "item_id", "asset", "status", "error", "raster", "confidence",
        "polygons",
    ]  # fmt: skip
    columns: dict[str, np.ndarray] = {
        f: np.array([e.get(f) or "" for e in entries], dtype=object) for f in text_fields
    }
    columns["seconds"] = np.array([float(e.get("seconds") or 0.0) for e in entries])
    columns["width"] = np.array([int(e.get("width") or 0) for e in entries], np.int64)
    columns["height"] = np.array([int(e.get("height") or 0) for e in entries], np.int64)
    for key, value in common.items():
        columns[key] = np.array([value] * len(entries), dtype=object)
    geometry = np.array(geoms, dtype=object)

    def write(tmp: Path) -> None:
        pyogrio.raw.write(
            tmp,
            geometry,
            list(columns.values()),
            list(columns),
            layer=INDEX_LAYER,
            driver="GPKG",
            geometry_type="Polygon",
            crs=target.to_wkt() if target is not None else None,
        )

    _replace(path, write)


def write_mosaic(path: Path, rasters: Sequence[Path], crs: str | None = None) -> str | None:
    """A VRT of the single-band ``rasters`` that GIS software opens as one layer, with the first
    raster's colour table and nodata; later rasters are drawn over earlier ones except where they
    hold nodata. Returns why no VRT was written (None when it was).

    The mosaic is in ``crs`` (default: the first raster's). A raster in another CRS enters it
    through a warped VRT (nearest neighbour: class ids stay class ids) written to the folder
    ``MOSAIC_STEM.parts`` beside it, so scenes of several UTM zones still open as one layer, also
    in GIS software whose GDAL predates GDAL's GTI index.
    """
    if not rasters:
        return "no scene finished"
    placed = _in_one_crs(path, rasters, crs)
    if isinstance(placed, str):
        return placed
    grids = []
    for r in placed:
        with rasterio.open(r) as ds:
            grids.append((r, ds.crs, ds.transform, ds.width, ds.height, ds.nodata, ds.dtypes[0]))
            if r == placed[0]:
                try:
                    colormap: dict[int, tuple[int, ...]] | None = ds.colormap(1)
                except ValueError:  # no colour table (the confidence rasters)
                    colormap = None
    crs_of = grids[0][1]
    res = min(min(abs(g[2].a), abs(g[2].e)) for g in grids)
    left = min(g[2].c for g in grids)
    top = max(g[2].f for g in grids)
    right = max(g[2].c + g[3] * g[2].a for g in grids)
    bottom = min(g[2].f + g[4] * g[2].e for g in grids)
    width, height = round((right - left) / res), round((top - bottom) / res)
    nodata = grids[0][5]
    dtype = {"uint8": "Byte", "uint16": "UInt16", "float32": "Float32"}.get(grids[0][6], "Byte")
    lines = [
        f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">',
        f'  <SRS dataAxisToSRSAxisMapping="1,2">{escape(crs_of.to_wkt())}</SRS>'
        if crs_of is not None
        else "",
        f"  <GeoTransform>{left!r}, {res!r}, 0.0, {top!r}, 0.0, {-res!r}</GeoTransform>",
        f'  <VRTRasterBand dataType="{dtype}" band="1">',
    ]
    if nodata is not None:
        lines.append(f"    <NoDataValue>{nodata:g}</NoDataValue>")
    if colormap:
        lines.append("    <ColorInterp>Palette</ColorInterp>")
        lines.append("    <ColorTable>")
        for i in range(max(colormap) + 1):
            c = colormap.get(i, (0, 0, 0, 0))
            lines.append(f'      <Entry c1="{c[0]}" c2="{c[1]}" c3="{c[2]}" c4="{c[3]}"/>')
        lines.append("    </ColorTable>")
    for r, _, t, w, h, nd, _ in grids:
        xoff, yoff = (t.c - left) / res, (top - t.f) / res
        xsize, ysize = w * abs(t.a) / res, h * abs(t.e) / res
        rel = os.path.relpath(r, path.parent)
        lines += [
            '    <ComplexSource resampling="nearest">',
            f'      <SourceFilename relativeToVRT="1">{escape(rel)}</SourceFilename>',
            "      <SourceBand>1</SourceBand>",
            f'      <SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>',
            f'      <DstRect xOff="{xoff:.10g}" yOff="{yoff:.10g}" xSize="{xsize:.10g}" '
            f'ySize="{ysize:.10g}"/>',
        ]
        if nd is not None:
            lines.append(f"      <NODATA>{nd:g}</NODATA>")
        lines.append("    </ComplexSource>")
    lines += ["  </VRTRasterBand>", "</VRTDataset>", ""]
    text = "\n".join(line for line in lines if line)
    _replace(path, lambda tmp: tmp.write_text(text))
    return None


def _in_one_crs(path: Path, rasters: Sequence[Path], crs: str | None) -> list[Path] | str:
    """``rasters``, those in another CRS than the mosaic's replaced by warped VRTs of them; or
    why that cannot be done (a raster without a CRS among others)."""
    crss = []
    for r in rasters:
        with rasterio.open(r) as ds:
            crss.append(ds.crs)
    target = CRS.from_user_input(crs) if crs is not None else crss[0]
    if all(c == target for c in crss):
        return list(rasters)
    if target is None or any(c is None for c in crss):
        return "some scenes have no CRS and others do: their pixels cannot be placed in one mosaic"
    parts = path.with_name(f"{path.stem}.parts")
    parts.mkdir(exist_ok=True)
    out = []
    for r, c in zip(rasters, crss, strict=True):
        if c == target:
            out.append(Path(r))
            continue
        warped = parts / f"{Path(r).stem}.vrt"
        _replace(warped, lambda tmp, r=r: _write_warped(Path(r), target, tmp))
        out.append(warped)
    return out


def _write_warped(raster: Path, crs: CRS, path: Path) -> None:
    """A warped VRT of ``raster`` in ``crs`` at ``path``, its source named relative to it."""
    with rasterio.open(raster) as src:
        nodata = src.nodata if src.nodata is not None else NODATA
        with WarpedVRT(src, crs=crs, resampling=Resampling.nearest, nodata=nodata) as vrt:
            rasterio.shutil.copy(vrt, path, driver="VRT")
    # GDAL writes the source's absolute path; relative, the run folder can be moved as a whole.
    text = path.read_text()
    absolute = f'<SourceDataset relativeToVRT="0">{escape(str(raster.resolve()))}</SourceDataset>'
    relative = escape(os.path.relpath(raster.resolve(), path.resolve().parent))
    if absolute in text:
        text = text.replace(
            absolute, f'<SourceDataset relativeToVRT="1">{relative}</SourceDataset>'
        )
        path.write_text(text)
