"""Large test scenes built from the real NAIP scene without copying it: VRT mosaics of one file.

A VRT lists the same source file many times side by side, so a 400-megapixel scene costs a few
kilobytes on disk and reads real imagery (with real nodata handling) through GDAL.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from xml.sax.saxutils import escape

import rasterio

ROOT = Path(__file__).resolve().parents[1]
NAIP = "naip/m_4709963_se_14_1_20200831.tif"


def data_root() -> Path:
    return Path(os.environ.get("S5GEO_DATA", ROOT.parent / "shared" / "data"))


def naip_path() -> Path:
    path = data_root() / NAIP
    if not path.exists():
        raise SystemExit(f"the real NAIP scene is needed: {path} not found (set S5GEO_DATA)")
    return path


def mosaic_vrt(source: Path, out: Path, megapixels: float) -> Path:
    """Write a square VRT of about ``megapixels`` that repeats ``source`` in a grid."""
    with rasterio.open(source) as src:
        w, h, count = src.width, src.height, src.count
        dtype = src.dtypes[0]
        crs_wkt = src.crs.to_wkt()
        t = src.transform
        nodata = src.nodata
    side = int(math.sqrt(megapixels * 1e6))
    nx, ny = math.ceil(side / w), math.ceil(side / h)
    gdal_type = {"uint8": "Byte", "uint16": "UInt16", "float32": "Float32"}[dtype]
    bands = []
    for b in range(1, count + 1):
        sources = []
        for j in range(ny):
            for i in range(nx):
                xoff, yoff = i * w, j * h
                if xoff >= side or yoff >= side:
                    continue
                cw, ch = min(w, side - xoff), min(h, side - yoff)
                sources.append(
                    f'    <SimpleSource><SourceFilename relativeToVRT="0">{escape(str(source))}'
                    f"</SourceFilename><SourceBand>{b}</SourceBand>"
                    f'<SrcRect xOff="0" yOff="0" xSize="{cw}" ySize="{ch}"/>'
                    f'<DstRect xOff="{xoff}" yOff="{yoff}" xSize="{cw}" ySize="{ch}"/>'
                    "</SimpleSource>"
                )
        nd = f"<NoDataValue>{nodata}</NoDataValue>" if nodata is not None else ""
        bands.append(
            f'  <VRTRasterBand dataType="{gdal_type}" band="{b}">{nd}\n'
            + "\n".join(sources)
            + "\n  </VRTRasterBand>"
        )
    gt = f"{t.c}, {t.a}, {t.b}, {t.f}, {t.d}, {t.e}"
    out.write_text(
        f'<VRTDataset rasterXSize="{side}" rasterYSize="{side}">\n'
        f"  <SRS>{escape(crs_wkt)}</SRS>\n  <GeoTransform>{gt}</GeoTransform>\n"
        + "\n".join(bands)
        + "\n</VRTDataset>\n"
    )
    return out
