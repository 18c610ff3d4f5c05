#!/bin/bash
# The prepared device script for what is left of issue 6, in one call (about 6 minutes on an H100 or H200):
#   1. benchmarks/loss_bench.py --device cuda      the losses at PaliGemma's vocabulary against F.cross_entropy
#   2. benchmarks/paligemma3b_bench.py             GroundingTrainer against built-in CE on a 3B-shaped model
#   3. the bf16 NaN probe: pretraining at the recipe that went NaN on an H200 (batch 256, lr 2e-3, bf16 autocast;
#      scheme B, and scheme A from plain init), two processes sharing the GPU for PROBE_SECONDS each. The trainer's
#      NonFiniteGuard stops a run at its first non-finite gradient and says where the NaN starts (a module's output,
#      the loss, or the backward pass); a run that stays finite says "finished".
# Runs from the repository root with torch, transformers, peft and numpy only (PYTHONPATH=.; no nbdev, fastcore or
# pycocotools). Each part has its own time limit, and its output goes to OUT_DIR/<part>.txt as well as to stdout.
# TINY=1 runs every part at small sizes on the CPU, to check the script itself.
#
#   tools/gpu_checks.sh OUT_DIR [RUN_DIR]
set -u
out=${1:?usage: tools/gpu_checks.sh OUT_DIR [RUN_DIR]}; runs=${2:-runs/gpu-checks}
mkdir -p "$out" "$runs"
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
if [ "${TINY:-0}" = 1 ]; then
  loss_args="--device cpu --tokens 64 --reps 1"; bench_args="--tiny --steps 3 --rounds 1"
  probe="max_steps=4, batch_size=4, eval_examples=2, device='cpu', vision_width=32, vision_layers=1, text_width=32, text_layers=1"
else
  loss_args="--device cuda"; bench_args=""
  probe="max_steps=4200, batch_size=256, num_workers=4, max_seconds=${PROBE_SECONDS:-75}, eval_examples=200"
fi
status=0
part() {  # part NAME SECONDS COMMAND...: run with a time limit, keep the output
  local name=$1 limit=$2; shift 2
  echo "== $name"
  local start=$SECONDS
  timeout "$limit" "$@" > "$out/$name.txt" 2>&1; local rc=$?
  tr '\r' '\n' < "$out/$name.txt" | grep -v "it/s\]\|s/it\]\|^ *$\|Warning\|warn(" | tail -12
  echo "-- $name: exit $rc after $((SECONDS - start)) s"
  [ $rc = 0 ] || status=1
}
part loss_bench 240 python3 benchmarks/loss_bench.py $loss_args
part paligemma3b_bench 240 python3 benchmarks/paligemma3b_bench.py $bench_args
probe_run() {  # probe_run NAME SCHEME STRUCTURED
  python3 -c "
from soft_grounding.training import NonFiniteError, pretrain
try: print('finished:', pretrain('$2', '$runs/probe-$1', lr=2e-3, precision='bf16', save_steps=50, structured_init=$3, $probe))
except NonFiniteError as e: print('NonFiniteError:', e)"
}
export -f probe_run; export runs probe
part bf16_probe 200 bash -c 'probe_run b B True > "$0/probe-b.txt" 2>&1 & probe_run a-plain A False > "$0/probe-a-plain.txt" 2>&1 & wait' "$out"
for name in b a-plain; do
  echo "== bf16 probe, $name"; grep -h "NonFiniteError\|^finished\|Error" "$out/probe-$name.txt" | tail -3
  card=$runs/probe-$name/model/model_card.json
  [ -f "$card" ] && python3 -c "import json; c = json.load(open('$card')); print('$name: steps', c['steps_done'], 'detect', c['detect_acc_at_0.5'])"
done
exit $status
