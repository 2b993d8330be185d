#!/bin/bash
# Builds the bundled default model (docs/DEFAULT_MODEL.md) from scratch, resuming where it stopped:
#   1. the 1200-step S4P CPU teacher (configs/s4p/dubai_cpu_1200.yaml, seed 0; 9-21 min)
#      unless TEACHER names a checkpoint;
#   2. the student, distilled by RECIPE (default configs/distill/default_dubai_cpu.yaml: SSKD
#      without teacher adaptation, student fpn_r10t, knowledge transfer 3000 steps, refinement
#      100 steps, 2 threads; 50 min measured on the 2-core VM, docs/DEFAULT_MODEL.md); each
#      stage resumes or is skipped when finished; a run folder left by a recipe of another step
#      count is refused: pass another OUT. On a slower machine
#      RECIPE=configs/distill/mnv3l_3600_dubai_cpu.yaml builds the MobileNetV3 default it
#      replaced (about 1.7x less time per step, 1.4 mIoU less on Tile 8);
#   3. export of the run's student (student.json: the transferred or the refined student,
#      whichever scores higher on val) to ONNX (parity-checked) and static INT8 calibrated on
#      real val windows;
#   4. both files scored on Tile 8 (test) through the deployment predictor;
#   5. the INT8 file chosen when it loses at most 1 mIoU against FP32 (else the FP32 file),
#      scores in runs/.../default_model.json, and the choice installed as
#      s5geo/resources/default.onnx (INSTALL=0: chosen and scored, not installed).
# Usage: scripts/default_model.sh            (or `make default-model`)
#        TEACHER=path/to/best.ckpt OUT=runs/distill INSTALL=0 scripts/default_model.sh
#        SEED=1 OUT=runs/seed1 INSTALL=0 scripts/default_model.sh   (another seed of the student;
#        the teacher stays seed 0)
#        RECIPE=configs/distill/mnv3l_3600_dubai_cpu.yaml scripts/default_model.sh
# RECIPE, TEACHER and OUT given by the caller are relative to the caller's folder; the defaults
# to the repository, where the script runs.
set -euo pipefail
caller=$PWD
from_caller() { case "$1" in /*) echo "$1" ;; *) echo "$caller/$1" ;; esac; }
[ -n "${RECIPE:-}" ] && RECIPE=$(from_caller "$RECIPE")
[ -n "${TEACHER:-}" ] && TEACHER=$(from_caller "$TEACHER")
[ -n "${OUT:-}" ] && OUT=$(from_caller "$OUT")
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
OUT=${OUT:-runs/distill}
SEED=${SEED:-0}
RECIPE=${RECIPE:-configs/distill/default_dubai_cpu.yaml}
stem=$(basename "$RECIPE")
stem=${stem%.yaml}
RUN=$OUT/${stem%.yml}_seed$SEED  # the run folder s5geo distill names: <config stem>_seed<seed>
TEACHER=${TEACHER:-runs/dubai/dubai_cpu_1200_seed0/checkpoints/best.ckpt}
INSTALL=${INSTALL:-1}
mkdir -p "$OUT"
log() { echo "[default-model $(date +%T)] $*"; }

if [ ! -f "$TEACHER" ]; then
  log "training the S4P teacher (configs/s4p/dubai_cpu_1200.yaml) -> runs/dubai/dubai_cpu_1200_seed0"
  "$BIN/s5geo" train configs/s4p/dubai_cpu_1200.yaml --set train.seed=0 --set train.out_dir=runs/dubai
  TEACHER=runs/dubai/dubai_cpu_1200_seed0/checkpoints/best.ckpt
fi

resume=()
[ -f "$RUN/config.yaml" ] && resume=(--resume)
log "distilling the student from $TEACHER -> $RUN"
"$BIN/s5geo" distill "$RECIPE" --set "distill.teacher=$TEACHER" \
  --set "train.out_dir=$OUT" --set "train.seed=$SEED" "${resume[@]}"

# the run's student: the transferred or the refined one, whichever scores higher on val
STUDENT=$("$BIN/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["checkpoint"])' \
  "$RUN/student.json")
log "exporting $STUDENT"
"$BIN/s5geo" export "$STUDENT" --out "$RUN/default.onnx" --int8 --overwrite
for variant in default default.int8; do
  "$BIN/s5geo" evaluate "$RUN/$variant.onnx" --data configs/data/dubai.yaml --split test --json \
    > "$RUN/$variant.test.json"
done

"$BIN/python" - "$RUN" "$INSTALL" <<'EOF'
import json, shutil, sys
from pathlib import Path

run = Path(sys.argv[1])
fp32 = json.loads((run / "default.test.json").read_text())
int8 = json.loads((run / "default.int8.test.json").read_text())
drop = fp32["miou"] - int8["miou"]
chosen = "default.int8.onnx" if drop <= 1.0 else "default.onnx"
summary = {"fp32_miou": fp32["miou"], "int8_miou": int8["miou"], "int8_drop": drop,
           "chosen": chosen, "bytes": (run / chosen).stat().st_size}
if sys.argv[2] == "1":
    target = Path("s5geo/resources/default.onnx")
    tmp = target.with_suffix(".onnx.tmp")
    shutil.copyfile(run / chosen, tmp)
    tmp.replace(target)
(run / "default_model.json").write_text(json.dumps(summary, indent=2) + "\n")
print(json.dumps(summary, indent=2))
EOF
[ "$INSTALL" = 1 ] && log "installed s5geo/resources/default.onnx; describe it with: $BIN/s5geo info"
log "done: $RUN/default_model.json"
