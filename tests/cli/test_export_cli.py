"""`s5geo export` on MoE-MDF checkpoints: --dataset is required there, and refused elsewhere,
with one error line and exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]


def s5geo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "s5geo.cli.main", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )  # fmt: skip


def test_moe_checkpoint_without_dataset_lists_the_datasets(tmp_path: Path) -> None:
    from s5geo.models.mdf import load_mdf_config
    from s5geo.train.mdf import MDFModule

    small = ["model.img_size=64", "model.decoder_channels=16"]
    cfg = load_mdf_config(ROOT / "configs" / "mdf" / "cpu_three.yaml", small)
    module = MDFModule(cfg.to_dict(), load_weights=False)
    ckpt = tmp_path / "mdf.ckpt"
    torch.save({"hyper_parameters": {"config": cfg.to_dict()}, "state_dict": module.state_dict()},
               ckpt)  # fmt: skip
    out = tmp_path / "m.onnx"
    done = s5geo("export", str(ckpt), "--out", str(out))
    assert done.returncode == 2 and not out.exists()
    assert done.stderr.strip().splitlines() == [
        f"error: {ckpt} is a MoE-MDF checkpoint of 3 datasets: dubai, spacenet, swiss_trees; "
        "pass --dataset NAME to export one dataset's path"
    ]
    done = s5geo("export", str(ckpt), "--out", str(out), "--dataset", "vaihingen")
    assert done.returncode == 2
    assert "no dataset 'vaihingen'; known: dubai, spacenet, swiss_trees" in done.stderr


def test_help_documents_dataset() -> None:
    done = s5geo("export", "--help")
    assert done.returncode == 0 and "--dataset" in done.stdout and "MoE-MDF" in done.stdout


class Payload:
    """Pickled into a checkpoint: weights-only loading must refuse it."""


def test_refused_checkpoints_are_one_line_and_write_nothing(tmp_path: Path) -> None:
    evil, image, out = tmp_path / "evil.ckpt", tmp_path / "some.tif", tmp_path / "x.onnx"
    torch.save({"x": Payload()}, evil)
    image.write_bytes(b"II*\x00" + bytes(200))
    done = s5geo("export", str(evil), "--out", str(out))
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        f"error: {evil} holds objects other than weights; s5geo refuses to unpickle it "
        "(not an s5geo checkpoint?)"
    ]
    done = s5geo("export", str(image), "--out", str(out))
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        f"error: {image} is not a PyTorch checkpoint "
        "(s5geo export takes a .ckpt of s5geo train or s5geo distill)"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.ckpt", "some.tif"]


def test_tensorrt_without_its_provider_is_refused_before_any_work(tmp_path: Path) -> None:
    import onnxruntime as ort

    if "TensorrtExecutionProvider" in ort.get_available_providers():
        pytest.skip("this ONNX Runtime has the TensorRT provider")
    evil, out = tmp_path / "evil.ckpt", tmp_path / "x.onnx"
    torch.save({"x": Payload()}, evil)  # never opened: the provider is checked first
    done = s5geo("export", str(evil), "--out", str(out), "--int8", "--tensorrt")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: the TensorRT execution provider is not available in this ONNX Runtime"
    )
    assert "pip install '.[gpu]'" in lines[0] and "export without --tensorrt" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.ckpt"]
