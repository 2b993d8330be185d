"""Weak view geometry is shared by image, label and validity; CutMix boxes follow the recipe."""

import random

import torch

from s5geo.data.augment import apply_cutmix, cutmix_boxes, weak_view


def labelled_image(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A label map of vertical stripes and an image whose red channel encodes it."""
    mask = (torch.arange(w) // 8 % 5).expand(h, w).clone()
    image = torch.zeros(3, h, w, dtype=torch.uint8)
    image[0] = (mask * 50).to(torch.uint8)
    image[1] = 255
    return image, mask


def test_identical_geometry_on_image_label_and_valid() -> None:
    image, mask = labelled_image(40, 64)
    for seed in range(20):
        view = weak_view(image, mask, 48, (1.0, 1.0), rotation=True, rng=random.Random(seed))
        valid = view["valid"]
        assert torch.equal(view["mask"][~valid], torch.full_like(view["mask"][~valid], 255))
        assert (view["image"][:, ~valid] == 0).all()
        assert (view["image"][1, valid] == 1).all()  # image content exactly where valid
        expected = (view["image"][0] * 255 / 50).round().long()
        assert torch.equal(view["mask"][valid], expected[valid])


def test_rescale_keeps_alignment_and_crop_size() -> None:
    image, mask = labelled_image(64, 64)
    for seed in range(10):
        view = weak_view(image, mask, 32, (0.5, 2.0), rng=random.Random(seed))
        assert view["image"].shape == (3, 32, 32) and view["mask"].shape == (32, 32)
        valid = view["valid"]
        expected = (view["image"][0] * 255 / 50).round().long()
        agree = (view["mask"][valid] == expected[valid]).float().mean()
        assert agree > 0.8  # bilinear vs nearest differ only on stripe borders


def test_extra_channels_follow_the_image_geometry() -> None:
    """Soft labels given as ``extra`` get the image's crop, rescale, padding, flips, rotation."""
    image, mask = labelled_image(40, 64)
    extra = torch.cat([image.float() / 255, mask.unsqueeze(0).float()])
    for seed in range(20):
        plain = weak_view(image, mask, 48, (0.5, 2.0), rotation=True, rng=random.Random(seed))
        view = weak_view(
            image, mask, 48, (0.5, 2.0), rotation=True, rng=random.Random(seed), extra=extra
        )
        assert torch.equal(view["image"], plain["image"])  # extra changes nothing else
        assert view["extra"].shape == (4, 48, 48)
        assert torch.allclose(view["extra"][:3], view["image"], atol=1e-6)
        assert (view["extra"][3][~view["valid"]] == 0).all()  # padded with 0


def test_unlabeled_view_has_ignore_mask() -> None:
    image, _ = labelled_image(20, 20)
    view = weak_view(image, None, 16, rng=random.Random(0))
    assert (view["mask"] == 255).all()


def test_cutmix_boxes_and_mixing() -> None:
    g = torch.Generator().manual_seed(0)
    boxes = cutmix_boxes(200, 64, 64, p=0.5, generator=g)
    areas = boxes.flatten(1).float().mean(1)
    mixed = areas > 0
    assert 0.35 < mixed.float().mean() < 0.65
    assert (areas[mixed] >= 0.015).all() and (areas[mixed] <= 0.41).all()
    target, source = torch.zeros(200, 64, 64), torch.ones(200, 64, 64)
    assert torch.equal(apply_cutmix(boxes, target, source), boxes.float())


def test_uint8_images_scale_by_the_configs_input_scale() -> None:
    """Training views use data.input_scale like evaluation and the model file (not a fixed 255)."""
    image = torch.full((3, 16, 16), 40, dtype=torch.uint8)
    for scale, expected in ((255.0, 40 / 255), (40.0, 1.0)):
        view = weak_view(image, None, 16, (1.0, 1.0), input_scale=scale, rng=random.Random(0))
        assert torch.allclose(view["image"], torch.full_like(view["image"], expected))
    floats = torch.full((3, 16, 16), 0.25)  # raster windows arrive scaled by their reader
    view = weak_view(floats, None, 16, (1.0, 1.0), input_scale=40.0, rng=random.Random(0))
    assert torch.allclose(view["image"], floats)
