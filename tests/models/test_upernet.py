"""UperNet's pyramid pooling keeps PyTorch's bins when exported with symbolic height/width."""

import numpy as np
import pytest
import torch

from s5geo.models.upernet import AdaptiveAvgPool

ort = pytest.importorskip("onnxruntime")
SCALES = (1, 2, 3, 6)


class Pyramid(torch.nn.Module):
    """The four pooling scales of UperNet, flattened side by side (one export for all)."""

    def __init__(self) -> None:
        super().__init__()
        self.pools = torch.nn.ModuleList(AdaptiveAvgPool(s) for s in SCALES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([pool(x).flatten(2) for pool in self.pools], dim=2)


def test_exported_pooling_matches_pytorch_at_sizes_other_than_the_example(tmp_path) -> None:
    path = tmp_path / "pool.onnx"
    dims = {2: torch.export.Dim("h", min=8, max=512), 3: torch.export.Dim("w", min=8, max=512)}
    torch.onnx.export(Pyramid(), (torch.zeros(1, 2, 32, 32),), str(path), dynamo=True,
                      dynamic_shapes=(dims,), input_names=["x"], external_data=False)  # fmt: skip
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for h, w in [(32, 32), (16, 16), (24, 17), (9, 14), (100, 64)]:  # uneven bins included
        x = rng.uniform(0, 10, size=(1, 2, h, w)).astype(np.float32)
        expected = torch.cat(
            [torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(x), s).flatten(2)
             for s in SCALES], dim=2,
        ).numpy()  # fmt: skip
        np.testing.assert_allclose(session.run(None, {"x": x})[0], expected, atol=1e-4)


def test_eager_pooling_is_pytorchs() -> None:
    x = torch.rand(2, 3, 13, 21)
    torch.testing.assert_close(AdaptiveAvgPool(6)(x), torch.nn.AdaptiveAvgPool2d(6)(x))
