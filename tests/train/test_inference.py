"""Sliding-window prediction with a torch model (s5geo.train.inference)."""

from __future__ import annotations

import torch

from s5geo.config import ModelConfig
from s5geo.distill.students import build_student
from s5geo.train.inference import predict_probs


def test_predict_probs_covers_the_image_and_channels_last_changes_nothing() -> None:
    torch.manual_seed(0)
    net = build_student(
        ModelConfig(name="smp:FPN:tu-mobilenetv3_small_100", num_classes=3, decoder_channels=32)
    ).eval()
    image = torch.randn(3, 100, 150)  # not a multiple of 32: padded, then cropped back
    probs = predict_probs(net, image, 3, tile=64)
    assert probs.shape == (3, 100, 150)
    assert torch.allclose(probs.sum(0), torch.ones(100, 150), atol=1e-5)
    net.to(memory_format=torch.channels_last)
    fast = predict_probs(net, image, 3, tile=64, channels_last=True)
    assert torch.allclose(fast, probs, atol=1e-5)
