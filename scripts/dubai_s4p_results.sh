#!/bin/bash
# Dubai S4P results (docs/RESULTS.md): variants of one seed in parallel (S4P and supervised-only together, then full),
# seeds in sequence; each run resumes from its last.ckpt when re-run.
cd "$(dirname "$0")/.."
one() {  # config seed
  if [ -f runs/dubai/$1_seed$2/test.json ]; then return; fi
  start=$(date +%s)
  .venv/bin/s5geo train configs/s4p/$1.yaml --set train.seed=$2 --set train.out_dir=runs/dubai \
    > runs/dubai_$1_seed$2.log 2>&1
  echo "$1 seed$2 rc=$? wall=$(( $(date +%s) - start ))s end=$(date +%T)" >> runs/dubai_wall.txt
}
for seed in 0 1 2; do
  one dubai_cpu $seed &
  one dubai_cpu_supervised $seed
  one dubai_cpu_full $seed
  wait
done
