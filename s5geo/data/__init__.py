"""Data for training and checkpoint evaluation: torch datasets, samplers, weak/strong views.

Holds the Lightning data module (``module``), image-folder, torchgeo raster and pixel-aligned
datasets (``image_folder``, ``raster``, ``aligned``), curated selections as an unlabeled source
(``selection``), training streams (``views``) and weak and strong augmentation (``augment``).
Which files a split holds and how labels encode classes are read from :mod:`s5geo.datasets`,
which needs no torch. Training install: torch and torchgeo are imported by the submodules.

May import: ``s5geo.datasets``, ``s5geo.config`` and ``s5geo.errors``.
"""
