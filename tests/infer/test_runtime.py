"""Opening model files: the contract is checked, execution providers are an order of preference."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort
import pytest
from helpers import build_perpixel_model

from s5geo.errors import UserError
from s5geo.infer import load_model, resolve_providers
from s5geo.modelfile import ModelInfo, info_from_metadata, write_metadata


def _rewrite(path: Path, **changes: object) -> Path:
    """Replace metadata fields of a model file (as a third-party tool might have written them)."""
    meta = ort.InferenceSession(str(path)).get_modelmeta().custom_metadata_map
    info = info_from_metadata(meta)
    fields = {**info.__dict__, **changes}
    write_metadata(path, ModelInfo(**fields))  # type: ignore[arg-type]
    return path


def test_a_model_of_another_kind_is_refused(tmp_path: Path) -> None:
    model = _rewrite(build_perpixel_model(tmp_path / "m.onnx"), model_type="Detector")
    with pytest.raises(UserError, match="'Detector' model"):
        load_model(model)


@pytest.mark.parametrize("names", [{0: "a", 1: "b"}, {i: str(i) for i in range(5)}])
def test_class_names_must_match_the_graph_output(tmp_path: Path, names) -> None:
    model = _rewrite(build_perpixel_model(tmp_path / "m.onnx", classes=3), class_names=names)
    with pytest.raises(UserError, match="outputs 3 classes"):
        load_model(model)


def test_providers_are_an_order_of_preference() -> None:
    chosen = resolve_providers(["tensorrt", "cuda", "cpu"])
    available = ort.get_available_providers()
    assert chosen == [
        p
        for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
        if p in available
    ]
    with pytest.raises(UserError, match="unknown execution provider 'tpu'"):
        resolve_providers(["tpu", "cpu"])
    if "CUDAExecutionProvider" not in available:
        with pytest.raises(UserError, match="not available here"):
            resolve_providers(["cuda"])
