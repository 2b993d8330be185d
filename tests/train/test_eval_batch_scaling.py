"""Training validation (``val/miou``, which picks best.ckpt) scales each image once.

``SupervisedModule.eval_batch`` receives what the evaluation loaders give: raw uint8 images from
image folders (to be divided by ``data.input_scale``) and float windows in 0..1 from raster scenes
(scaled by their reader already). As in tests/train/test_evaluate_raster.py, the labels of a small
synthetic dataset are the module's own predictions for the correctly scaled image, so the right
scaling scores 100 mIoU and any other scaling scores clearly less. For uint8 images with
``input_scale`` 255 (the Dubai configs) the network input is bit-identical to the former
``image / 255`` computation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import write_scene
from PIL import Image

torch = pytest.importorskip("torch")

from torch.utils.data import DataLoader  # noqa: E402

import s5geo.train.modules as modules  # noqa: E402
from s5geo.config import Config, DataConfig, ModelConfig, TrainConfig, load_config  # noqa: E402
from s5geo.data.module import build_source  # noqa: E402
from s5geo.metrics import confusion_matrix, scores  # noqa: E402
from s5geo.train.inference import predict_probs  # noqa: E402
from s5geo.train.modules import SupervisedModule  # noqa: E402

SIZE = 64
CLASSES = 5  # the Dubai class map: label values 0..4
ODD_SCALE = 40.0  # an image-folder input_scale other than 255 (uint8 data with a low maximum)
DUBAI_RECIPE = Path(__file__).resolve().parents[2] / "configs" / "s4p" / "dubai_cpu.yaml"


def structured_image() -> np.ndarray:
    """uint8 [3, 64, 64] in 1..255 (0 is the raster reader's nodata): blocks of colour + noise."""
    rng = np.random.default_rng(0)
    raw = np.zeros((3, SIZE, SIZE), np.int64)
    raw[:, : SIZE // 2] = rng.integers(0, 256, (3, 1, 1))
    raw[:, SIZE // 2 :] = rng.integers(0, 256, (3, 1, 1))
    raw[:, :, :20] = 255 - raw[:, :, :20]
    raw += rng.integers(-40, 40, raw.shape)
    return raw.clip(1, 255).astype(np.uint8)


def miou(truth: np.ndarray, pred: np.ndarray) -> float:
    return 100 * float(scores(confusion_matrix(truth, pred, CLASSES))["miou"])


def make_module(input_scale: float) -> tuple[SupervisedModule, dict[str, np.ndarray]]:
    """A module with a random ViT whose classes depend on the input scale, and its classes for
    ``structured_image`` scaled three ways (by ``input_scale``, by 255, by 255 twice)."""
    torch.set_num_threads(1)
    raw = torch.from_numpy(structured_image()).float()
    model = ModelConfig(name="vit_tiny", num_classes=CLASSES, img_size=SIZE, decoder_channels=16)
    data = DataConfig(input_scale=input_scale, crop_size=SIZE)
    cfg = Config(model=model, data=data, train=TrainConfig(eval_tile=SIZE))
    for seed in range(20):
        torch.manual_seed(seed)
        module = SupervisedModule(cfg.to_dict()).eval()

        def classify(image01: torch.Tensor, module: SupervisedModule = module) -> np.ndarray:
            with torch.no_grad():
                x = module.normalise(image01.unsqueeze(0))[0]
                return predict_probs(module.net, x, CLASSES, tile=SIZE).argmax(0).numpy()

        preds = {
            "right": classify(raw / input_scale),
            "by255": classify(raw / 255.0),
            "twice": classify(raw / 255.0 / 255.0),
        }
        wrong = [miou(preds["right"], preds[k]) for k in ("by255", "twice")]
        if input_scale == 255.0:
            wrong = wrong[1:]
        if len(np.unique(preds["right"])) > 1 and max(wrong) < 60:
            return module, preds
    pytest.fail("no seed gave a network whose output depends on the input scale")


def validate(module: SupervisedModule, source: Any) -> float:
    """mIoU (percent) of the module's validation steps over ``source`` (batches of one)."""
    module.confmat.reset()
    with torch.no_grad():
        for i, batch in enumerate(DataLoader(source, batch_size=1)):
            module.validation_step(batch, i)
    cm = module.confmat.compute().numpy()
    assert cm.sum() == SIZE * SIZE
    return 100 * float(scores(cm)["miou"])


def test_raster_windows_are_not_divided_again(tmp_path: Path) -> None:
    module, preds = make_module(255.0)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    write_scene(tmp_path / "images" / "scene_a.tif", structured_image(), nodata=0)
    write_scene(tmp_path / "masks" / "scene_a.tif", preds["right"].astype(np.uint8)[None])
    (tmp_path / "splits.json").write_text(json.dumps({"val": ["scene_a"]}))
    data = DataConfig(kind="raster", root=str(tmp_path), class_map="dubai", crop_size=SIZE)
    source = build_source(data, "val")
    assert source[0]["image"].dtype == torch.float32  # already 0..1
    assert validate(module, source) == pytest.approx(100.0)
    assert miou(preds["right"], preds["twice"]) < 60  # what dividing again scored


def test_image_folder_uses_input_scale(tmp_path: Path) -> None:
    module, preds = make_module(ODD_SCALE)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.fromarray(np.moveaxis(structured_image(), 0, -1)).save(tmp_path / "images" / "a.png")
    Image.fromarray(preds["right"].astype(np.uint8)).save(tmp_path / "masks" / "a.png")
    (tmp_path / "splits.json").write_text(json.dumps({"val": ["a"]}))
    data = DataConfig(root=str(tmp_path), class_map="dubai", input_scale=ODD_SCALE)
    source = build_source(data, "val")
    assert source[0]["image"].dtype == torch.uint8
    assert validate(module, source) == pytest.approx(100.0)
    assert miou(preds["right"], preds["by255"]) < 60  # what dividing by 255 scored


def test_dubai_uint8_input_is_bit_identical(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the Dubai recipe's data section (uint8, input_scale 255) the network receives exactly
    ``normalise(image.float() / 255)``, as before the fix."""
    cfg = load_config(DUBAI_RECIPE)
    assert cfg.data.input_scale == 255.0
    cfg.model = ModelConfig(
        name="vit_tiny", num_classes=CLASSES, img_size=SIZE, decoder_channels=16
    )
    torch.manual_seed(0)
    module = SupervisedModule(cfg.to_dict()).eval()
    seen: list[torch.Tensor] = []

    def spy(net: Any, x: torch.Tensor, k: int, tile: int) -> torch.Tensor:
        seen.append(x.clone())
        return torch.zeros((k, *x.shape[-2:]))

    monkeypatch.setattr(modules, "predict_probs", spy)
    rng = np.random.default_rng(1)
    image = torch.from_numpy(rng.integers(0, 256, (2, 3, 37, 53), dtype=np.uint8))
    mask = torch.zeros((2, 37, 53), dtype=torch.int64)
    module.eval_batch({"image": image, "mask": mask})
    assert len(seen) == 2
    for got, img in zip(seen, image, strict=True):
        expected = module.normalise(img.float().unsqueeze(0) / 255.0)[0]
        assert torch.equal(got, expected)
