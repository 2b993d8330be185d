"""The quick tier's per-pixel features, as one ONNX graph.

Two kinds of features describe each pixel:

- **filter features**, the ones ilastik and the QGIS classification plugins use: each band
  smoothed by a Gaussian, its Laplacian of Gaussian and its gradient magnitude, at scales from
  sub-pixel to 10 px. They see colour, texture and edges in any number of bands of any sensor;
- **encoder features**: two layers of the bundled network, both at a quarter of the tile's
  resolution and upsampled bilinearly, taken from three 8-bit-like bands: the 32 channels of its
  decoder (the FPN output), which carry what the network learnt about shapes and context from the
  Dubai labels and which the filters cannot see (a roof against bare ground of the same colour);
  and the 64 channels of its first residual stage, lower-level texture and edge detectors that
  owe less to Dubai's classes and so carry over better to imagery unlike Dubai's (on the fit
  benchmark, adding them helped on every group of scenes: docs/FIT.md).

Both are built as ONNX nodes rather than computed in NumPy/SciPy so that the same graph makes the
training features and, with the classifier appended (:mod:`s5geo.fit.graph`), the model file that
``s5geo predict`` streams: training and prediction cannot drift apart. ONNX has no Gaussian filter,
so the kernels are written here (separable, scipy's ``truncate=4`` radius, reflected borders).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from s5geo.fit.scaling import BandScaling

# ilastik's default scales (its "sigma" presets 0.7 to 10), used by the baseline and the quick tier.
SIGMAS = (0.7, 1.0, 1.6, 3.5, 5.0, 10.0)
# Tensors of the bundled network read as features, each at 1/4 of the tile's resolution: its FPN
# output (before the segmentation head) and its first residual stage; name, channels, feature name.
ENCODER_TENSORS = (
    ("sum_1_DequantizeLinear_Output", 32, "decoder"),
    ("relu_4_DequantizeLinear_Output", 64, "layer1_"),
)
ENCODER_CHANNELS = sum(channels for _, channels, _ in ENCODER_TENSORS)
OPSET = 18
PREFIX = "enc/"


@dataclass(frozen=True)
class FeatureSpec:
    """What the feature graph computes: bands in, scales, and whether encoder features are added."""

    bands: int
    scaling: BandScaling
    sigmas: tuple[float, ...] = SIGMAS
    encoder: bool = True

    @property
    def count(self) -> int:
        """Features per pixel: 3 filters per band and scale, plus the encoder's channels."""
        return 3 * self.bands * len(self.sigmas) + (ENCODER_CHANNELS if self.encoder else 0)

    def names(self) -> list[str]:
        """A readable name per feature, in graph order (for the report's importances)."""
        out = []
        for s in self.sigmas:
            for kind in ("gauss", "log", "gradmag"):
                out += [f"{kind}{s:g}_b{self.scaling.bands[c]}" for c in range(self.bands)]
        if self.encoder:
            for _, channels, stem in ENCODER_TENSORS:
                out += [f"{stem}{k}" for k in range(channels)]
        return out


