"""QGIS plugin for s5geo: land-cover segmentation of raster layers with ONNX models.

QGIS imports this package under the plugin's folder name (``s5geo_plugin``, never ``s5geo``, which
would shadow the library) and calls :func:`classFactory`.
"""


def classFactory(iface):
    """Create the plugin; ``iface`` is None when only Processing is loaded (qgis_process)."""
    from .plugin import S5geoPlugin

    return S5geoPlugin(iface)
