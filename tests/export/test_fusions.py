"""Graph rewrites of exported files: the same numbers, fewer and faster nodes."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

torch = pytest.importorskip("torch")

from s5geo.export.fusions import hard_swish_for_int8  # noqa: E402
from s5geo.export.onnx_export import export_model  # noqa: E402
from s5geo.export.quantize import to_int8  # noqa: E402
from s5geo.infer import load_model  # noqa: E402
from s5geo.modelfile import ModelInfo  # noqa: E402

INFO = ModelInfo(
    class_names={0: "a", 1: "b", 2: "c"},
    class_colors={0: "#000000", 1: "#808080", 2: "#ffffff"},
    tile_size=32,
    bands=(1, 2, 3),
    input_scale=255.0,
    mean=(0.5, 0.5, 0.5),
    std=(0.25, 0.25, 0.25),
    architecture="hardswish-test",
)


class GatedNet(torch.nn.Module):
    """Two hard-swish activations and a hard-sigmoid gate on another tensor (squeeze-excitation)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.b = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.gate = torch.nn.Conv2d(8, 8, 1)
        self.head = torch.nn.Conv2d(8, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.nn.functional.hardswish(self.a(x))
        y = torch.nn.functional.hardswish(self.b(y))
        g = torch.nn.functional.hardsigmoid(self.gate(y.mean((2, 3), keepdim=True)))
        return self.head(y * g)


def test_int8_hard_swish_is_quantized_and_computes_the_same(tmp_path) -> None:
    windows = np.random.default_rng(0).normal(size=(4, 3, 32, 32)).astype(np.float32)
    fp32, int8 = tmp_path / "m.onnx", tmp_path / "m.int8.onnx"
    export_model(GatedNet().eval(), fp32, INFO, windows)
    to_int8(fp32, int8, windows)
    model = onnx.load(str(int8))
    ops = [n.op_type for n in model.graph.node]
    assert "HardSwish" not in ops
    # The gate multiplies another tensor (squeeze-excitation): it stays a HardSigmoid.
    assert ops.count("HardSigmoid") == 1
    # Both activations' Add and Muls take quantized inputs (the Clip folds into the Add's
    # quantization range): ONNX Runtime runs them as QLinearAdd / QLinearMul.
    made_by = {o: n.op_type for n in model.graph.node for o in n.output}
    rewritten = [
        n for n in model.graph.node if "/hswish8/" in n.name and n.op_type in ("Add", "Mul")
    ]
    assert sorted(n.op_type for n in rewritten) == ["Add"] * 2 + ["Mul"] * 4
    for node in rewritten:
        assert made_by.get(node.input[0]) == "DequantizeLinear", node.name
    probs, ref = load_model(int8).run(windows), load_model(fp32).run(windows)
    assert (probs.argmax(axis=1) == ref.argmax(axis=1)).mean() > 0.9
    np.testing.assert_allclose(probs, ref, atol=0.1)


def _graph(nodes: list[onnx.NodeProto]) -> onnx.ModelProto:
    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        nodes, "g", [value("x", TensorProto.FLOAT, [6])], [value("y", TensorProto.FLOAT, [6])]
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def _run(model: onnx.ModelProto) -> np.ndarray:
    import onnxruntime as ort

    x = np.array([-4.0, -3.0, -1.0, 0.5, 3.0, 7.5], np.float32)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


@pytest.mark.parametrize(
    ("nodes", "rewritten"),
    [
        ([helper.make_node("HardSwish", ["x"], ["y"])], 1),
        (
            [
                helper.make_node("HardSigmoid", ["x"], ["g"], alpha=1 / 6, beta=0.5),
                helper.make_node("Mul", ["g", "x"], ["y"]),
            ],
            1,
        ),
        (  # ONNX's default HardSigmoid (alpha 0.2) is not a hard-swish's gate
            [
                helper.make_node("HardSigmoid", ["x"], ["g"], alpha=0.2, beta=0.5),
                helper.make_node("Mul", ["g", "x"], ["y"]),
            ],
            0,
        ),
    ],
)
def test_hard_swish_is_rewritten_with_the_same_values(
    nodes: list[onnx.NodeProto], rewritten: int
) -> None:
    model = _graph(nodes)
    before = _run(model)
    assert hard_swish_for_int8(model) == rewritten
    onnx.checker.check_model(model)
    ops = [n.op_type for n in model.graph.node]
    assert ops == (["Add", "Clip", "Mul", "Mul"] if rewritten else ["HardSigmoid", "Mul"])
    np.testing.assert_allclose(_run(model), before, rtol=1e-6, atol=1e-6)
