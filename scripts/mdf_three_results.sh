#!/bin/bash
# The three-dataset comparison of docs/MDF.md (Dubai + SpaceNet + Swiss trees), all variants from
# the S4P-pre-trained dense ViT-Tiny of the Dubai protocol (trained first when missing):
#   s4p_moe_p48     MoE-MDF, p = 48
#   s4p_shared_p0   shared backbone, separate decoders and classifiers (no experts)
#   s4p_sep_*       one model per dataset
# Two runs at a time (one thread each); finished runs (test.json present) are skipped and
# interrupted ones resume from their last.ckpt. Results: scripts/mdf_table.py.
# Usage: scripts/mdf_three_results.sh [SEED]   (seed 0: the run names above; seed N: suffix _seedN)
cd "$(dirname "$0")/.."
SEED=${1:-0}
SUFFIX=$([ "$SEED" = 0 ] || echo "_seed$SEED")
C=configs/mdf/cpu_three_s4p.yaml
INIT=runs/dubai/dubai_cpu_vit_tiny_seed0
if [ ! -f "$INIT/test.json" ]; then
  .venv/bin/s5geo train configs/s4p/dubai_cpu_vit_tiny.yaml --set train.seed=0 \
    --set train.out_dir=runs/dubai > runs/dubai_dubai_cpu_vit_tiny_seed0.log 2>&1 || exit 1
fi
run() {  # name, then key=value overrides
  name=$1$SUFFIX; shift
  [ -f "runs/mdf/$name/test.json" ] && return
  sets=(); for kv in "$@"; do sets+=(--set "$kv"); done
  start=$(date +%s)
  .venv/bin/s5geo train "$C" --set "train.run_name=$name" --set "train.seed=$SEED" "${sets[@]}" \
    > "runs/mdf/$name.log" 2>&1
  echo "$name rc=$? wall=$(( $(date +%s) - start ))s end=$(date +%T)" >> runs/mdf/wall.txt
}
mkdir -p runs/mdf
off() { for d in dubai spacenet swiss_trees; do [ "$d" != "$1" ] && echo "datasets.$d.enabled=false"; done; }
{ run s4p_moe_p48; run s4p_sep_spacenet $(off spacenet) moe.expert_dim=0; } &
{ run s4p_shared_p0 moe.expert_dim=0; run s4p_sep_swiss $(off swiss_trees) moe.expert_dim=0
  run s4p_sep_dubai $(off dubai) moe.expert_dim=0; } &
wait
