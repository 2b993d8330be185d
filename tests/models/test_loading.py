"""Networks from training checkpoints: rebuilt from the stored config, refused files explained."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from s5geo.config import Config, ModelConfig
from s5geo.errors import UserError
from s5geo.models import build_network
from s5geo.models.loading import (
    load_checkpoint_model,
    load_checkpoint_state,
    read_checkpoint,
    stored_config,
)


def training_checkpoint(path: Path) -> tuple[Path, torch.nn.Module]:
    """A checkpoint laid out as s5geo train writes it: config in the hyper-parameters, the
    network under ``net.``, other state (here a loss buffer) beside it."""
    cfg = Config(model=ModelConfig(name="smp:FPN:tu-mobilenetv3_small_100", num_classes=3,
                                   decoder_channels=32))  # fmt: skip
    torch.manual_seed(0)
    net = build_network(cfg.model)
    state = {f"net.{k}": v for k, v in net.state_dict().items()}
    state["loss.weight"] = torch.ones(3)
    torch.save({"hyper_parameters": {"config": cfg.to_dict()}, "state_dict": state}, path)
    return path, net.eval()


def test_the_network_is_rebuilt_with_its_weights(tmp_path: Path) -> None:
    path, original = training_checkpoint(tmp_path / "run.ckpt")
    net, cfg = load_checkpoint_model(path)
    assert cfg.model.name == "smp:FPN:tu-mobilenetv3_small_100" and not net.training
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(net(x), original(x))
    weights = load_checkpoint_state(path)
    assert set(weights) == set(original.state_dict())  # only the network's, prefix removed
    assert stored_config(path)["model"]["num_classes"] == 3
    assert read_checkpoint(path, mmap=True).config == stored_config(path)


def test_a_checkpoint_without_config_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    torch.save({"state_dict": {"net.w": torch.ones(1)}}, path)
    with pytest.raises(UserError, match="is not an s5geo training checkpoint"):
        load_checkpoint_model(path)


def test_other_files_name_what_the_caller_takes(tmp_path: Path) -> None:
    path = tmp_path / "scene.tif"
    path.write_bytes(b"II*\x00" + bytes(64))
    with pytest.raises(UserError) as caught:
        stored_config(path, expected="s5geo export takes a .ckpt")
    assert str(caught.value) == f"{path} is not a PyTorch checkpoint (s5geo export takes a .ckpt)"
