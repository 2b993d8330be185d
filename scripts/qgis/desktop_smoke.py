"""Startup code for the desktop smoke test: run inside the real ``qgis`` program (``--code``).

Segments a small area of the scene with the plugin's Processing algorithm, loads the styled
results, zooms to them, saves a screenshot of the main window and of the map, writes a JSON
report and quits QGIS. Paths come from the environment (set by desktop_smoke.sh).
"""

import json
import os
import traceback
from pathlib import Path

import processing
from qgis.core import QgsApplication, QgsProject, QgsRasterLayer, QgsRectangle
from qgis.PyQt.QtCore import QTimer
from qgis.utils import active_plugins, iface

OUT = Path(os.environ["S5GEO_SMOKE_OUT"])
SCENE = os.environ["S5GEO_SMOKE_SCENE"]
EXTENT = "487000,488000,5207000,5207750 [EPSG:26914]"
report: dict = {"plugins": list(active_plugins)}


def finish(status: str) -> None:
    report["status"] = status
    (OUT / "report.json").write_text(json.dumps(report, indent=2))
    QgsProject.instance().setDirty(False)
    QTimer.singleShot(500, QgsApplication.instance().quit)


def screenshot() -> None:
    if "status" in report:  # the canvas may redraw more than once
        return
    try:
        iface.mainWindow().grab().save(str(OUT / "qgis-window.png"))
        iface.mapCanvas().saveAsImage(str(OUT / "map.png"))
        finish("ok")
    except Exception:
        report["error"] = traceback.format_exc()
        finish("error")


def zoom() -> None:
    """Zoom once the window has its final size, then take the screenshots after the redraw."""
    canvas = iface.mapCanvas()
    canvas.mapCanvasRefreshed.connect(lambda: QTimer.singleShot(1000, screenshot))
    canvas.setExtent(QgsRectangle(487000, 5207000, 488000, 5207750))
    canvas.refresh()


def run() -> None:
    try:
        scene = QgsRasterLayer(SCENE, "naip")
        QgsProject.instance().addMapLayer(scene)
        result = processing.runAndLoadResults(
            "s5geo:segmentlandcover",
            {
                "INPUT": scene,
                "EXTENT": EXTENT,
                "OUTPUT_RASTER": str(OUT / "landcover.tif"),
                "OUTPUT_VECTOR": str(OUT / "landcover.gpkg"),
            },
        )
        files = {str(v) for v in result.values()}
        report["layers"] = {
            Path(layer.source().split("|")[0]).name: layer.renderer().type()
            for layer in QgsProject.instance().mapLayers().values()
            if layer.source().split("|")[0] in files
        }
        QTimer.singleShot(1500, zoom)
    except Exception:
        report["error"] = traceback.format_exc()
        finish("error")


QTimer.singleShot(2000, run)
