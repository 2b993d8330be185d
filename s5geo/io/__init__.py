"""Scenes in, files out: the input/output layer shared by every other package.

Holds opening and checking scenes (``scene``), atomic output sets (``atomic``), streamed
class-raster and Cloud-Optimized GeoTIFF writing (``raster``, ``overviews``), GeoPackage polygon
layers written with sqlite3 (``gpkg``), QGIS styles (``qgis_style``) and PNG quicklooks
(``quicklook``). Deployment install, no torch.

May import: ``s5geo.errors`` only.
"""
