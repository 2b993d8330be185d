"""The selection as a GeoPackage of window footprints, and a short report with a histogram.

One layer per CRS (a GeoPackage layer has one CRS): ``selection`` when every scene shares one,
otherwise ``selection_<crs>``; windows of files without georeferencing go to ``selection_pixel``
in pixel coordinates (x = column, y = row, no CRS). Fields: scene (absolute path), col_off,
row_off, width, height (the window in pixels), entropy, cluster (NULL for a random selection that
was not scored), rank (order of acceptance: ascending entropy for RS4P, draw order for random).
The file is written to a temporary name and renamed, so it appears complete or not at all.
The format and its reader live in :mod:`s5geo.data.selection`, where training reads it.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyogrio
import pyogrio.raw
import shapely

from s5geo.curate.pool import WindowRef
from s5geo.data.selection import read_selection as read_selection  # the reader, re-exported


def _layer_name(crs: str | None, crs_count: int) -> str:
    if crs is None:
        return "selection_pixel"
    if crs_count == 1:
        return "selection"
    return "selection_" + re.sub(r"[^0-9A-Za-z]+", "_", crs).strip("_").lower()


def write_selection(
    out: Path,
    refs: list[WindowRef],
    entropy: npt.NDArray[np.float64] | None,
    cluster: npt.NDArray[np.int64] | None,
) -> list[str]:
    """Write the selected windows (in rank order) to GeoPackage ``out``; return the layer names.

    ``entropy``/``cluster`` None: the windows were not scored, both fields are NULL."""
    tmp = out.with_name(out.name + ".tmp.gpkg")
    tmp.unlink(missing_ok=True)
    crss = sorted({r.crs for r in refs if r.crs is not None})
    groups: dict[str | None, list[int]] = {}
    for i, ref in enumerate(refs):
        groups.setdefault(ref.crs, []).append(i)
    layers: list[str] = []
    try:
        for crs, idx in groups.items():
            layer = _layer_name(crs, len(crss))
            geoms = shapely.box(*np.array([refs[i].footprint for i in idx]).T)
            n = len(idx)
            fields = {
                "scene": np.array([str(Path(refs[i].scene).resolve()) for i in idx], dtype=object),
                "col_off": np.array([refs[i].col for i in idx], dtype=np.int64),
                "row_off": np.array([refs[i].row for i in idx], dtype=np.int64),
                "width": np.array([refs[i].width for i in idx], dtype=np.int64),
                "height": np.array([refs[i].height for i in idx], dtype=np.int64),
                "entropy": (np.full(n, np.nan) if entropy is None
                            else entropy[idx].astype(np.float64)),  # NaN is written as NULL
                "cluster": (np.zeros(n, np.int64) if cluster is None
                            else cluster[idx].astype(np.int64)),
                "rank": np.array(idx, dtype=np.int64),
            }  # fmt: skip
            masks: list[npt.NDArray[np.bool_] | None] = [None] * len(fields)
            if cluster is None:
                masks[list(fields).index("cluster")] = np.ones(n, bool)  # NULL
            with warnings.catch_warnings():  # pixel layers have no CRS on purpose
                warnings.filterwarnings("ignore", "'crs' was not provided")
                pyogrio.raw.write(
                    str(tmp), shapely.to_wkb(geoms), list(fields.values()), fields=list(fields),
                    field_mask=masks, layer=layer, driver="GPKG", geometry_type="Polygon", crs=crs,
                    append=bool(layers),
                )  # fmt: skip
            layers.append(layer)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return layers


def plot_entropy(
    pool: npt.NDArray[np.float64], chosen: npt.NDArray[np.float64], ceiling: float | None, out: Path
) -> None:
    """Histogram of pool and selected window entropies (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    finite = pool[np.isfinite(pool)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    bins = list(np.linspace(lo, hi + 1e-9, 31))
    ax.hist(finite, bins=bins, alpha=0.5, label=f"pool ({len(finite)})")
    ax.hist(chosen, bins=bins, alpha=0.7, label=f"selected ({len(chosen)})")
    if ceiling is not None:
        ax.axvline(ceiling, color="k", linestyle="--", label=f"ceiling {ceiling:g}")
    ax.set_xlabel("mean per-pixel entropy (nats)")
    ax.set_ylabel("windows")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def write_report(out: Path, report: dict[str, Any]) -> None:
    """The report as indented JSON."""
    out.write_text(json.dumps(report, indent=2))
