"""Behaviour of the distillation losses (docs/methods.md, SSKD and MCKD)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from s5geo.distill.losses import (  # noqa: E402
    PixelContrastLoss,
    annealed_temperature,
    connected_regions,
    dice_loss,
    kd_kl,
    negative_weights,
    weighted_terms,
)


def test_kd_is_zero_when_student_equals_teacher_and_positive_otherwise() -> None:
    logits = torch.randn(2, 5, 8, 8)
    valid = torch.ones(2, 8, 8, dtype=torch.bool)
    for t in (1.0, 4.0, 10.0):
        assert kd_kl(logits, logits.clone(), valid, t).abs() < 1e-6
        assert kd_kl(logits, torch.randn(2, 5, 8, 8), valid, t) > 0


def test_kd_ignores_invalid_pixels_and_scales_with_t_squared() -> None:
    student, teacher = torch.randn(1, 3, 4, 4), torch.randn(1, 3, 4, 4)
    valid = torch.zeros(1, 4, 4, dtype=torch.bool)
    assert kd_kl(student, teacher, valid, 2.0) == 0
    valid[0, 0, 0] = True
    # the softened KL shrinks like 1/T^2; the T^2 factor makes it converge (to logit matching)
    high, higher = kd_kl(student, teacher, valid, 10.0), kd_kl(student, teacher, valid, 50.0)
    assert higher > 0 and torch.isclose(high, higher, rtol=0.1)


def test_dice_is_zero_for_a_perfect_prediction_and_ignores_ignore_index() -> None:
    target = torch.randint(0, 3, (2, 6, 6))
    perfect = torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float() * 100
    assert dice_loss(perfect, target, 255) < 1e-3
    target_ign = target.clone()
    target_ign[:, :3] = 255
    wrong = perfect.clone()
    wrong[:, :, :3] = -perfect[:, :, :3]  # wrong only where ignored
    assert dice_loss(wrong, target_ign, 255) < 1e-3


def test_mckd_weights_combine_ce_dice_kl() -> None:
    logits = torch.randn(1, 4, 5, 5, requires_grad=True)
    soft = torch.randn(1, 4, 5, 5)
    hard = soft.argmax(1)
    valid = torch.ones(1, 5, 5, dtype=torch.bool)
    terms = weighted_terms(logits, hard, soft, valid, 0.7, 0.2, 0.1, 10.0, 255)
    assert set(terms) == {"ce", "dice", "kl"}
    only_ce = weighted_terms(logits, hard, None, valid, 1.0, 0.0, 0.0, 10.0, 255)
    assert set(only_ce) == {"ce"}
    with pytest.raises(ValueError):
        weighted_terms(logits, hard, None, valid, 0.0, 0.0, 1.0, 10.0, 255)


def test_connected_regions_split_same_class_regions() -> None:
    labels = torch.tensor([[[1, 1, 0, 1], [1, 0, 0, 1], [0, 0, 2, 2]]])
    ids = connected_regions(labels)[0]
    assert ids[0, 0] == ids[0, 1] == ids[1, 0]  # left building
    assert ids[0, 3] == ids[1, 3]  # right building
    assert ids[0, 0] != ids[0, 3]  # same class, not connected: two instances
    assert ids[0, 2] == ids[2, 0]  # land connected around the corner
    assert ids[2, 2] == ids[2, 3] != ids[0, 2]


def _flood_fill_regions(labels: list[list[int]]) -> list[list[int]]:
    """Reference labelling: breadth-first flood fill, region id = its largest flat index."""
    h, w = len(labels), len(labels[0])
    out = [[-1] * w for _ in range(h)]
    for y0 in range(h):
        for x0 in range(w):
            if out[y0][x0] >= 0:
                continue
            region, todo = [], [(y0, x0)]
            out[y0][x0] = 0
            while todo:
                y, x = todo.pop()
                region.append((y, x))
                for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                    inside = 0 <= ny < h and 0 <= nx < w
                    if inside and out[ny][nx] < 0 and labels[ny][nx] == labels[y][x]:
                        out[ny][nx] = 0
                        todo.append((ny, nx))
            top = max(y * w + x for y, x in region)
            for y, x in region:
                out[y][x] = top
    return out


def test_connected_regions_match_flood_fill_on_random_and_spiral_maps() -> None:
    gen = torch.Generator().manual_seed(0)
    maps = [torch.randint(0, 3, (12, 15), generator=gen) for _ in range(3)]
    spiral = torch.zeros(11, 11, dtype=torch.long)  # one long winding region of class 1
    for i in range(0, 6, 2):
        spiral[i, i : 11 - i] = spiral[10 - i, i : 11 - i] = 1
        spiral[i : 11 - i, 10 - i] = 1
        spiral[i + 2 : 11 - i, i] = 1
        if i + 2 < 11 - i:
            spiral[i + 2, i : i + 2] = 1
    maps.append(spiral)
    for labels in maps:
        expected = torch.tensor(_flood_fill_regions(labels.tolist()))
        assert torch.equal(connected_regions(labels.unsqueeze(0))[0], expected)


def test_negative_weights_follow_fused_scores() -> None:
    p = torch.tensor([[0.6, 0.4], [0.6, 0.4], [0.0, 1.0]])
    inst = torch.tensor([0, 1, 2])
    w = negative_weights(p, inst, p, inst, eps=0.0)
    assert w[0, 0] == 0  # own instance: 1 - (1 + 0.52) < 0 -> 0
    assert torch.isclose(w[0, 1], torch.tensor(0.48))  # same class, other instance
    assert torch.isclose(w[0, 2], torch.tensor(0.6))  # other class: most likely negative


def _instances_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two images, each with two separate same-class blobs (soft probs) on another class."""
    probs = torch.zeros(2, 2, 8, 8)
    probs[:, 0] = 0.9
    probs[:, 1] = 0.1
    for b in range(2):
        probs[b, :, 1:3, 1:3] = torch.tensor([0.4, 0.6]).view(2, 1, 1)
        probs[b, :, 5:7, 5:7] = torch.tensor([0.4, 0.6]).view(2, 1, 1)
    inst = connected_regions(probs.argmax(1))
    inst = inst + torch.arange(2).view(2, 1, 1) * 64
    image = torch.arange(2).view(2, 1, 1).expand(2, 8, 8)
    return probs.permute(0, 2, 3, 1).reshape(-1, 2), inst.reshape(-1), image.reshape(-1)


