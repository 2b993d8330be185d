"""Labelled datasets as files on disk: class maps and splits. No torch.

Holds the class maps of the benchmarks and scenes s5geo reads (``classes``: names, colours, how
label files encode classes) and which image and label files a split holds (``splits``: splits
files and split specs). Read by training (:mod:`s5geo.data` builds torch datasets on them) and by
the torch-free ONNX evaluation (:mod:`s5geo.evaluate`), so they belong to the deployment install.

May import: ``s5geo.errors`` (and numpy).
"""
