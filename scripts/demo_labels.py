"""Write demo/naip_2020_labels.gpkg: training polygons for `make demo`, drawn by eye.

The rectangles below were placed by looking at the 2020 NAIP scene of the shared data folder
(m_4709963_se_14_1_20200831.tif, 5 m, EPSG:26914) at full resolution: each lies well inside an
area whose class is plain to see. They are an analyst's quick sketch, not ground truth. Pixel
coordinates (column, row) are turned into the scene's CRS with its geotransform, so the file
needs no access to the scene; the layer carries a QGIS categorized style with the class colours,
which `s5geo fit` takes over.

    python scripts/demo_labels.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyogrio
import shapely

from s5geo.io.gpkg import write_default_style
from s5geo.io.qgis_style import vector_qml

OUT = Path(__file__).resolve().parents[1] / "demo" / "naip_2020_labels.gpkg"
CRS = "EPSG:26914"
ORIGIN, PIXEL = (485899.0, 5209246.0), 5.0  # the scene's geotransform

# class: (colour, [col_min, row_min, col_max, row_max] per polygon)
POLYGONS: dict[str, tuple[str, list[tuple[float, float, float, float]]]] = {
    "water": ("#1F78B4", [(346, 75, 362, 98), (366, 240, 384, 252), (515, 262, 545, 285),
                          (850, 50, 870, 100), (547, 333, 562, 352), (875, 410, 895, 428),
                          (166, 472, 182, 488), (305, 695, 325, 712), (465, 625, 485, 655)]),
    "cropland": ("#B2DF8A", [(700, 240, 760, 290), (640, 570, 720, 605), (170, 560, 230, 600),
                             (30, 290, 90, 350), (570, 90, 640, 140), (680, 670, 740, 710),
                             (200, 170, 235, 200), (260, 100, 290, 125)]),
    "grassland": ("#8C6D31", [(750, 150, 800, 200), (770, 300, 820, 345), (580, 650, 630, 700),
                              (795, 645, 835, 685)]),
    "bare soil": ("#E6C9A8", [(100, 70, 150, 130), (830, 535, 890, 590), (485, 650, 545, 700),
                              (660, 420, 730, 470), (400, 648, 450, 685)]),
    # The county road, one pixel wide at 5 m: a strip around the centre of its pixel row.
    "road": ("#E31A1C", [(560, 625.1, 790, 625.9), (180, 625.1, 300, 625.9)]),
}  # fmt: skip


def _to_crs(col0: float, row0: float, col1: float, row1: float) -> shapely.Polygon:
    x0, x1 = ORIGIN[0] + PIXEL * col0, ORIGIN[0] + PIXEL * col1
    y0, y1 = ORIGIN[1] - PIXEL * row1, ORIGIN[1] - PIXEL * row0
    return shapely.box(x0, y0, x1, y1)


def main() -> None:
    names, geoms = [], []
    for name, (_, boxes) in POLYGONS.items():
        for box in boxes:
            names.append(name)
            geoms.append(_to_crs(*box))
    OUT.parent.mkdir(exist_ok=True)
    OUT.unlink(missing_ok=True)
    pyogrio.raw.write(
        OUT,
        geometry=shapely.to_wkb(np.array(geoms)),
        field_data=[np.array(names, dtype=object)],
        fields=["class"],
        geometry_type="Polygon",
        crs=CRS,
        driver="GPKG",
        layer="labels",
    )
    classes = dict(enumerate(POLYGONS))
    colors = {i: POLYGONS[n][0] for i, n in classes.items()}
    write_default_style(OUT, "labels", vector_qml(classes, colors, "class", values=classes))
    print(f"{OUT}: {len(geoms)} polygons, {len(classes)} classes")


if __name__ == "__main__":
    main()
