"""Where the plugin meets the s5geo library inside QGIS's own process.

s5geo is imported when it is needed, never when QGIS loads the plugin: a QGIS whose Python lacks
s5geo still starts, lists the algorithm and explains how to install the library, instead of
showing an import traceback at startup. The one exception is :mod:`s5geo.options` (standard
library only), whose defaults and valid ranges the algorithm's fields show, and which is simply
left out where it cannot be imported. Segmentation itself runs in a child process (see
worker.py); here the plugin only reads models and layers. Every message meant for the analyst is
a :class:`ReadableError`; the algorithm and the dialogs show its text, never a traceback.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qgis.core import QgsProviderRegistry, QgsRasterLayer

INSTALL_HELP = (
    "The s5geo Python package is not installed in the Python that QGIS runs "
    "(Python {version}, {prefix}). Install it there, for example on Debian/Ubuntu with "
    '`/usr/bin/python3 -m pip install --user --break-system-packages "numpy<2" "attrs>=24" '
    "/path/to/s5geo` (a clone of s5geo, or the wheel its `make dist` builds), then restart QGIS. "
    "docs/QGIS.md describes the other ways (a virtual environment, Windows, macOS)."
)
BROKEN_HELP = (
    "s5geo {s5_version} is installed in QGIS's Python ({location}) but the plugin cannot use it: "
    "{detail}. Install a matching s5geo and its dependencies (pip install --upgrade "
    "/path/to/s5geo, a clone or the wheel its make dist builds; docs/QGIS.md), then restart QGIS."
)


class ReadableError(Exception):
    """A problem the analyst can fix; its text is shown as is."""


class S5geoMissing(ReadableError):
    """The s5geo package (or one of its dependencies) cannot be imported in QGIS's Python."""


@dataclass(frozen=True)
class Library:
    """The parts of s5geo the plugin uses in QGIS's own process (to describe models)."""

    load_model: Callable[..., Any]
    default_model_path: Callable[[], Any]
    UserError: type[Exception]


def installed_s5geo() -> Any:
    """The s5geo package, or :class:`S5geoMissing` saying how to install it into QGIS's Python."""
    try:
        import s5geo
    except ImportError:
        raise S5geoMissing(
            INSTALL_HELP.format(version=platform.python_version(), prefix=sys.prefix)
        ) from None
    return s5geo


def broken_install(detail: str) -> S5geoMissing:
    """The error for an s5geo that is installed but unusable (too old, a dependency missing)."""
    s5geo = installed_s5geo()
    location = Path(s5geo.__file__).parent
    return S5geoMissing(
        BROKEN_HELP.format(s5_version=s5geo.__version__, location=location, detail=detail)
    )


def require_s5geo() -> Library:
    """Import the model-reading part of s5geo, or raise :class:`S5geoMissing` saying why not."""
    installed_s5geo()
    try:
        from s5geo.errors import UserError
        from s5geo.infer import default_model_path, load_model
    except ImportError as exc:  # an old s5geo, or a dependency (onnxruntime...) missing
        raise broken_install(str(exc)) from None
    return Library(
        load_model=load_model, default_model_path=default_model_path, UserError=UserError
    )


def s5geo_problem() -> str | None:
    """Why s5geo cannot be used in this QGIS, or None when it can."""
    try:
        require_s5geo()
    except S5geoMissing as exc:
        return str(exc)
    return None


def option_defaults() -> dict[str, Any]:
    """s5geo's default prediction options by parameter (:class:`s5geo.options.PredictOptions`),
    or none where it cannot be imported."""
    try:
        from s5geo.options import PredictOptions
    except ImportError:
        return {}
    return vars(PredictOptions())


def option_limits() -> Mapping[str, Any]:
    """The valid range of each numeric prediction option (``PredictOptions.LIMITS``), or none
    where s5geo cannot be imported."""
    try:
        from s5geo.options import PredictOptions
    except ImportError:
        return {}
    return PredictOptions.LIMITS


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
