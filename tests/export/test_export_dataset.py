"""``s5geo export --dataset``: one dataset's path of a MoE-MDF checkpoint as an ordinary model file.

The checkpoint is a real one of the CPU three-dataset config (ViT-Tiny at 64 px), saved the way
Lightning saves ``MDFModule`` (config in ``hyper_parameters``, ``net.`` weights). Its experts and
decoders are distinct random weights, so a path that mixed datasets up would not match.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch")

from s5geo.config import load_config  # noqa: E402
from s5geo.errors import UserError  # noqa: E402
from s5geo.export.onnx_export import export_model  # noqa: E402
from s5geo.export.pipeline import export_checkpoint, load_for_export, real_windows  # noqa: E402
from s5geo.export.standardize import Standardized  # noqa: E402
from s5geo.infer import load_model  # noqa: E402
from s5geo.models import build_model  # noqa: E402
from s5geo.models.mdf import count, load_mdf_config  # noqa: E402
from s5geo.train.mdf import MDFModule  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TILE = 64
SMALL = ["model.img_size=64", "model.decoder_channels=16", f"train.eval_tile={TILE}"]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def mdf_checkpoint(path: Path) -> tuple[Path, MDFModule]:
    cfg = load_mdf_config(ROOT / "configs" / "mdf" / "cpu_three.yaml", SMALL)
    torch.manual_seed(0)
    module = MDFModule(cfg.to_dict(), load_weights=False).eval()
    hparams = {"config": cfg.to_dict(), "load_weights": False}
    torch.save({"hyper_parameters": hparams, "state_dict": module.state_dict()}, path)
    return path, module


@pytest.fixture(scope="module")
def mdf(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, MDFModule]:
    return mdf_checkpoint(tmp_path_factory.mktemp("mdf") / "mdf.ckpt")


def ops_and_weights(path: Path) -> tuple[Counter[str], list[tuple[int, ...]]]:
    graph = onnx.load(str(path)).graph
    ops = Counter(n.op_type for n in graph.node)
    return ops, sorted(tuple(i.dims) for i in graph.initializer)


def test_one_dataset_path_exports_as_a_dense_single_dataset_model(
    real_data: Path, mdf: tuple[Path, MDFModule], tmp_path: Path
) -> None:
    ckpt, module = mdf
    out = tmp_path / "spacenet.onnx"
    lines = export_checkpoint(ckpt, out, dataset="spacenet", n_windows=2)
    assert "parity with PyTorch" in lines[0]
    model = load_model(out)
    info = model.info
    assert info.class_names == {0: "background", 1: "building"}
    assert info.class_colors == {0: "#D9D9D9", 1: "#E31A1C"}
    assert info.bands == (1, 1, 1) and info.input_scale == 2047.0
    # its standardisation is in the graph (s5geo.export.standardize): the file feeds x / 2047
    assert info.mean == (0.0,) * 3 and info.std == (1.0,) * 3 and info.tile_size == TILE
    assert info.recipe["standardization"] == {"mean": [0.223] * 3, "std": [0.129] * 3}
    assert info.recipe["dataset"] == "spacenet" and info.recipe["method"] == "mdf"
    assert info.recipe["mdf_datasets"] == ["dubai", "spacenet", "swiss_trees"]

    # Parity: the file's probabilities are the MoE model's for dataset 1 on real SpaceNet windows
    # (and not those of another dataset's path).
    path_net, cfg, _ = load_for_export(ckpt, "spacenet")
    scene = real_data / "spacenet" / "sample_geotiff.tif"
    x = real_windows(info, [scene], 3)
    standardized = torch.from_numpy((x - 0.223) / 0.129)
    with torch.no_grad():
        ref = torch.softmax(module.net(standardized, 1), dim=1).numpy()
        wrong = torch.softmax(module.net(standardized, 2), dim=1).numpy()
    got = model.run(x)
    np.testing.assert_allclose(got, ref, atol=1e-5)
    assert np.abs(got - wrong).max() > 1e-3

    # Cost: the graph of a dense model of the same config and class count, weight for weight.
    dense = build_model(dataclasses.replace(cfg.model, num_classes=2)).eval()
    assert count(path_net) == count(dense) < count(module.net)
    dense_file = tmp_path / "dense.onnx"
    export_model(Standardized(dense, (0.223,) * 3, (0.129,) * 3), dense_file, info, x[:1])
    assert ops_and_weights(out) == ops_and_weights(dense_file)


def test_moe_checkpoints_need_a_dataset_and_others_refuse_one(
    mdf: tuple[Path, MDFModule], tmp_path: Path
) -> None:
    ckpt, _ = mdf
    out = tmp_path / "m.onnx"
    with pytest.raises(UserError, match=r"MoE-MDF checkpoint of 3 datasets: dubai, spacenet, "
                       r"swiss_trees; pass --dataset NAME"):  # fmt: skip
        export_checkpoint(ckpt, out)
    with pytest.raises(UserError, match=r"no dataset 'potsdam'; known: dubai, spacenet"):
        export_checkpoint(ckpt, out, dataset="potsdam")
    cfg = load_config(ROOT / "configs" / "s4p" / "dubai_cpu.yaml", ["model.name=vit_tiny", *SMALL])
    dense = tmp_path / "dense.ckpt"
    state = {f"net.{k}": v for k, v in build_model(cfg.model).state_dict().items()}
    torch.save({"hyper_parameters": {"config": cfg.to_dict()}, "state_dict": state}, dense)
    with pytest.raises(UserError, match="--dataset applies to MoE-MDF checkpoints only"):
        export_checkpoint(dense, out, dataset="dubai")
    assert not out.exists()
