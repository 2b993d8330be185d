#!/bin/bash
# Runs the CPU distillation recipes on the Dubai protocol one after another, in the background:
#   nohup configs/archive/distill/run_dubai_cpu.sh > runs/distill/driver.log 2>&1 &
# The supervised-only student needs no teacher and runs first; the others wait until the S4P
# teacher run (scripts/dubai_s4p_results.sh, seed 0) has finished (its test.json exists). Every
# run resumes when the script is started again; wall times are appended to runs/distill/wall.txt.
cd "$(dirname "$0")/../../.." || exit 1
mkdir -p runs/distill
TEACHER_RUN=runs/dubai/dubai_cpu_seed0
one() {  # method
  local run=runs/distill/$1_dubai_cpu_seed0
  if [ -f "$run/summary.json" ] && grep -q "$2" "$run/summary.json"; then return; fi
  local resume=""
  [ -f "$run/config.yaml" ] && resume="--resume"
  local start=$(date +%s)
  .venv/bin/s5geo distill "configs/distill/$1_dubai_cpu.yaml" --set train.out_dir=runs/distill \
    $resume > "runs/distill/$1.log" 2>&1
  echo "$1 rc=$? wall=$(( $(date +%s) - start ))s end=$(date +%T)" >> runs/distill/wall.txt
}
one supervised '"supervised"'
while [ ! -f "$TEACHER_RUN/test.json" ]; do sleep 300; done
one kd '"kd"'
one mckd '"final"'
one sskd '"refine"'
