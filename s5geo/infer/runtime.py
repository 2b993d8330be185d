"""ONNX Runtime sessions: execution-provider choice, model loading and the bundled default model.

Providers are tried in the order TensorRT -> CUDA -> CPU, the first one available unless the caller
names others. TensorRT engines are cached on disk (building one takes minutes) under
``$S5GEO_CACHE`` or ``~/.cache/s5geo/trt``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

from s5geo.errors import ParameterError, UserError
from s5geo.modelfile import ModelInfo, info_from_metadata

PREFERRED = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
ALIASES = {
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
DEFAULT_MODEL = "default.onnx"


def default_model_path() -> Path:
    """The model bundled with the package, used when no model is given."""
    return Path(str(resources.files("s5geo.resources").joinpath(DEFAULT_MODEL)))


def _local(providers: Sequence[str]) -> list[str]:
    """Providers that run the model on this machine (the Azure provider sends it elsewhere)."""
    return [p for p in providers if p != "AzureExecutionProvider"]


def resolve_providers(requested: Sequence[str] | None = None) -> list[str]:
    """Execution providers to ask ONNX Runtime for, most preferred first.

    ``requested`` (short names tensorrt, cuda, cpu, or ONNX Runtime's full names) is an order of
    preference: providers this install lacks are passed over, so ``tensorrt,cuda,cpu`` works on
    any machine. A name ONNX Runtime does not know, or a list of which nothing is available, is a
    user error.
    """
    available = _local(ort.get_available_providers())
    if not requested:
        return [p for p in PREFERRED if p in available]
    known = set(_local(ort.get_all_providers()))
    chosen = []
    for name in requested:
        full = ALIASES.get(name.lower(), name)
        if full not in known:
            raise UserError(
                f"unknown execution provider {name!r} "
                f"(known here: {', '.join(short_name(p) for p in available)})"
            )
        if full in available:
            chosen.append(full)
    if not chosen:
        raise UserError(
            f"execution provider {', '.join(requested)} not available here "
            f"(available: {', '.join(short_name(p) for p in available)})"
        )
    return chosen


def short_name(provider: str) -> str:
    for short, full in ALIASES.items():
        if full == provider and short != "trt":
            return short
    return provider


def _provider_options(provider: str) -> dict[str, Any]:
    if provider == "TensorrtExecutionProvider":
        cache = Path(os.environ.get("S5GEO_CACHE", Path.home() / ".cache" / "s5geo")) / "trt"
        cache.mkdir(parents=True, exist_ok=True)
        return {
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(cache),
            "trt_timing_cache_enable": True,
        }
    return {}


# Run options that shrink the CPU arena at the end of a run (ONNX Runtime's documented run
# config key; CUDA and TensorRT keep their own device arenas, which this leaves alone).
_RELEASE_ARENA = ort.RunOptions()
_RELEASE_ARENA.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")


@dataclass
class Model:
    """A loaded model file: its session, its metadata and the provider actually in use."""

    path: Path
    session: ort.InferenceSession
    info: ModelInfo
    input_name: str
    fixed_size: int | None  # the tile side when height/width are static, else None

    @property
    def provider(self) -> str:
        return str(self.session.get_providers()[0])

    def run(self, batch: np.ndarray, release_memory: bool = False) -> np.ndarray:
        """Class probabilities [N, K, T, T] for a normalised float32 batch [N, C, T, T].

        ``release_memory``: after this run, hand the CPU arena's free chunks back to the system.
        ONNX Runtime's arena otherwise keeps the peak of a batch's activations for the session's
        life, under whatever runs next (the COG copy and polygonizing, whose memory grows with
        the scene's width): so the last batch of a scene releases it (docs/BENCHMARKS.md).
        """
        options = _RELEASE_ARENA if release_memory else None
        try:
            out = self.session.run(None, {self.input_name: batch}, options)[0]
        except (ort_errors.Fail, ort_errors.InvalidArgument, ort_errors.RuntimeException) as exc:
            # The graph itself refused this input (e.g. a tile side that its strides or
            # concatenations do not divide): the user can fix that with another tile size.
            first = str(exc).strip().splitlines()[0][:300]
            raise ParameterError(
                "model {model} failed on {tile}-px tiles ({first}); try {tile_size} {own} (a "
                "multiple of 32) or a smaller {batch_size}",
                model=self.path.name, tile=batch.shape[-1], first=first, own=self.info.tile_size,
            ) from None  # fmt: skip
        return np.asarray(out, dtype=np.float32)


def load_model(
    path: str | Path | None = None,
    providers: Sequence[str] | None = None,
    threads: int = 0,
) -> Model:
    """Open an ONNX model file for inference and check it against s5geo's model-file contract.

    :param path: The ``.onnx`` file; None opens the model bundled with the package.
    :param providers: ONNX Runtime execution providers to try in order (``"tensorrt"``,
        ``"cuda"``, ``"cpu"`` or their full names); None picks the best one available
        (:func:`resolve_providers`).
    :param threads: ONNX Runtime's intra-op threads; 0 lets it use every core.
    :returns: The session with the model's metadata (:class:`s5geo.modelfile.ModelInfo`), the
        provider it runs on and its fixed tile size, if any.
    :raises s5geo.errors.UserError: For a missing file, one ONNX Runtime cannot load, a
        requested provider that is not available, or metadata that does not match the graph.
    """
    p = Path(path) if path is not None else default_model_path()
    if not p.exists():
        raise UserError(f"model {p}: no such file")
    if p.is_dir():  # ONNX Runtime would call it "Protobuf parsing failed"
        raise UserError(f"model {p} is a folder, not a model file (.onnx)")
    chosen = resolve_providers(providers)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    # Memory patterns pre-plan one buffer for the peak of every batch; for conv nets at 512 px that
    # nearly doubles peak RSS with no measurable gain in speed (docs/BENCHMARKS.md), so s5geo
    # plans allocations per run instead.
    opts.enable_mem_pattern = False
    # ONNX Runtime's intra-op threads spin while waiting for work by default. s5geo reads the next
    # batch and blends the previous one in other threads during inference, and spinning threads
    # take the cores those need, which slows `s5geo predict` on machines with few cores
    # (docs/BENCHMARKS.md).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        opts.intra_op_num_threads = threads
    try:
        session = ort.InferenceSession(
            str(p), sess_options=opts, providers=[(c, _provider_options(c)) for c in chosen]
        )
    except Exception as exc:  # ORT raises its own exception types for unreadable files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"model {p} cannot be loaded by ONNX Runtime: {first}") from None
    meta = session.get_modelmeta().custom_metadata_map
    info = info_from_metadata(meta, source=f"model {p.name}")
    if info.model_type.lower() != "segmentor":
        raise UserError(
            f"model {p.name} is a {info.model_type!r} model (metadata model_type); "
            "s5geo runs segmentation models (model_type 'Segmentor')"
        )
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise UserError(f"model {p.name} has {len(inputs)} inputs; a segmentation model has one")
    shape = inputs[0].shape
    if len(shape) != 4:
        raise UserError(f"model {p.name}: input must be [N, C, H, W], got {shape}")
    if isinstance(shape[1], int) and shape[1] != len(info.bands):
        raise UserError(
            f"model {p.name}: input has {shape[1]} channels but s5geo.bands names {len(info.bands)}"
        )
    classes = session.get_outputs()[0].shape
    if len(classes) == 4 and isinstance(classes[1], int) and classes[1] != info.num_classes:
        raise UserError(
            f"model {p.name}: the graph outputs {classes[1]} classes but class_names names "
            f"{info.num_classes} (ids 0..{info.num_classes - 1})"
        )
    fixed = shape[2] if isinstance(shape[2], int) and shape[2] == shape[3] else None
    if fixed is not None and fixed != info.tile_size:
        raise UserError(
            f"model {p.name}: input tile is {fixed} px but metadata tiles_size is {info.tile_size}"
        )
    return Model(path=p, session=session, info=info, input_name=inputs[0].name, fixed_size=fixed)
