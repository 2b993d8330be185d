"""Does a model file give the same map in another tool? GeoDeep against `s5geo predict`.

    python bench/other_tools.py [SCENE] [--model MODEL.onnx ...]

GeoDeep (uav4geo, a dev dependency) reads the Deepness metadata keys, divides the scene by 255
and feeds the graph; it then zeroes probabilities under its threshold (the file's ``seg_thresh``,
else 0.5), takes the argmax, and smooths with a 5 px median filter and small-segment removal.
For each model (default: the bundled one) this prints the share of valid pixels whose class is
the same in both, and each tool's class shares. Default scene: the NAIP scene of `make demo`.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import geodeep
import numpy as np
import rasterio

from s5geo.config import data_root
from s5geo.infer import load_model
from s5geo.infer.predict import predict_scene
from s5geo.infer.runtime import default_model_path


def compare(scene: Path, model: Path) -> str:
    """A markdown row: the model, the agreement and both tools' class shares."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ours.tif"
        loaded = load_model(model)
        predict_scene(scene, out, model=loaded)
        with rasterio.open(out) as ds:
            ours = ds.read(1)
    theirs = np.asarray(geodeep.run(str(scene), str(model), output_type="raw"))
    # GeoDeep downsamples scenes finer than the file's resolution (10 cm without one): then the
    # two maps are on different grids and cannot be compared pixel for pixel.
    assert theirs.shape == ours.shape, f"GeoDeep's map is {theirs.shape}, s5geo's {ours.shape}"
    valid = ours != 255
    shares = ", ".join(
        f"{name} {100 * (ours[valid] == k).mean():.1f} / {100 * (theirs[valid] == k).mean():.1f}"
        for k, name in sorted(loaded.info.class_names.items())
    )
    agree = 100 * float((ours == theirs)[valid].mean())
    return f"| `{model.name}` | {agree:.2f} % | {shares} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_scene = data_root() / "naip" / "m_4709963_se_14_1_20200831.tif"
    parser.add_argument("scene", nargs="?", type=Path, default=default_scene)
    parser.add_argument("--model", type=Path, nargs="+", default=[default_model_path()])
    args = parser.parse_args()
    print(f"Scene: {args.scene}\n")
    print("| model | same class in GeoDeep | class shares, % (s5geo / GeoDeep) |")
    print("|---|---|---|")
    for model in args.model:
        print(compare(args.scene, model))


if __name__ == "__main__":
    main()
