"""Scenes, windows, profiles, COG and GeoPackage writing, QGIS styles: shared by all."""
