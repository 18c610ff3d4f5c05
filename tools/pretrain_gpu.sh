#!/bin/bash
# Pretrain both embedded default base models at once on one GPU, then pack each model directory into one tar file.
# The prepared script for a lent GPU (issue 6): the tiny models leave a GPU mostly idle, so they share it, each with
# its own DataLoader workers. A time limit stops a run with a checkpoint (rerun the same command to resume) and still
# writes its model and card. ABLATION=1 adds a third run, scheme A from plain random init (the structured-init
# ablation). Runs from the repository root and needs torch, transformers and numpy only (no nbdev, fastcore or
# pycocotools), so PYTHONPATH=. is enough where the package is not installed.
#
#   tools/pretrain_gpu.sh OUT_DIR [RUN_DIR]
# env: STEPS_A STEPS_B LR_A LR_B (default 2e-3) BATCH MAX_SECONDS WORKERS DEVICE SAVE_STEPS PRECISION ABLATION, and
# INIT_A / INIT_B with FIRST_A / FIRST_B to continue a saved model on unseen examples (pretrain's init_from, first_example)
set -u
out=${1:?usage: tools/pretrain_gpu.sh OUT_DIR [RUN_DIR]}; runs=${2:-runs/gpu}
mkdir -p "$out" "$runs"
jobs="a:A:True b:B:True"
if [ "${ABLATION:-0}" = 1 ]; then
  [ -z "${INIT_A:-}" ] || { echo "ABLATION=1 compares two from-scratch runs of scheme A; unset INIT_A" >&2; exit 2; }
  jobs="$jobs a-plain:A:False"
fi
pids=()
for job in $jobs; do
  IFS=: read name scheme structured <<< "$job"
  steps=$([ $scheme = A ] && echo ${STEPS_A:-3500} || echo ${STEPS_B:-8000})
  lr=$([ $scheme = A ] && echo ${LR_A:-0.002} || echo ${LR_B:-0.002})
  init=$([ $scheme = A ] && echo ${INIT_A:-} || echo ${INIT_B:-}); first=$([ $scheme = A ] && echo ${FIRST_A:-0} || echo ${FIRST_B:-0})
  [ -n "$init" ] && [ "$structured" = True ] && init="'$init'" || init=None
  OMP_NUM_THREADS=2 PYTHONUNBUFFERED=1 python3 -c "
from soft_grounding.training import pretrain
print(pretrain('$scheme', '$runs/pretrain-$name', max_steps=$steps, batch_size=${BATCH:-256}, lr=$lr,
               device='${DEVICE:-auto}', structured_init=$structured, num_workers=${WORKERS:-4}, precision='${PRECISION:-fp32}',
               max_seconds=${MAX_SECONDS:-0}, save_steps=${SAVE_STEPS:-500}, init_from=$init, first_example=$first))" > "$out/pretrain-$name.log" 2>&1 &
  pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait $p || status=1; done
for job in $jobs; do
  name=${job%%:*}; card=$runs/pretrain-$name/model/model_card.json
  echo "== $name"; tr '\r' '\n' < "$out/pretrain-$name.log" | grep -v "it/s\]\|s/it\]\|^ *$" | tail -8
  [ -f "$card" ] || { echo "no model for $name"; continue; }
  python3 -c "import json; c = json.load(open('$card')); print('$name', 'steps', c['steps_done'], 'seconds', c['train_seconds_this_run'], c['hardware'], c['detect_acc_at_0.5'])"
  [ "$name" = a-plain ] || tar -C "$runs/pretrain-$name" -cf "$out/default-$name.tar" model
done
exit $status
