"""Sliding-window prediction with a torch model (s5geo.train.inference)."""

from __future__ import annotations

import torch
from torch import nn

from s5geo.train.inference import predict_probs


def test_predict_probs_covers_the_image_and_channels_last_changes_nothing() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1)
    ).eval()
    image = torch.randn(3, 100, 150)  # not a multiple of 32: padded, then cropped back
    probs = predict_probs(net, image, 3, tile=64)
    assert probs.shape == (3, 100, 150)
    assert torch.allclose(probs.sum(0), torch.ones(100, 150), atol=1e-5)
    whole = net(image.unsqueeze(0)).softmax(1)[0]  # 3x3 convs: agree where one window covers
    assert torch.allclose(probs[:, 2:34, 2:34], whole[:, 2:34, 2:34], atol=1e-5)
    net.to(memory_format=torch.channels_last)
    fast = predict_probs(net, image, 3, tile=64, channels_last=True)
    assert torch.allclose(fast, probs, atol=1e-5)
