"""ONNX evaluation through the tiled predictor (deployment install): Dubai's splits file and the
benchmarks' distributed layouts, split resolution, bands and label decoding as in training."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from helpers import ROOT, build_perpixel_model, perpixel_reference
from PIL import Image
from rasterio.transform import from_origin

from s5geo.config import DataConfig, load_config
from s5geo.datasets.classes import get_class_map
from s5geo.errors import UserError
from s5geo.evaluate import evaluate_onnx
from s5geo.modelfile import ModelInfo, write_metadata

TRAINING = ("torch", "torchgeo", "timm", "lightning", "kornia", "torchvision")


def _folder_dataset(root: Path, rng: np.random.Generator) -> DataConfig:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for stem in ("a", "b"):
        image = rng.integers(0, 255, size=(70, 90, 3), dtype=np.uint8)
        Image.fromarray(image).save(root / "images" / f"{stem}.png")
        mask = perpixel_reference(np.moveaxis(image, -1, 0), classes=5)
        mask[:5] = 255  # an ignored strip
        Image.fromarray(mask).save(root / "masks" / f"{stem}.png")
    (root / "splits.json").write_text(json.dumps({"test": ["a", "b"]}))
    return DataConfig(root=str(root), class_map="dubai")


def test_the_model_that_made_the_masks_scores_100(tmp_path, rng) -> None:
    data = _folder_dataset(tmp_path / "data", rng)
    model = build_perpixel_model(tmp_path / "m.onnx", tile=32, classes=5)
    result = evaluate_onnx(model, data, "test", out_dir=tmp_path / "eval")
    assert result["miou"] == pytest.approx(100.0, abs=0.05)  # float32 near-ties at most
    assert result["images"] == 2 and result["pixels"] == 2 * 65 * 90  # ignored strip dropped
    assert json.loads((tmp_path / "eval" / "test.json").read_text())["miou"] == result["miou"]
    assert (tmp_path / "eval" / "confusion_test.png").exists()
    three = build_perpixel_model(tmp_path / "three.onnx", tile=32)
    with pytest.raises(UserError, match="3 classes"):
        evaluate_onnx(three, data, "test")  # Dubai has 5 classes


def test_a_bad_out_is_refused_before_the_evaluation(tmp_path, rng, monkeypatch) -> None:
    """An existing file, an unwritable folder or a missing parent folder as --out: one error
    before any image is predicted (not a traceback after the whole evaluation)."""
    data = _folder_dataset(tmp_path / "data", rng)
    model = build_perpixel_model(tmp_path / "m.onnx", tile=32, classes=5)

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the evaluation ran")

    monkeypatch.setattr("s5geo.evaluate.predict_scene", never)
    taken = tmp_path / "taken.json"
    taken.write_text("keep me")
    for out, words in (
        (taken, "is a file"),
        (Path("/proc"), "not writable"),  # read-only even for root
        (Path("/proc/s5geo-results"), "not writable"),
        (tmp_path / "missing" / "eval", "output folder .*missing does not exist"),
    ):
        with pytest.raises(UserError, match=words):
            evaluate_onnx(model, data, "test", out_dir=out)
    assert taken.read_text() == "keep me"
    assert not (tmp_path / "missing").exists()  # the same rule as predict: no parent folders
    run = subprocess.run(
        [sys.executable, "-m", "s5geo.cli.main", "evaluate", str(model), "--data",
         str(CONFIGS / "dubai.yaml"), "--out", str(taken)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 2 and run.stderr.startswith("error: "), run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "is a file" in run.stderr


@pytest.mark.realdata
def test_default_model_scores_dubai_through_the_cli(real_data: Path, tmp_path: Path) -> None:
    """`s5geo evaluate default` (the model card's command) on one Tile 8 image, torch-free path."""
    splits = tmp_path / "splits.json"
    splits.write_text(json.dumps({"test": ["Tile8_image_part_005"]}))
    run = subprocess.run(
        [sys.executable, "-m", "s5geo.cli.main", "evaluate", "default", "--data",
         str(ROOT / "configs" / "data" / "dubai.yaml"), "--split", "test", "--json",
         f"--set=data.splits_file={splits}", f"--set=data.root={real_data / 'dubai'}"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    scores = json.loads(run.stdout)
    assert scores["images"] == 1 and set(scores["iou"]) == set(get_class_map("dubai").names)
    # A trained model: this image scores 81.6 % OA and 57.9 mIoU (a 5-class guess: about 20 %)
    assert scores["overall_accuracy"] > 65 and scores["miou"] > 35


# --- Benchmarks in their distributed layouts (configs/data/*.yaml) -------------------------------

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "data"
ISPRS_COLORS = np.array(  # class index -> colour; clutter (red) and boundary (black) are ignored
    [(255, 255, 255), (0, 0, 255), (0, 255, 255), (0, 255, 0), (255, 255, 0)], np.uint8
)
ISAID_COLORS = np.array(
    [(int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16)) for c in get_class_map("isaid").colors],
    np.uint8,
)


def linear_model(path: Path, classes: int, bands: int = 3, tile: int = 32, seed: int = 0) -> Path:
    """A per-pixel ONNX model (1x1 conv + softmax) over ``bands`` bands with random weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = rng.normal(size=(classes, bands)).astype(np.float32)
    b = rng.normal(scale=0.3, size=classes).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "w", "b"], ["scores"], kernel_shape=[1, 1]),
         helper.make_node("Softmax", ["scores"], ["probs"], axis=1)],
        "linear",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", bands, tile, tile])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", classes, tile, tile])],
        initializer=[numpy_helper.from_array(w[:, :, None, None].copy(), "w"),
                     numpy_helper.from_array(b, "b")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    info = ModelInfo(
        class_names={i: f"c{i}" for i in range(classes)}, tile_size=tile,
        bands=tuple(range(1, bands + 1)), input_scale=255.0, mean=(0.0,) * bands,
        std=(1.0,) * bands, architecture="linear-test",
    )  # fmt: skip
    write_metadata(path, info)
    np.save(path.with_suffix(".npy"), np.concatenate([w, b[:, None]], axis=1))
    return path


def linear_classes(model: Path, raw: np.ndarray) -> np.ndarray:
    """The classes ``linear_model`` gives raw bands [C, H, W] (float32, as ONNX Runtime)."""
    wb = np.load(model.with_suffix(".npy"))
    x = raw.astype(np.float32) / np.float32(255.0)
    scores = np.einsum("kc,chw->khw", wb[:, :-1], x) + wb[:, -1][:, None, None]
    return np.argmax(scores, axis=0).astype(np.uint8)


def write_tif(path: Path, data: np.ndarray, nodata: float | None = None) -> None:
    """A georeferenced uint8 GeoTIFF (5 cm pixels, as ISPRS); other than 3 bands, no band is
    marked as alpha (a 4th band is near-infrared)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    c, h, w = data.shape
    with rasterio.open(
        path, "w", driver="GTiff", width=w, height=h, count=c, dtype="uint8", crs="EPSG:32633",
        transform=from_origin(368_000.0, 5_807_000.0, 0.05, 0.05), nodata=nodata,
        photometric="RGB" if c == 3 else "MINISBLACK",
    ) as dst:  # fmt: skip
        dst.write(data)


def save_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def benchmark(name: str, root: Path, *overrides: str) -> DataConfig:
    return load_config(CONFIGS / f"{name}.yaml", [f"data.root={root}", *overrides]).data


def test_potsdam_tiles_bands_and_colour_labels(tmp_path: Path) -> None:
    """ISPRS layout, `--split test` naming the official test tiles, the config's bands (IRRG of
    RGBIR tiles) and colour-coded labels with clutter and boundaries ignored."""
    rng = np.random.default_rng(3)
    model = linear_model(tmp_path / "m.onnx", classes=5)
    data = benchmark(
        "potsdam", tmp_path / "potsdam", "data.images_dir=4_Ortho_RGBIR",
        "data.image_glob=**/top_potsdam_*_RGBIR.tif", "data.bands=[4,1,2]",
        "data.split_test=ids=2_13,7_13",
    )  # fmt: skip
    root = tmp_path / "potsdam"
    scored = 0
    for tile in ("2_10", "2_13", "7_13"):  # 2_10 is a training tile: not evaluated
        image = rng.integers(1, 256, (4, 40, 50), dtype=np.uint8)
        image[:, 30:, 45:] = 0  # a nodata corner: not scored
        write_tif(root / "4_Ortho_RGBIR" / f"top_potsdam_{tile}_RGBIR.tif", image, nodata=0)
        classes = linear_classes(model, image[[3, 0, 1]])
        label = ISPRS_COLORS[classes]
        label[:3] = (255, 0, 0)  # clutter
        label[:, :2] = (0, 0, 0)  # eroded boundary
        label = np.moveaxis(label, -1, 0)
        path = root / "5_Labels_all_noBoundary" / f"top_potsdam_{tile}_label_noBoundary.tif"
        write_tif(path, label)
        scored += 37 * 48 - 10 * 5 if tile != "2_10" else 0
    result = evaluate_onnx(model, data, "test")
    assert result["images"] == 2 and result["bands"] == [4, 1, 2]
    assert result["pixels"] == scored
    assert result["miou"] == pytest.approx(100.0, abs=0.1)
    rgb = dataclasses.replace(data, bands=[1, 2, 3])  # the model's own bands: other classes
    assert evaluate_onnx(model, rgb, "test")["miou"] < 90
    with pytest.raises(UserError, match="reads 3 band.*data.bands lists 4"):
        evaluate_onnx(model, dataclasses.replace(data, bands=[1, 2, 3, 4]), "test")


def test_loveda_and_openearthmap_value_offsets(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    # LoveDA: PNG folders, masks store class + 1 and 0 = no-data.
    loveda = tmp_path / "loveda"
    model7 = linear_model(tmp_path / "m7.onnx", classes=7)
    for folder, stem in (("Train/Urban", 1), ("Val/Urban", 2), ("Val/Rural", 3)):
        image = rng.integers(0, 256, (30, 36, 3), dtype=np.uint8)
        save_png(loveda / folder / "images_png" / f"{stem}.png", image)
        mask = linear_classes(model7, np.moveaxis(image, -1, 0)) + 1
        mask[:4] = 0  # no-data
        save_png(loveda / folder / "masks_png" / f"{stem}.png", mask)
    result = evaluate_onnx(model7, benchmark("loveda", loveda), "val", out_dir=tmp_path / "e")
    assert result["images"] == 2 and result["pixels"] == 2 * 26 * 36
    assert result["miou"] == pytest.approx(100.0, abs=0.1)
    one = evaluate_onnx(model7, benchmark("loveda", loveda), "dir=Val/Rural", tmp_path / "e")
    assert one["images"] == 1 and (tmp_path / "e" / "dir_Val_Rural.json").is_file()

    # OpenEarthMap: GeoTIFFs per region, file lists; 0 = unknown is ignored, ids = stored values.
    oem = tmp_path / "oem"
    model9 = linear_model(tmp_path / "m9.onnx", classes=9, seed=1)
    for region, n in (("aachen", 2), ("tokyo", 1)):
        for i in range(1, n + 1):
            image = rng.integers(1, 256, (3, 28, 28), dtype=np.uint8)
            write_tif(oem / region / "images" / f"{region}_{i}.tif", image)
            write_tif(
                oem / region / "labels" / f"{region}_{i}.tif", linear_classes(model9, image)[None]
            )
    (oem / "train.txt").write_text("aachen_1.tif\n")
    (oem / "val.txt").write_text("aachen_2.tif\ntokyo_1.tif\nxbd_9.tif\n")
    result = evaluate_onnx(model9, benchmark("openearthmap", oem), "test")  # = val.txt
    assert result["images"] == 2
    assert result["miou"] == pytest.approx(100.0, abs=0.1)
    assert result["iou"]["unknown"] is None  # unknown: no reference pixels


def test_isaid_colour_labels_and_grey_images(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    model = linear_model(tmp_path / "m.onnx", classes=16, seed=2)
    root = tmp_path / "isaid"
    for split, stem in (("train", "P0000"), ("val", "P0003"), ("val", "P0004")):
        image = rng.integers(0, 256, (26, 34, 3), dtype=np.uint8)
        if stem == "P0004":  # a grey-scale image, read as RGB as training reads it
            image[..., 1] = image[..., 2] = image[..., 0]
        save_png(
            root / split / "images" / f"{stem}.png", image[..., 0] if stem == "P0004" else image
        )
        label = ISAID_COLORS[linear_classes(model, np.moveaxis(image, -1, 0))]
        label[-2:] = (9, 9, 9)  # off-palette: ignored
        save_png(
            root / split / "Semantic_masks" / "images" / f"{stem}_instance_color_RGB.png", label
        )
    result = evaluate_onnx(model, benchmark("isaid", root), "test")  # test labels withheld: val
    assert result["images"] == 2 and result["pixels"] == 2 * 24 * 34
    assert result["miou"] == pytest.approx(100.0, abs=0.1)


def test_evaluate_command_reads_a_benchmark_without_torch(tmp_path: Path) -> None:
    """`s5geo evaluate MODEL.onnx --data configs/data/potsdam.yaml --split test` with torch and
    the other training packages made unimportable, as in the deployment install."""
    model = linear_model(tmp_path / "m.onnx", classes=5)
    root = tmp_path / "potsdam"
    rng = np.random.default_rng(6)
    for tile in ("2_13", "2_14"):
        image = rng.integers(0, 256, (3, 20, 20), dtype=np.uint8)
        write_tif(root / "2_Ortho_RGB" / f"top_potsdam_{tile}_RGB.tif", image)
        label = np.moveaxis(ISPRS_COLORS[linear_classes(model, image)], -1, 0)
        write_tif(
            root / "5_Labels_all_noBoundary" / f"top_potsdam_{tile}_label_noBoundary.tif", label
        )
    args = ["evaluate", str(model), "--data", str(CONFIGS / "potsdam.yaml"), "--split", "test",
            "--set", f"data.root={root}", "--set", "data.split_test=ids=2_13,2_14",
            "--json"]  # fmt: skip
    code = (
        "import json, sys\n"
        "class NoTraining:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {TRAINING!r}:\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, NoTraining())\n"
        "from s5geo.cli.main import app\n"
        f"app({args!r}, standalone_mode=False)\n"
        f"print(json.dumps([m for m in {TRAINING!r} if m in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert json.loads(lines[-1]) == []
    result = json.loads(lines[-2])
    assert result["images"] == 2 and result["miou"] == pytest.approx(100.0, abs=0.1)
