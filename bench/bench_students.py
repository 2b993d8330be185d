"""Which student networks gain from INT8 on CPU: each exported FP32 and static INT8, timed alone.

    python bench/bench_students.py [SPEC ...] [--repeats 5] [--threads 0] [--out bench/out/students]

A SPEC is ``model_name@decoder_width`` (``smp:FPN:tu-mobilenetv3_large_100@64``) or a preset of
s5geo.distill.students.STUDENTS (``fpn_mnv3l``). Each network is built with random weights (speed
does not depend on what the weights are), exported exactly as ``s5geo export`` exports a trained
student (s5geo.export: opset, written-out softmax, model-file metadata, parity check on real Dubai
val windows), quantised by the same static INT8 path (``to_int8``: QDQ, calibrated on those
windows), and both files are timed alone by bench_predict's ``tile_speeds`` (s5geo's own ONNX
Runtime session, batch of 4 tiles of 512 px, interleaved rounds, medians). Reported per network:
parameters, GFLOPs per tile, FP32 and INT8 MP/s, and INT8 over FP32 for the network alone: a
screen for which students to train, since the issue's 1.5x goal is judged on trained files end
to end through ``s5geo predict`` (bench_predict.py models). Needs the development install
(torch) and ``S5GEO_DATA``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from s5geo.config import ModelConfig  # noqa: E402

# Candidates by what INT8 kernels like: MobileNetV3 (bundled until 2026-12-07; hard-swish,
# squeeze-excite, depthwise), its "minimal" variant (ReLU, no SE, still depthwise),
# EfficientNet-Lite0 (ReLU6, no SE), RegNetX-200MF (grouped convs, ReLU) and ResNet-10t
# (dense 3x3 convs, ReLU: what VNNI kernels run best).
DEFAULT_SPECS = [
    "fpn_mnv3l",
    "smp:FPN:tu-tf_mobilenetv3_large_minimal_100@64",
    "fpn_effl0",
    "smp:FPN:tu-regnetx_002@64",
    "smp:FPN:tu-resnet10t@64",
]


def model_config(spec: str) -> ModelConfig:
    """The ModelConfig of a SPEC (5 Dubai classes, RGB)."""
    from s5geo.distill.students import STUDENTS, student_config

    if spec in STUDENTS:
        return student_config(spec, num_classes=5)
    name, _, width = spec.partition("@")
    return ModelConfig(
        name=name, num_classes=5, in_chans=3, decoder_channels=int(width or 64), dropout=0.1
    )


def export_pair(spec: str, out: Path) -> tuple[Path, Path, float, float]:
    """FP32 and INT8 files of SPEC's network (random weights); parameters (M) and GFLOPs."""
    import torch

    from s5geo.distill.config import load_distill_config
    from s5geo.distill.students import build_student, gflops
    from s5geo.export.onnx_export import export_model
    from s5geo.export.pipeline import model_info_for, real_windows, validation_images
    from s5geo.export.quantize import to_int8
    from s5geo.export.standardize import standardize_in_graph

    recipe = load_distill_config(ROOT / "configs/distill/default_dubai_cpu.yaml")
    mcfg = model_config(spec)
    cfg = recipe.stage_run_config(mcfg, recipe.distill.sskd.transfer, "transfer")
    torch.manual_seed(0)
    net = build_student(mcfg).eval()
    params = sum(p.numel() for p in net.parameters()) / 1e6
    flops = gflops(net)
    stem = spec.replace(":", "_").replace("@", "_w")
    fp32, int8 = out / f"{stem}.onnx", out / f"{stem}.int8.onnx"
    net, info = standardize_in_graph(net, model_info_for(cfg, fp32, 512))  # as s5geo export does
    windows = real_windows(info, validation_images(cfg), 16)
    report = export_model(net, fp32, info, windows)
    to_int8(fp32, int8, windows)
    print(f"{spec}: exported (parity {report.max_abs_diff:.1e}), INT8 written", flush=True)
    return fp32, int8, params, flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("specs", nargs="*", default=DEFAULT_SPECS)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--out", type=Path, default=BENCH / "out" / "students")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    from bench_predict import machine, megapixels_per_second, tile_speeds

    pairs = {spec: export_pair(spec, args.out) for spec in args.specs}
    paths = [str(p) for fp32, int8, _, _ in pairs.values() for p in (fp32, int8)]
    speeds = tile_speeds(paths, args.repeats, threads=args.threads)
    mp_s = {Path(p): megapixels_per_second(*speeds[p]) for p in paths}
    rows = "".join(
        f"| `{spec}` | {params:.2f} | {flops:.2f} | {mp_s[fp32]:.2f} | {mp_s[int8]:.2f} | "
        f"**{mp_s[int8] / mp_s[fp32]:.2f}** |\n"
        for spec, (fp32, int8, params, flops) in pairs.items()
    )
    report = (
        f"{machine()} The networks alone: s5geo's ONNX Runtime session "
        f"({args.threads or 'default'} intra-op threads), a batch of 4 random 512 px tiles, "
        f"{args.repeats} interleaved rounds of 3 runs, medians; random weights, exported and "
        "quantised as `s5geo export --int8` does.\n\n"
        "| student | params (M) | GFLOPs / 512 px tile | FP32 MP/s | INT8 MP/s | INT8 / FP32 |\n"
        "|---|---|---|---|---|---|\n" + rows
    )
    (args.out / "students_int8.md").write_text(report + "\n")
    print(report)


if __name__ == "__main__":
    main()
