"""The class raster (and confidence raster) written as the blender finishes rows, then made COGs.

Finished rows go straight to staged GeoTIFFs beside the final outputs, and into the class
overviews (by mode) that the COG copy then takes as they are; each block of class rows is also
counted per class and handed to an optional consumer (the polygonizer of
:func:`s5geo.segment.segment_scene`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from s5geo.io.overviews import StreamingOverviews
from s5geo.io.raster import BlockRowWriter, GridSpec, write_class_cog, write_confidence_cog
from s5geo.modelfile import NODATA

# Rows of output counted per class at a time: bincount casts to int64, and counting a few rows at
# a time keeps that copy small on wide scenes (for a whole band of rows it is 8 times the band).
COUNT_ROWS = 16
# What receives every block of finished class rows, (first row, rows), in order.
RowsFn = Callable[[int, np.ndarray], None]


class ClassRows:
    """Staged class and confidence rasters of ``grid``, fed block by block in row order.

    ``raster_tmp`` names the class COG to be written (the staged files sit beside it);
    ``confidence`` says whether a confidence raster is written too; ``on_rows`` receives each
    block of class rows as written (it must not change them).
    """

    def __init__(
        self, raster_tmp: Path, grid: GridSpec, confidence: bool, on_rows: RowsFn | None
    ) -> None:
        self.stage_cls = raster_tmp.with_name(raster_tmp.name + ".stage.tif")
        self.stage_conf = raster_tmp.with_name(raster_tmp.name + ".conf.stage.tif")
        self.counts = np.zeros(256, np.int64)
        self.classes = BlockRowWriter(self.stage_cls, grid, "land-cover class")
        self.overviews = StreamingOverviews(self.stage_cls, grid)
        self.confidence = (
            BlockRowWriter(self.stage_conf, grid, "confidence (%)") if confidence else None
        )
        self.on_rows = on_rows

    def write(self, row: int, cls: np.ndarray, conf: np.ndarray) -> None:
        """Write the finished rows from ``row`` on: classes ``cls``, confidence ``conf``."""
        for i in range(0, len(cls), COUNT_ROWS):
            self.counts[:] += np.bincount(cls[i : i + COUNT_ROWS].ravel(), minlength=256)
        self.classes.write(row, cls)
        self.overviews.add(cls)
        if self.on_rows is not None:
            self.on_rows(row, cls)
        if self.confidence is not None:
            self.confidence.write(row, conf)

    @property
    def class_pixels(self) -> dict[int, int]:
        """Pixels written per class, for the classes that occur (nodata left out)."""
        return {k: int(self.counts[k]) for k in range(NODATA) if self.counts[k]}

    def finish(
        self,
        raster: Path,
        confidence: Path | None,
        names: dict[int, str],
        colors: dict[int, str],
        tags: dict[str, str],
    ) -> None:
        """Close the staged rasters and copy them into the class COG ``raster`` (with its class
        ``names``, ``colors`` and metadata ``tags``) and the confidence COG ``confidence``."""
        self.classes.close()
        self.overviews.close()
        if self.confidence is not None:
            self.confidence.close()
        write_class_cog(self.stage_cls, raster, names, colors, tags, self.overviews.paths)
        if confidence is not None:
            write_confidence_cog(self.stage_conf, confidence)

    def discard(self) -> None:
        """Close and remove the staged files (after :meth:`finish`, or instead of it)."""
        if not self.classes.dataset.closed:
            self.classes.dataset.close()
        if self.confidence is not None and not self.confidence.dataset.closed:
            self.confidence.dataset.close()
        self.overviews.discard()
        for stage in (self.stage_cls, self.stage_conf):
            stage.unlink(missing_ok=True)
