"""Reading checkpoints: weights-only, and refused files explained in one line."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import torch

from s5geo.errors import UserError
from s5geo.models.checkpoint import load_torch_file, require_torch_file


class Payload:
    """A class that weights-only loading must refuse to unpickle."""


def one_line(caught: pytest.ExceptionInfo[UserError]) -> str:
    message = str(caught.value)
    assert "\n" not in message and "\x1b" not in message
    return message


def test_plain_checkpoints_load_zip_and_legacy(tmp_path: Path) -> None:
    state = {"state_dict": {"w": torch.ones(2)}, "global_step": 3}
    torch.save(state, tmp_path / "new.ckpt")
    torch.save(state, tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    for name in ("new.ckpt", "old.pt"):
        loaded = load_torch_file(tmp_path / name, mmap=True)
        assert loaded["global_step"] == 3 and torch.equal(loaded["state_dict"]["w"], torch.ones(2))


def test_pickled_objects_are_refused_without_unsafe_advice(tmp_path: Path) -> None:
    path = tmp_path / "evil.ckpt"
    torch.save({"x": Payload()}, path)
    with pytest.raises(UserError) as caught:
        load_torch_file(path)
    assert one_line(caught) == (
        f"{path} holds objects other than weights; s5geo refuses to unpickle it "
        "(not an s5geo checkpoint?)"
    )
    assert "weights_only" not in str(caught.value)


def test_other_files_say_what_they_are_not(tmp_path: Path) -> None:
    image = tmp_path / "some.tif"
    image.write_bytes(b"II*\x00" + bytes(200))
    archive = tmp_path / "other.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("readme.txt", "hello")
    for path in (image, archive):
        with pytest.raises(UserError) as caught:
            require_torch_file(path, "s5geo evaluate takes a .ckpt or an .onnx model")
        assert one_line(caught) == (
            f"{path} is not a PyTorch checkpoint (s5geo evaluate takes a .ckpt or an .onnx model)"
        )
    with pytest.raises(UserError, match="checkpoint not found"):
        load_torch_file(tmp_path / "absent.ckpt")
