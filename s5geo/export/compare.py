"""How a reduced-precision version of an exported model compares with its FP32 file.

``s5geo export --fp16/--int8`` measures each version against the FP32 file on real windows of
images the INT8 calibration did not see, through the runtime `s5geo predict` uses (same session
options and execution provider): the share of image pixels whose class agrees (padding past
image edges not counted), and the time per window (medians of interleaved runs, the order
alternating per window so neither file always runs first). The time is the network's alone, one
window at a time: end to end through `s5geo predict` a faster network gains less
(docs/BENCHMARKS.md).
It is the check at export time, before anyone deploys the file; the accuracy drop on a labelled
split is ``s5geo evaluate``'s job (docs/RESULTS.md gives both for the shipped models).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from s5geo.infer.runtime import Model, load_model


@dataclass(frozen=True)
class VariantReport:
    """A version of a model file against the FP32 file, on ``windows`` windows."""

    agreement: float  # share of image pixels with the same class, 0..1
    reference_ms: float  # median time per window of the FP32 file
    variant_ms: float
    windows: int
    provider: str

    @property
    def speedup(self) -> float:
        """How many times faster the version runs than the FP32 file (below 1: slower)."""
        return self.reference_ms / self.variant_ms

    def describe(self, windows: str) -> str:
        """One line for the user; ``windows`` says what the windows were (e.g. "real windows of
        training images")."""
        return (
            f"classes agree with FP32 on {100 * self.agreement:.2f} % of pixels of "
            f"{self.windows} {windows}; network {self.speedup:.2f}x as fast on "
            f"{self.provider} ({self.variant_ms:.0f} against {self.reference_ms:.0f} ms per "
            "window)"
        )


def _timed(model: Model, window: np.ndarray) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    classes = model.run(window).argmax(axis=1)
    return classes, time.perf_counter() - started


def compare_variant(
    reference: Path, variant: Path, windows: np.ndarray, inside: np.ndarray | None = None
) -> VariantReport:
    """Run ``windows`` [N, C, T, T] (normalised) one at a time through both files and compare
    their classes where ``inside`` [N, T, T] is True (None: everywhere)."""
    if inside is None:
        inside = np.ones((len(windows), *windows.shape[2:]), bool)
    ref, var = load_model(reference), load_model(variant)
    ref.run(windows[:1])  # first runs allocate and tune: not timed
    var.run(windows[:1])
    same = 0
    ref_s: list[float] = []
    var_s: list[float] = []
    for i in range(len(windows)):
        window = windows[i : i + 1]
        if i % 2:
            want, t_ref = _timed(ref, window)
            got, t_var = _timed(var, window)
        else:
            got, t_var = _timed(var, window)
            want, t_ref = _timed(ref, window)
        same += int(((want == got) & inside[i : i + 1]).sum())
        ref_s.append(t_ref)
        var_s.append(t_var)
    return VariantReport(
        agreement=same / int(inside.sum()),
        reference_ms=1000 * float(np.median(ref_s)),
        variant_ms=1000 * float(np.median(var_s)),
        windows=len(windows),
        provider=var.provider.removesuffix("ExecutionProvider"),
    )
