"""A segmentation conv net of realistic cost (about 30 GFLOP per 512x512 tile) as an ONNX file.

A small U-Net-like encoder-decoder with random He-initialised weights: the benchmarks measure
speed and memory, not accuracy, so what matters is that its arithmetic is that of a real model.
Written with onnx.helper so the benchmark needs no torch.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from s5geo.export.probs import softmax_nodes
from s5geo.modelfile import ModelInfo, write_metadata


class _Graph:
    def __init__(self, seed: int = 0) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.rng = np.random.default_rng(seed)
        self.flops = 0.0
        self.n = 0

    def _name(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def conv(self, x: str, cin: int, cout: int, k: int, side: int, relu: bool = True) -> str:
        w = self.rng.normal(0, np.sqrt(2.0 / (cin * k * k)), (cout, cin, k, k)).astype(np.float32)
        wn, bn, out = self._name("w"), self._name("b"), self._name("conv")
        self.inits += [numpy_helper.from_array(w, wn),
                       numpy_helper.from_array(np.zeros(cout, np.float32), bn)]  # fmt: skip
        self.nodes.append(
            helper.make_node("Conv", [x, wn, bn], [out], kernel_shape=[k, k], pads=[k // 2] * 4)
        )
        self.flops += 2.0 * cin * cout * k * k * side * side
        if not relu:
            return out
        act = self._name("relu")
        self.nodes.append(helper.make_node("Relu", [out], [act]))
        return act

    def save(self, path: Path, name: str, logits: str, bands: int, classes: int, tile: int) -> None:
        """Close the graph with a softmax over ``logits`` and save it as an ONNX file."""
        nodes, constants = softmax_nodes(logits, "probs")  # as s5geo export ends its files
        self.nodes += nodes
        self.inits += constants
        graph = helper.make_graph(
            self.nodes,
            name,
            [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", bands, tile, tile])],
            [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", classes, tile, tile])],
            initializer=self.inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        onnx.save(model, str(path))

    def op(self, kind: str, inputs: list[str], **attrs: object) -> str:
        out = self._name(kind.lower())
        self.nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out


def build_convnet(path: Path, bands: int = 4, classes: int = 4, tile: int = 512) -> float:
    """Write the model with s5geo metadata to ``path``; return its GFLOP per tile."""
    g = _Graph()
    s = tile
    e1 = g.conv(g.conv("image", bands, 32, 3, s), 32, 32, 3, s)
    p1 = g.op("MaxPool", [e1], kernel_shape=[2, 2], strides=[2, 2])
    e2 = g.conv(g.conv(p1, 32, 64, 3, s // 2), 64, 64, 3, s // 2)
    p2 = g.op("MaxPool", [e2], kernel_shape=[2, 2], strides=[2, 2])
    e3 = g.conv(g.conv(p2, 64, 128, 3, s // 4), 128, 128, 3, s // 4)
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "up2")
    g.inits.append(scales)
    d2 = g.op("Resize", [g.conv(e3, 128, 64, 1, s // 4), "", "up2"], mode="nearest")
    d2 = g.conv(g.op("Add", [d2, e2]), 64, 64, 3, s // 2)
    d1 = g.op("Resize", [g.conv(d2, 64, 32, 1, s // 2), "", "up2"], mode="nearest")
    d1 = g.conv(g.op("Add", [d1, e1]), 32, 32, 3, s)
    logits = g.conv(d1, 32, classes, 1, s, relu=False)
    g.save(path, "bench_convnet", logits, bands, classes, tile)
    write_metadata(
        path,
        ModelInfo(
            class_names={i: f"class {i}" for i in range(classes)},
            tile_size=tile,
            overlap_pct=10.0,
            bands=tuple(range(1, bands + 1)),
            input_scale=255.0,
            mean=(0.5,) * bands,
            std=(0.25,) * bands,
            architecture=f"bench-convnet ({g.flops / 1e9:.1f} GFLOP/tile, random weights)",
        ),
    )
    return g.flops / 1e9


def build_null_net(path: Path, like: ModelInfo) -> None:
    """A network that costs next to nothing, with ``like``'s bands, classes and tiling.

    One 1x1 convolution and a softmax: timed through `s5geo predict` and the bare loop, it shows
    what reading, normalising, blending and writing cost on their own, the ceiling that no faster
    network can pass (bench_predict.py models --null).
    """
    g = _Graph()
    bands, classes, tile = len(like.bands), like.num_classes, like.tile_size
    logits = g.conv("image", bands, classes, 1, tile, relu=False)
    g.save(path, "bench_null_net", logits, bands, classes, tile)
    write_metadata(path, replace(like, architecture="bench-null-net (one 1x1 convolution)"))
