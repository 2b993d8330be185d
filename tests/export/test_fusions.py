"""Graph rewrites of exported files: the same numbers, fewer and faster nodes."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

torch = pytest.importorskip("torch")

from s5geo.export.fusions import fuse_hard_swish  # noqa: E402
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


def test_int8_hard_swish_is_one_node_and_computes_the_same(tmp_path) -> None:
    windows = np.random.default_rng(0).normal(size=(4, 3, 32, 32)).astype(np.float32)
    fp32, int8 = tmp_path / "m.onnx", tmp_path / "m.int8.onnx"
    export_model(GatedNet().eval(), fp32, INFO, windows)
    to_int8(fp32, int8, windows)
    ops = [n.op_type for n in onnx.load(str(int8)).graph.node]
    assert ops.count("HardSwish") == 2
    assert ops.count("HardSigmoid") == 1  # the gate multiplies another tensor: left alone
    probs, ref = load_model(int8).run(windows), load_model(fp32).run(windows)
    assert (probs.argmax(axis=1) == ref.argmax(axis=1)).mean() > 0.9
    np.testing.assert_allclose(probs, ref, atol=0.1)


def _graph_with_gate(alpha: float) -> onnx.ModelProto:
    nodes = [
        helper.make_node("HardSigmoid", ["x"], ["g"], alpha=alpha, beta=0.5),
        helper.make_node("Mul", ["g", "x"], ["y"]),
    ]
    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        nodes, "g", [value("x", TensorProto.FLOAT, [4])], [value("y", TensorProto.FLOAT, [4])]
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


@pytest.mark.parametrize(("alpha", "fused"), [(1 / 6, 1), (0.2, 0)])
def test_only_the_hard_swish_gate_is_fused(alpha: float, fused: int) -> None:
    import onnxruntime as ort

    x = {"x": np.array([-4.0, -1.0, 0.5, 3.5], np.float32)}

    def run(m: onnx.ModelProto) -> np.ndarray:
        session = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        return session.run(None, x)[0]

    model = _graph_with_gate(alpha)
    before = run(model)
    assert fuse_hard_swish(model) == fused
    onnx.checker.check_model(model)
    assert [n.op_type for n in model.graph.node] == (
        ["HardSwish"] if fused else ["HardSigmoid", "Mul"]
    )
    np.testing.assert_array_equal(run(model), before)
