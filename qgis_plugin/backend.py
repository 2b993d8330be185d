"""The plugin's only door to the s5geo library, and the adapters between it and QGIS.

s5geo is imported when a job runs, never when QGIS loads the plugin: a QGIS whose Python lacks
s5geo still starts, lists the algorithm and explains how to install the library, instead of
showing an import traceback at startup. Every message meant for the analyst is a
:class:`ReadableError`; the algorithm and the dialogs show its text, never a traceback.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qgis.core import QgsProcessingFeedback, QgsProviderRegistry, QgsRasterLayer

INSTALL_HELP = (
    "The s5geo Python package is not installed in the Python that QGIS runs "
    "(Python {version}, {prefix}). Install it there, for example with "
    "`/usr/bin/python3 -m pip install --user s5geo` on Debian/Ubuntu, or start QGIS from a "
    "virtual environment created with --system-site-packages that has s5geo installed; "
    "then restart QGIS. See docs/QGIS.md. ({detail})"
)


class ReadableError(Exception):
    """A problem the analyst can fix; its text is shown as is."""


class S5geoMissing(ReadableError):
    """The s5geo package (or one of its dependencies) cannot be imported in QGIS's Python."""


@dataclass(frozen=True)
class Library:
    """The parts of s5geo the plugin uses, resolved once by :func:`require_s5geo`."""

    segment_scene: Callable[..., Any]
    load_model: Callable[..., Any]
    default_model_path: Callable[[], Any]
    check_scene_fits: Callable[[Any, str], None]  # (model info, scene path)
    UserError: type[Exception]
    Cancelled: type[Exception]


def require_s5geo() -> Library:
    """Import the deployment part of s5geo, or raise :class:`S5geoMissing` saying how to get it."""
    try:
        from s5geo.errors import Cancelled, UserError
        from s5geo.infer import check_scene_fits, default_model_path, load_model
        from s5geo.io.scene import open_scene
        from s5geo.segment import segment_scene
    except ImportError as exc:
        raise S5geoMissing(
            INSTALL_HELP.format(version=platform.python_version(), prefix=sys.prefix, detail=exc)
        ) from None

    def check_file_fits(info: Any, path: str) -> None:
        with open_scene(path) as ds:
            check_scene_fits(info, ds, Path(path).name)

    return Library(
        segment_scene=segment_scene,
        load_model=load_model,
        default_model_path=default_model_path,
        check_scene_fits=check_file_fits,
        UserError=UserError,
        Cancelled=Cancelled,
    )


def s5geo_problem() -> str | None:
    """Why s5geo cannot be used in this QGIS, or None when it can (checked without side effects)."""
    try:
        require_s5geo()
    except S5geoMissing as exc:
        return str(exc)
    return None


def raster_file(layer: QgsRasterLayer | None) -> str:
    """The file (or GDAL connection string) behind a raster layer, which s5geo reads itself.

    Layers from web services or in-memory providers have no file: they are refused by name.
    """
    if layer is None or not layer.isValid():
        raise ReadableError("The input raster layer is missing or cannot be read.")
    if layer.providerType() != "gdal":
        raise ReadableError(
            f"Layer '{layer.name()}' comes from the '{layer.providerType()}' provider; s5geo needs "
            "a raster layer backed by a file (GeoTIFF, VRT, JPEG2000...). Export it first with "
            "Raster > Conversion > Translate."
        )
    parts = QgsProviderRegistry.instance().decodeUri("gdal", layer.source())
    path = parts.get("path") or layer.source()
    if parts.get("layerName"):  # a table in a GeoPackage or a subdataset: GDAL's own string
        return layer.source()
    if not path.startswith("/vsi") and not os.path.isfile(path):
        raise ReadableError(f"Layer '{layer.name()}' points to {path}, which is not a file.")
    return path


def progress_reporter(feedback: QgsProcessingFeedback | None) -> Callable[[Any], bool]:
    """A progress callback for :func:`segment_scene` that drives a Processing feedback.

    The fraction becomes the progress bar, each new stage one line of progress text, and the
    callback answers False once the analyst pressed Cancel, which makes s5geo stop and remove
    its partial outputs.
    """
    stage: list[str] = []

    def report(progress: Any) -> bool:
        if feedback is None:
            return True
        if not stage or stage[-1] != progress.stage:
            stage.append(progress.stage)
            feedback.setProgressText(progress.message or str(progress.stage))
        feedback.setProgress(100.0 * float(progress.fraction))
        return not feedback.isCanceled()

    return report
