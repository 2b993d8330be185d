"""Checkpoint evaluation scales each image once: raster windows arrive in 0..1, image folders raw.

The labels of a small synthetic dataset are the checkpoint's own predictions for the correctly
scaled image (computed here with the network and the tiled predictor), so the right scaling
scores 100 mIoU and dividing raster windows by ``data.input_scale`` a second time scores lower.
The same image is evaluated as a georeferenced raster dataset (``data.kind: raster``, read
through torchgeo) and as an image folder (PNG, raw uint8).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import write_scene
from PIL import Image

torch = pytest.importorskip("torch")

from s5geo.config import Config, DataConfig, ModelConfig, TrainConfig  # noqa: E402
from s5geo.metrics import confusion_matrix, scores  # noqa: E402
from s5geo.models import build_network  # noqa: E402
from s5geo.train.evaluate import evaluate_checkpoint  # noqa: E402
from s5geo.train.inference import predict_probs  # noqa: E402

SIZE = 64
CLASSES = 5  # the Dubai class map: label values 0..4
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(-1, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(-1, 1, 1)


def structured_image() -> np.ndarray:
    """uint8 [3, 64, 64] in 1..255 (0 is the raster reader's nodata): blocks of colour + noise."""
    rng = np.random.default_rng(0)
    raw = np.zeros((3, SIZE, SIZE), np.int64)
    raw[:, : SIZE // 2] = rng.integers(0, 256, (3, 1, 1))
    raw[:, SIZE // 2 :] = rng.integers(0, 256, (3, 1, 1))
    raw[:, :, :20] = 255 - raw[:, :, :20]
    raw += rng.integers(-40, 40, raw.shape)
    return raw.clip(1, 255).astype(np.uint8)


def classify(net: torch.nn.Module, image01: torch.Tensor) -> np.ndarray:
    """Classes of the network for an image already in 0..1, tiled as evaluation tiles it."""
    return predict_probs(net, (image01 - MEAN) / STD, CLASSES, tile=SIZE).argmax(0).numpy()


def miou(truth: np.ndarray, pred: np.ndarray) -> float:
    return 100 * float(scores(confusion_matrix(truth, pred, CLASSES))["miou"])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    """A small ViT checkpoint whose predictions depend on the input scale, its labels for
    ``structured_image`` (right scaling) and its predictions under double scaling."""
    torch.set_num_threads(1)
    raw = torch.from_numpy(structured_image()).float()
    model = ModelConfig(name="vit_tiny", num_classes=CLASSES, img_size=SIZE, decoder_channels=16)
    for seed in range(10):  # a random network that tells the two scalings apart
        torch.manual_seed(seed)
        net = build_network(model).eval()
        labels = classify(net, raw / 255.0).astype(np.uint8)
        double = classify(net, raw / 255.0 / 255.0)
        if len(np.unique(labels)) > 1 and miou(labels, double) < 60:
            break
    else:  # pragma: no cover - depends on torch's random initialisation only
        pytest.fail("no seed gave a network whose output depends on the input scale")
    cfg = Config(model=model, data=DataConfig(), train=TrainConfig(eval_tile=SIZE))
    path = tmp_path_factory.mktemp("ckpt") / "run.ckpt"
    state = {f"net.{k}": v for k, v in net.state_dict().items()}
    torch.save({"hyper_parameters": {"config": cfg.to_dict()}, "state_dict": state}, path)
    return path, labels, double


def test_raster_windows_are_not_scaled_twice(tmp_path: Path, checkpoint) -> None:
    path, labels, double = checkpoint
    image = structured_image()
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    write_scene(tmp_path / "images" / "scene_a.tif", image, nodata=0)
    write_scene(tmp_path / "masks" / "scene_a.tif", labels[None])
    (tmp_path / "splits.json").write_text(json.dumps({"test": ["scene_a"]}))
    data = DataConfig(
        kind="raster", root=str(tmp_path), class_map="dubai", crop_size=SIZE,
        image_glob="*.tif", label_glob="*.tif",
    )  # fmt: skip
    result = evaluate_checkpoint(path, data, "test", out_dir=tmp_path / "eval", threads=1)
    assert result["pixels"] == SIZE * SIZE
    assert result["miou"] == pytest.approx(100.0)
    assert miou(labels, double) < 60  # what scaling the windows twice scores
    assert json.loads((tmp_path / "eval" / "test.json").read_text())["miou"] == result["miou"]


def test_image_folder_images_are_scaled_once(tmp_path: Path, checkpoint) -> None:
    path, labels, _ = checkpoint
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.fromarray(np.moveaxis(structured_image(), 0, -1)).save(tmp_path / "images" / "a.png")
    Image.fromarray(labels).save(tmp_path / "masks" / "a.png")
    (tmp_path / "splits.json").write_text(json.dumps({"test": ["a"]}))
    data = DataConfig(
        kind="image_folder", root=str(tmp_path), class_map="dubai",
        image_glob="*.png", label_glob="*.png",
    )  # fmt: skip
    out = tmp_path / "eval"
    result = evaluate_checkpoint(path, data, "ids=a", out_dir=out, threads=1)
    assert result["miou"] == pytest.approx(100.0) and result["pixels"] == SIZE * SIZE
    assert (out / "ids_a.json").is_file()  # split specs become file-safe names
