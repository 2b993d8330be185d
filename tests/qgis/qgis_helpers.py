"""Constants and small readers shared by the QGIS tests (importable: tests/qgis is on sys.path)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

PLUGIN_ID = "s5geo_plugin"
PROVIDER_ID = "s5geo"
ALGORITHM_ID = "s5geo:segmentlandcover"
# The Debian wrapper /usr/bin/qgis_process passes an option 3.22's tool rejects: call the binary.
QGIS_PROCESS = Path("/usr/bin/qgis_process.bin")
SCENE = "naip/m_4709963_se_14_1_20200831.tif"
# A 1 km x 0.75 km area inside the scene (EPSG:26914, 5 m pixels): keeps the runs
# that are not about the full scene to a few seconds.
SMALL_EXTENT = (487000.0, 5207000.0, 488000.0, 5207750.0)
# The NAIP grid starts 0.2 px off this extent, so the pixels covering it are 201 x 151 (s5geo
# rounds an extent outwards to whole pixels: every part of it is processed).
SMALL_EXTENT_PIXELS = (201, 151)


def model_classes() -> dict[int, str]:
    """Class ids and names of the bundled default model, as s5geo reads them."""
    from s5geo.infer import load_model

    return dict(load_model().info.class_names)


def raster_values(layer: Any) -> set[int]:
    """Distinct class ids of a single-band uint8 layer, read through QGIS's own provider."""
    block = layer.dataProvider().block(1, layer.extent(), layer.width(), layer.height())
    return set(bytes(block.data())) - {255}


def reference_polygons(raster: Any, out: Any, min_area_m2: float, simplify_m: float) -> Any:
    """What s5geo's own polygonizer writes for ``raster`` with these options (a VectorResult)."""
    from s5geo.infer import load_model
    from s5geo.vector import polygonize_raster

    info = load_model().info
    return polygonize_raster(
        raster,
        out,
        class_names=dict(info.class_names),
        class_colors={k: info.color(k) for k in info.class_names},
        min_area_m2=min_area_m2,
        simplify_m=simplify_m,
    )


def vertex_count(layer: Any) -> int:
    """Vertices of all the features of a vector layer."""
    return sum(sum(1 for _ in f.geometry().vertices()) for f in layer.getFeatures())


def qgis_process_env(plugin_path: Path, profile: Path) -> dict[str, str]:
    """An environment in which qgis_process finds and enables the plugin, in a throwaway profile.

    qgis_process embeds the first ``python3`` on PATH: the one running these tests (the QGIS
    venv), so s5geo is importable in it.
    """
    ini = profile / "profiles" / "default" / "QGIS" / "QGIS3.ini"
    ini.parent.mkdir(parents=True, exist_ok=True)
    ini.write_text(f"[PythonPlugins]\n{PLUGIN_ID}=true\n", encoding="utf-8")
    env = dict(os.environ)
    env.update(
        QGIS_PLUGINPATH=str(plugin_path),
        QGIS_CUSTOM_CONFIG_PATH=str(profile),
        QT_QPA_PLATFORM="offscreen",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    return env