def test_negatives_never_from_own_instance_when_eps_is_zero() -> None:
    flat_p, flat_inst, flat_img = _instances_batch()
    loss = PixelContrastLoss(4, negatives=50, anchors=128, pool=128, eps=0.0, same_image=True)
    gen = torch.Generator().manual_seed(0)
    a_idx, neg = loss.select(flat_p, flat_inst, flat_img, gen)
    assert a_idx.numel() > 0
    assert not (flat_inst[neg] == flat_inst[a_idx].unsqueeze(1)).any()
    # same-class pixels of the *other* blob are still drawn sometimes (instance-aware, not class)
    blob = flat_p[a_idx, 1] > 0.5
    assert (flat_p[neg[blob], 1] > 0.5).any()


def test_negatives_come_from_other_images_by_default() -> None:
    flat_p, flat_inst, flat_img = _instances_batch()
    loss = PixelContrastLoss(4, negatives=20, anchors=64, pool=128, eps=1e-3)
    a_idx, neg = loss.select(flat_p, flat_inst, flat_img, torch.Generator().manual_seed(1))
    assert (flat_img[neg] != flat_img[a_idx].unsqueeze(1)).all()


def test_gradients_flow_only_through_the_anchor_branch() -> None:
    torch.manual_seed(0)
    loss = PixelContrastLoss(8, proj_dim=4, negatives=10, anchors=32, pool=64)
    weak = torch.randn(2, 8, 8, 8, requires_grad=True)
    strong = torch.randn(2, 8, 8, 8, requires_grad=True)
    probs = torch.rand(2, 3, 8, 8).softmax(1)
    valid = torch.ones(2, 8, 8, dtype=torch.bool)
    value = loss(weak, strong, probs, valid, tau=0.3)
    value.backward()
    assert value > 0
    assert weak.grad is not None and weak.grad.abs().sum() > 0
    assert strong.grad is None
    assert all(p.grad is not None for p in loss.proj.parameters())


def test_identical_views_give_lower_loss_than_unrelated_views() -> None:
    torch.manual_seed(0)
    loss = PixelContrastLoss(8, proj_dim=8, negatives=50, anchors=64, pool=128)
    weak = torch.randn(4, 8, 8, 8)
    probs = torch.rand(4, 3, 8, 8).softmax(1)
    valid = torch.ones(4, 8, 8, dtype=torch.bool)
    same = loss(weak, weak.clone(), probs, valid, tau=0.1)
    other = loss(weak, torch.randn(4, 8, 8, 8), probs, valid, tau=0.1)
    assert same < other


def test_temperature_anneals_from_start_to_end() -> None:
    assert annealed_temperature(0.0) == pytest.approx(0.3)
    assert annealed_temperature(1.0) == pytest.approx(0.07)
    assert annealed_temperature(2.0) == pytest.approx(0.07)
    assert 0.07 < annealed_temperature(0.5) < 0.3
