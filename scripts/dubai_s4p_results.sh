#!/bin/bash
# Dubai S4P results (docs/RESULTS.md) of one recipe: scripts/dubai_s4p_results.sh [RECIPE]
# RECIPE is dubai_cpu (300 steps, the default) or dubai_cpu_long (600 steps); its configs are
# configs/s4p/RECIPE.yaml, RECIPE_supervised.yaml and RECIPE_full.yaml. Variants of one seed run in
# parallel (S4P beside supervised-only then full), seeds in sequence; each run resumes from its
# last.ckpt when re-run, and finished runs (test.json present) are skipped.
cd "$(dirname "$0")/.."
recipe=${1:-dubai_cpu}
one() {  # config seed
  if [ -f runs/dubai/$1_seed$2/test.json ]; then return; fi
  start=$(date +%s)
  .venv/bin/s5geo train configs/s4p/$1.yaml --set train.seed=$2 --set train.out_dir=runs/dubai \
    > runs/dubai_$1_seed$2.log 2>&1
  echo "$1 seed$2 rc=$? wall=$(( $(date +%s) - start ))s end=$(date +%T)" >> runs/dubai_wall.txt
}
for seed in 0 1 2; do
  one "$recipe" $seed &
  one "${recipe}_supervised" $seed
  one "${recipe}_full" $seed
  wait
done
