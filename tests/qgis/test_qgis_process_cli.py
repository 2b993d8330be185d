"""The plugin outside the desktop: one ``qgis_process --json run`` from the command line, and the
zip that "Install from ZIP" takes."""

from __future__ import annotations

import configparser
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("qgis.core")

from qgis.core import QgsRasterLayer, QgsVectorLayer
from qgis_helpers import (
    ALGORITHM_ID,
    PLUGIN_ID,
    QGIS_PROCESS,
    SMALL_EXTENT,
    SMALL_EXTENT_PIXELS,
    model_classes,
    qgis_process_env,
    raster_values,
)

REPO = Path(__file__).resolve().parents[2]


def test_qgis_process_json_run(plugin_path: Path, scene_path: Path, tmp_path: Path) -> None:
    if not QGIS_PROCESS.exists():
        pytest.fail(f"{QGIS_PROCESS} is missing: install the Debian package qgis")
    out_tif, out_gpkg = tmp_path / "lc.tif", tmp_path / "lc.gpkg"
    xmin, ymin, xmax, ymax = SMALL_EXTENT
    command = [
        str(QGIS_PROCESS),
        "--json",
        "run",
        ALGORITHM_ID,
        "--",
        f"INPUT={scene_path}",
        f"EXTENT={xmin},{xmax},{ymin},{ymax} [EPSG:26914]",
        "MIN_AREA=100",
        f"OUTPUT_RASTER={out_tif}",
        f"OUTPUT_VECTOR={out_gpkg}",
    ]
    env = qgis_process_env(plugin_path, tmp_path / "profile")
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    report = json.loads(done.stdout[done.stdout.index("{") :])
    assert report["algorithm_details"]["id"] == ALGORITHM_ID
    assert report["results"]["OUTPUT_RASTER"] == str(out_tif)
    assert report["results"]["OUTPUT_VECTOR"] == str(out_gpkg)
    raster = QgsRasterLayer(str(out_tif), "lc")
    vector = QgsVectorLayer(str(out_gpkg), "lc", "ogr")
    assert raster.isValid() and vector.isValid()
    assert (raster.width(), raster.height()) == SMALL_EXTENT_PIXELS
    assert raster.crs().authid() == vector.crs().authid() == "EPSG:26914"
    assert raster_values(raster) <= set(model_classes())
    assert vector.featureCount() > 0


def test_plugin_zip_installs_as_one_plugin_folder(tmp_path: Path) -> None:
    from qgis.utils import findPlugins

    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "qgis" / "build_plugin.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    archive = Path(done.stdout.strip())
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
        assert {name.split("/")[0] for name in names} == {PLUGIN_ID}
        assert not any("__pycache__" in name for name in names)
        zf.extractall(tmp_path / "plugins")
    found = dict(findPlugins(str(tmp_path / "plugins")))
    meta: configparser.ConfigParser = found[PLUGIN_ID]
    general = meta["general"]
    for key in ("name", "description", "version", "author", "about"):
        assert general.get(key), key
    assert general["qgisMinimumVersion"] == "3.22"
    assert general["hasProcessingProvider"] == "yes"
    assert (tmp_path / "plugins" / PLUGIN_ID / general["icon"]).exists()
