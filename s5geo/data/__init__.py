"""Data for training and evaluation: datasets, samplers, weak/strong views, class maps.

Holds the Lightning data module (``module``), image-folder, torchgeo raster and pixel-aligned
datasets (``image_folder``, ``raster``, ``aligned``), split files (``splits``), curated
selections as an unlabeled source (``selection``), training streams (``views``), weak and strong
augmentation (``augment``) and the benchmark class maps (``classes``). Training install: torch and
torchgeo are imported by the submodules (``splits`` and ``classes`` need neither).

May import: ``s5geo.config`` and ``s5geo.errors``.
"""
