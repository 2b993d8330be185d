"""The unsupervised loss is masked by confidence and validity and normalised by valid pixels."""

import torch
import torch.nn.functional as F

from s5geo.train.losses import unsupervised_loss


def test_masked_and_normalised_by_valid_pixels() -> None:
    logits = torch.randn(1, 3, 2, 2)
    pseudo = torch.tensor([[[0, 1], [2, 0]]])
    conf = torch.tensor([[[0.99, 0.5], [0.97, 0.99]]])
    valid = torch.tensor([[[True, True], [True, False]]])
    ce = F.cross_entropy(logits, pseudo, reduction="none")
    expected = (ce[0, 0, 0] + ce[0, 1, 0]) / 3
    assert torch.allclose(unsupervised_loss(logits, pseudo, conf, valid, 0.95), expected)


def test_no_valid_pixels_gives_zero() -> None:
    logits = torch.randn(1, 2, 2, 2)
    zero = unsupervised_loss(
        logits, torch.zeros(1, 2, 2, dtype=torch.long), torch.ones(1, 2, 2),
        torch.zeros(1, 2, 2, dtype=torch.bool), 0.5,
    )  # fmt: skip
    assert zero.item() == 0.0
