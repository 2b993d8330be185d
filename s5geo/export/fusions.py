"""Graph rewrites of exported files that ONNX Runtime runs faster, with the same numbers.

MobileNetV3's activation, hard-swish (in every MobileNetV3 student preset), has no 8-bit kernel
in ONNX Runtime: torch exports it as one HardSwish node, which ONNX Runtime's quantization
pre-processing (``quant_pre_process``) expands into ``x * HardSigmoid(x)``, and in the INT8 file
either form runs in float between DequantizeLinear and QuantizeLinear (in the default recipe's
INT8 student, ONNX Runtime ran it as HardSigmoid + Mul: 13 % of the network's time, its quantize
and dequantize nodes on top). Written as ``x * Clip(x + 3, 0, 6) * (1/6)``, the
same function is made of operators that the quantizer does keep in 8 bits (QLinearAdd, a Clip
that folds into the quantization range, QLinearMul). Measured in docs/BENCHMARKS.md ("Hard-swish
in 8 bits").
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

# HardSwish(x) = x * max(0, min(1, x / 6 + 0.5)): the HardSigmoid it contains.
_ALPHA, _BETA = 1.0 / 6.0, 0.5
# Constants of the 8-bit form, shared by every rewritten activation.
_CONSTANTS = {"hswish_3": 3.0, "hswish_0": 0.0, "hswish_6": 6.0, "hswish_1_6": 1.0 / 6.0}


def _is_hard_swish_gate(node: onnx.NodeProto) -> bool:
    if node.op_type != "HardSigmoid":
        return False
    attrs = {a.name: a.f for a in node.attribute}  # ONNX's defaults: alpha 0.2, beta 0.5
    alpha, beta = attrs.get("alpha", 0.2), attrs.get("beta", 0.5)
    return abs(alpha - _ALPHA) < 1e-6 and abs(beta - _BETA) < 1e-6


def _hard_swishes(graph: onnx.GraphProto) -> list[tuple[list[onnx.NodeProto], str, str]]:
    """(nodes, x, y) of every hard-swish ``y = hardswish(x)``: a HardSwish node, or
    ``Mul(x, HardSigmoid(x))`` (alpha 1/6, beta 1/2) whose HardSigmoid feeds that Mul alone (a
    gate used elsewhere, as in squeeze-and-excitation blocks, is not a hard-swish)."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}
    found = []
    for node in graph.node:
        if node.op_type == "HardSwish":
            found.append(([node], node.input[0], node.output[0]))
            continue
        if not _is_hard_swish_gate(node):
            continue
        x, gate = node.input[0], node.output[0]
        users = consumers.get(gate, [])
        if gate in outputs or len(users) != 1:
            continue
        (mul,) = users
        if mul.op_type == "Mul" and sorted(mul.input) == sorted([x, gate]):
            found.append(([node, mul], x, mul.output[0]))
    return found


def hard_swish_for_int8(model: onnx.ModelProto) -> int:
    """Rewrite every hard-swish of ``model`` as ``Mul(Mul(x, Clip(Add(x, 3), 0, 6)), 1/6)`` in
    place, for the quantizer to keep in 8 bits. Returns the number rewritten.

    The float result equals HardSwish's up to rounding (a few ulp). Meant for the graph about to
    be quantized, not for FP32 files: there ONNX Runtime fuses HardSwish into the convolution.
    """
    graph = model.graph
    found = _hard_swishes(graph)
    if not found:
        return 0
    have = {i.name for i in graph.initializer}
    graph.initializer.extend(
        numpy_helper.from_array(np.array(v, np.float32), name)
        for name, v in _CONSTANTS.items()
        if name not in have
    )
    order = list(graph.node)
    for nodes, x, y in found:
        at = order.index(nodes[0])
        p = f"{y}/hswish8"
        chain = [
            helper.make_node("Add", [x, "hswish_3"], [f"{p}/shifted"], name=f"{p}/add"),
            helper.make_node(
                "Clip", [f"{p}/shifted", "hswish_0", "hswish_6"], [f"{p}/gate"], name=f"{p}/clip"
            ),
            helper.make_node("Mul", [x, f"{p}/gate"], [f"{p}/gated"], name=f"{p}/mul"),
            helper.make_node("Mul", [f"{p}/gated", "hswish_1_6"], [y], name=f"{p}/scale"),
        ]
        for node in nodes:
            order.remove(node)
        order[at:at] = chain
    del graph.node[:]
    graph.node.extend(order)
    return len(found)
