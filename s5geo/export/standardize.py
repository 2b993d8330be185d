"""Per-band standardisation moved into the exported graph.

A run standardises its inputs as ``(x / input_scale - mean) / std``. Written only as metadata
(``standardization_mean``/``_std``), that step is redone by each tool that runs the file: s5geo and
Deepness do, but GeoDeep reads the Deepness keys and feeds ``x / 255`` alone, so a file that
leaves the step to it is fed inputs the network never saw. ``s5geo export`` therefore puts the
step into the graph (two elementwise nodes on the input, next to nothing beside the network) and
writes mean 0 and std 1: tools then feed the same ``x / input_scale`` and get the same classes
(GeoDeep always divides by 255, so exactly only for 8-bit models, ``input_scale`` 255). The run's
own values are kept in ``s5geo.recipe`` under ``standardization``, and its mean becomes
``s5geo.fill``: what s5geo feeds for padding and nodata (before, 0 after standardising, which is
that mean; with the step in the graph a 0 would be a black pixel).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from s5geo.modelfile import ModelInfo


class Standardized(torch.nn.Module):
    """``net`` after ``(x - mean) / std`` per band, for inputs already divided by the scale.

    Written here because torchvision's ``Normalize`` does not pass ``torch.export`` (the ONNX
    exporter's tracer) and kornia's wraps the input in two reshapes; this is a Sub and a Div.
    """

    def __init__(self, net: torch.nn.Module, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.net = net
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


def standardize_in_graph(net: torch.nn.Module, info: ModelInfo) -> tuple[Standardized, ModelInfo]:
    """``net`` with its standardisation inside, and the metadata that now says mean 0, std 1."""
    bands = len(info.bands)
    moved = replace(
        info,
        mean=(0.0,) * bands,
        std=(1.0,) * bands,
        recipe={**info.recipe, "standardization": {"mean": list(info.mean), "std": list(info.std)}},
        fill=tuple(info.mean),
    )
    return Standardized(net, info.mean, info.std).eval(), moved
