"""The fitted model file: feature graph + forest, folded into one ONNX segmentation model.

The result follows the model-file contract like any exported network (input ``image`` [N, C, T, T],
output ``probs`` [N, K, T, T], Deepness-style metadata), so ``s5geo predict``, ``s5geo evaluate``,
the QGIS plugin, Deepness and GeoDeep stream it over scenes of any size unchanged.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from s5geo.fit.features import FeatureSpec, _image_input, _model, feature_graph
from s5geo.modelfile import ModelInfo

RF_PREFIX = "rf/"


def _forest_nodes(forest: onnx.ModelProto, features: str) -> tuple[list, list, str, int]:
    """The forest's nodes reading ``features``, renamed; its probabilities output and ML opset."""
    g = forest.graph
    source = g.input[0].name
    probs = next(o.name for o in g.output if "prob" in o.name)

    def rename(t: str) -> str:
        return features if t == source else (RF_PREFIX + t if t else t)

    nodes = []
    for n in g.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(n)
        copy.name = RF_PREFIX + (n.name or n.output[0])
        copy.input[:] = [rename(i) for i in n.input]
        copy.output[:] = [rename(o) for o in n.output]
        nodes.append(copy)
    inits = []
    for init in g.initializer:
        copy = onnx.TensorProto()
        copy.CopyFrom(init)
        copy.name = RF_PREFIX + init.name
        inits.append(copy)
    ml = next((o.version for o in forest.opset_import if o.domain == "ai.onnx.ml"), 3)
    return nodes, inits, RF_PREFIX + probs, ml


def fitted_model(
    spec: FeatureSpec,
    tile: int,
    forest: onnx.ModelProto,
    class_ids: list[int],
    info: ModelInfo,
    encoder: onnx.ModelProto | None = None,
) -> onnx.ModelProto:
    """``image`` -> features -> per-pixel forest -> ``probs`` [N, K, tile, tile], with metadata.

    The forest's columns are ``class_ids`` (sorted); the output has ``K = max(class_ids) + 1``
    channels, so an analyst's integer codes stay the map's class ids (codes not in use get 0).
    """
    classes = max(class_ids) + 1
    nodes, inits, features = feature_graph(spec, tile, encoder)
    const = {
        "fit/flat": np.array([-1, spec.count], np.int64),
        "fit/grid": np.array([tile, tile, classes], np.int64),
        "fit/first": np.array([0], np.int64),
        "fit/second": np.array([1], np.int64),
    }
    inits += [numpy_helper.from_array(v, k) for k, v in const.items()]
    make = helper.make_node
    nodes += [
        make("Transpose", [features], ["fit/nhwc"], perm=[0, 2, 3, 1]),
        make("Reshape", ["fit/nhwc", "fit/flat"], ["fit/pixels"]),
    ]
    rf_nodes, rf_inits, rf_probs, ml = _forest_nodes(forest, "fit/pixels")
    nodes += rf_nodes
    inits += rf_inits
    if list(class_ids) != list(range(classes)):
        spread = np.zeros((len(class_ids), classes), np.float32)
        spread[np.arange(len(class_ids)), class_ids] = 1.0
        inits.append(numpy_helper.from_array(spread, "fit/spread"))
        nodes.append(make("MatMul", [rf_probs, "fit/spread"], ["fit/probs_k"]))
        rf_probs = "fit/probs_k"
    nodes += [
        make("Shape", ["image"], ["fit/image_shape"]),
        make("Slice", ["fit/image_shape", "fit/first", "fit/second"], ["fit/batch"]),
        make("Concat", ["fit/batch", "fit/grid"], ["fit/out_shape"], axis=0),
        make("Reshape", [rf_probs, "fit/out_shape"], ["fit/probs_nhwc"]),
        make("Transpose", ["fit/probs_nhwc"], ["probs"], perm=[0, 3, 1, 2]),
    ]
    out = helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", classes, tile, tile])
    graph = helper.make_graph(nodes, "s5geo_fit", [_image_input(spec.bands, tile)], [out], inits)
    model = _model(graph, ml_opset=ml)
    set_metadata(model, info)
    onnx.checker.check_model(model)
    return model


def set_metadata(model: onnx.ModelProto, info: ModelInfo) -> None:
    """Replace the model's metadata with ``info``'s (the model-file contract's keys)."""
    del model.metadata_props[:]
    for key, value in info.to_metadata().items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
