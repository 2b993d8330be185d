"""The tail every exported model file ends with: class probabilities from logits.

Needs onnx but not torch, so benchmarks that build model files by hand (bench/convnet.py) end
them the same way.
"""

from __future__ import annotations

import onnx
from onnx import helper

# Prefix of the nodes that compute ``probs`` from ``logits``; quantize.py keeps them in float.
PROBS_PREFIX = "probs/"


def softmax_nodes(logits: str, probs: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Nodes (and their constant) computing ``probs`` = softmax of ``logits`` over axis 1.

    Written out as exp(x - max) / sum instead of one Softmax node: ONNX Runtime's CPU Softmax over
    an axis that is not the last one (here the class axis of NCHW) transposes the tensor there and
    back (microsoft/onnxruntime#5707) and took 233 ms for a batch of 4 x 6 x 512 x 512, where these
    five elementwise and reduction nodes take 19 ms (1 thread, ONNX Runtime 1.32; it
    was 36 % of the bundled student's time, docs/BENCHMARKS.md). Same probabilities (the max is
    subtracted, so large logits do not overflow). The reductions take their axes as an input:
    the graph needs opset 18 or later.
    """
    axes = helper.make_tensor(f"{PROBS_PREFIX}axes", onnx.TensorProto.INT64, [1], [1])
    p = PROBS_PREFIX
    nodes = [
        helper.make_node("ReduceMax", [logits, axes.name], [f"{p}max"], name=f"{p}max", keepdims=1),
        helper.make_node("Sub", [logits, f"{p}max"], [f"{p}shifted"], name=f"{p}shift"),
        helper.make_node("Exp", [f"{p}shifted"], [f"{p}exp"], name=f"{p}exp"),
        helper.make_node(
            "ReduceSum", [f"{p}exp", axes.name], [f"{p}sum"], name=f"{p}sum", keepdims=1
        ),
        helper.make_node("Div", [f"{p}exp", f"{p}sum"], [probs], name=f"{p}normalise"),
    ]
    return nodes, [axes]