def gaussian_kernels(sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """1-D Gaussian and its first and second derivatives (scipy.ndimage's, truncate 4)."""
    radius = int(4.0 * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    g /= g.sum()
    dg = -x / sigma**2 * g
    d2g = (x**2 / sigma**4 - 1.0 / sigma**2) * g
    # Flipped: ONNX Conv is a correlation, the filters are convolutions.
    return g[::-1].copy(), dg[::-1].copy(), d2g[::-1].copy(), radius


class _Builder:
    """Accumulates nodes and initializers with unique names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0

    def name(self, stem: str) -> str:
        self._n += 1
        return f"fit/{stem}_{self._n}"

    def const(self, stem: str, value: np.ndarray) -> str:
        name = self.name(stem)
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], stem: str, **attrs: Any) -> str:
        out = self.name(stem)
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out


def _depthwise(b: _Builder, x: str, kernel: np.ndarray, channels: int, horizontal: bool) -> str:
    """``x`` correlated with a 1-D kernel along one axis, each channel on its own, no padding."""
    k = kernel.astype(np.float32)
    shape = (channels, 1, 1, k.size) if horizontal else (channels, 1, k.size, 1)
    w = b.const("kernel", np.broadcast_to(k.reshape(1, 1, *shape[2:]), shape).copy())
    return b.op("Conv", [x, w], "conv", group=channels)


def _filters(b: _Builder, z: str, channels: int, sigma: float) -> list[str]:
    """Gaussian, Laplacian of Gaussian and gradient magnitude of ``z`` at one scale.

    The derivatives are taken by central differences of the smoothed bands (a 3x3 stencil)
    instead of by derivative-of-Gaussian kernels: two large convolutions per scale instead of
    eight, 3x faster, and the same features up to the stencil's error, which is small next to
    the smoothing for every scale but the finest.
    """
    g, _, _, r = gaussian_kernels(sigma)
    pads = b.const("pads", np.array([0, 0, r, r, 0, 0, r, r], np.int64))
    padded = b.op("Pad", [z, pads], "pad", mode="reflect")
    smooth = _depthwise(b, _depthwise(b, padded, g, channels, True), g, channels, False)
    one = b.const("pads1", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))
    edged = b.op("Pad", [smooth, one], "pad", mode="reflect")
    stencils = np.zeros((channels, 3, 1, 3, 3), np.float32)
    stencils[:, 0, 0, 1] = (-0.5, 0.0, 0.5)  # d/dx
    stencils[:, 1, 0, :, 1] = (-0.5, 0.0, 0.5)  # d/dy
    stencils[:, 2, 0] = ((0, 1, 0), (1, -4, 1), (0, 1, 0))  # Laplacian
    w = b.const("stencils", stencils.reshape(3 * channels, 1, 3, 3))
    derivs = b.op("Conv", [edged, w], "derivs", group=channels)  # per band: dx, dy, laplacian
    shape = b.const("split_shape", np.array([0, channels, 3, -1], np.int64))
    grouped = b.op("Reshape", [derivs, shape], "grouped")  # [N, C, 3, H*W]
    sizes = b.const("split_sizes", np.array([1, 1, 1], np.int64))
    dx, dy, lap = (b.name(s) for s in ("dx", "dy", "lap"))
    b.nodes.append(helper.make_node("Split", [grouped, sizes], [dx, dy, lap], axis=2))
    back = b.op("Shape", [smooth], "smooth_shape")
    squares = b.op("Add", [b.op("Mul", [dx, dx], "dx2"), b.op("Mul", [dy, dy], "dy2")], "g2")
    grad = b.op("Reshape", [b.op("Sqrt", [squares], "gradmag"), back], "gradmag_img")
    log = b.op("Reshape", [lap, back], "log_img")
    return [smooth, log, grad]


def _encoder_nodes(encoder: onnx.ModelProto, rgb: str) -> tuple[list, list, list[str]]:
    """The bundled network's nodes up to its feature tensors, renamed, reading ``rgb``."""
    g = encoder.graph
    image = g.input[0].name
    producer = {o: n for n in g.node for o in n.output}
    wanted = [name for name, _, _ in ENCODER_TENSORS]
    missing = [t for t in wanted if t not in producer]
    if missing:
        raise ValueError(f"the encoder graph has no tensor {missing[0]!r}")
    need: set[str] = set()
    stack = list(wanted)
    while stack:
        t = stack.pop()
        if t in need:
            continue
        need.add(t)
        if t in producer:
            stack.extend(i for i in producer[t].input if i)

    def rename(t: str) -> str:
        if not t:
            return t
        return rgb if t == image else PREFIX + t

    nodes = []
    for n in g.node:
        if not any(o in need for o in n.output):
            continue
        copy = onnx.NodeProto()
        copy.CopyFrom(n)
        copy.name = PREFIX + n.name
        copy.input[:] = [rename(i) for i in n.input]
        copy.output[:] = [rename(o) for o in n.output]
        nodes.append(copy)
    inits = []
    for init in g.initializer:
        if init.name in need:
            copy = onnx.TensorProto()
            copy.CopyFrom(init)
            copy.name = PREFIX + init.name
            inits.append(copy)
    return nodes, inits, [PREFIX + t for t in wanted]


def feature_graph(
    spec: FeatureSpec, tile: int, encoder: onnx.ModelProto | None = None
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto], str]:
    """Nodes computing features [N, F, tile, tile] from the model input ``image``.

    ``image`` holds the scene's values divided by ``spec.scaling.input_scale`` (what s5geo, and
    Deepness for 8-bit scenes, feed a model whose metadata standardises with mean 0, std 1).
    Returns the nodes, their initializers and the name of the features tensor.
    """
    b = _Builder()
    sc = spec.scaling
    gain = b.const("gain", np.asarray(sc.gain, np.float32).reshape(1, -1, 1, 1))
    offset = b.const("offset", np.asarray(sc.offset, np.float32).reshape(1, -1, 1, 1))
    z = b.op("Add", [b.op("Mul", ["image", gain], "scaled"), offset], "standardized")
    parts = []
    for sigma in spec.sigmas:
        parts += _filters(b, z, spec.bands, sigma)
    if spec.encoder:
        if encoder is None:
            raise ValueError("encoder features need the bundled network's graph")
        idx = b.const("rgb_index", np.asarray(sc.rgb_index, np.int64))
        picked = b.op("Gather", ["image", idx], "rgb", axis=1)
        rgb_gain = b.const("rgb_gain", np.asarray(sc.rgb_gain, np.float32).reshape(1, -1, 1, 1))
        rgb_off = b.const("rgb_offset", np.asarray(sc.rgb_offset, np.float32).reshape(1, -1, 1, 1))
        lo, hi = (
            b.const("zero", np.array(0.0, np.float32)),
            b.const("one", np.array(1.0, np.float32)),
        )
        stretched = b.op("Add", [b.op("Mul", [picked, rgb_gain], "rgb_scaled"), rgb_off], "rgb")
        rgb = b.op("Clip", [stretched, lo, hi], "rgb01")
        enc_nodes, enc_inits, enc_outs = _encoder_nodes(encoder, rgb)
        b.nodes += enc_nodes
        b.inits += enc_inits
        enc_out = b.op("Concat", enc_outs, "encoder", axis=1)
        scales = b.const("up", np.array([1.0, 1.0, 4.0, 4.0], np.float32))
        parts.append(
            b.op("Resize", [enc_out, "", scales], "encoder_up", mode="linear",
                 coordinate_transformation_mode="half_pixel")
        )  # fmt: skip
    features = b.op("Concat", parts, "features", axis=1)
    return b.nodes, b.inits, features


def features_model(
    spec: FeatureSpec, tile: int, encoder: onnx.ModelProto | None = None
) -> onnx.ModelProto:
    """A standalone ONNX model ``image`` -> ``features`` (for computing training features)."""
    nodes, inits, out = feature_graph(spec, tile, encoder)
    nodes.append(helper.make_node("Identity", [out], ["features"], name="fit/features_out"))
    graph = helper.make_graph(
        nodes,
        "s5geo_fit_features",
        [_image_input(spec.bands, tile)],
        [
            helper.make_tensor_value_info(
                "features", TensorProto.FLOAT, ["batch", spec.count, tile, tile]
            )
        ],
        inits,
    )
    return _model(graph)


def _image_input(bands: int, tile: int) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", bands, tile, tile])


def _model(graph: onnx.GraphProto, ml_opset: int | None = None) -> onnx.ModelProto:
    opsets = [helper.make_opsetid("", OPSET)]
    if ml_opset is not None:
        opsets.append(helper.make_opsetid("ai.onnx.ml", ml_opset))
    model = helper.make_model(graph, opset_imports=opsets, producer_name="s5geo fit")
    model.ir_version = 10  # what ONNX Runtime 1.16, the oldest s5geo supports, reads
    return model


def context_px(spec: FeatureSpec) -> int:
    """Pixels of context the features need on each side (the largest filter's radius)."""
    return math.ceil(4.0 * max(spec.sigmas) + 0.5)
