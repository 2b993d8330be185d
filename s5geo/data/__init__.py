"""Data for training and evaluation: datasets, samplers, weak/strong views, class maps.

Torch and torchgeo are imported by the submodules; this package is on the training side only.
"""
