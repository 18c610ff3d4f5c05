"""Ship a pretrained base model into the package: copy a `soft-grounding pretrain` output model/ directory into
soft_grounding/assets/default-<scheme>, with a card that lists every stage that made it (a stage is one pretrain run;
a continuation names its predecessor with --init_from). Pass the earlier stages' model_card.json files in order.

    python tools/ship_base_model.py A runs/gpu2/a/model runs/gpu1/a/model/model_card.json
    python tools/ship_base_model.py B runs/pretrain-b/model
"""
import json, shutil, sys, tempfile
from pathlib import Path

KEYS = ("command", "max_steps", "steps_done", "stopped_early", "batch_size", "lr", "precision", "train_seconds_this_run", "hardware", "detect_acc_at_0.5")
scheme, final_dir, earlier = sys.argv[1], Path(sys.argv[2]), [Path(p) for p in sys.argv[3:]]
dst = Path(__file__).resolve().parents[1] / "soft_grounding" / "assets" / f"default-{scheme.lower()}"
cards = [json.loads(p.read_text()) for p in earlier] + [json.loads((final_dir / "model_card.json").read_text())]
for i, c in enumerate(cards):
    if c["scheme"] != scheme: sys.exit(f"a card of scheme {c['scheme']} is not scheme {scheme}")
    if i and not c.get("init_from"): sys.exit(f"stage {i + 1} ({c['command']}) did not continue a model (no init_from): not a stage of the one before")
tmp = Path(tempfile.mkdtemp()) / "model"; shutil.copytree(final_dir, tmp)
card = dict(cards[-1])
# cards written before `precision` existed: pretrain trained in fp32 on a CPU and in bf16 autocast on a GPU
stages = [{k: c.get(k, ("fp32" if c["hardware"].startswith("CPU") else "bf16") if k == "precision" else None) for k in KEYS} for c in cards]
for s in stages:  # cards written before `--precision` existed: name it, so that the command reproduces the stage
    if "--precision" not in s["command"]: s["command"] = s["command"].replace(f"--seed ", f"--precision {s['precision']} --seed ", 1)
for c, s in zip(cards[1:], stages[1:]): s["command"] = s["command"].replace(f"--init_from {c['init_from']}", "--init_from <the previous stage's model>")
card.update(stages=stages, train_seconds_total=round(sum(c["train_seconds_this_run"] for c in cards), 1))
if len(cards) > 1:
    card["command"], card["init_from"] = stages[-1]["command"], "the previous stage in `stages`"
(tmp / "model_card.json").write_text(json.dumps(card, indent=2) + "\n")
acc = card["detect_acc_at_0.5"]
lines = [f"{i}. `{s['command']}` on {s['hardware']} ({s['precision']}, {s['train_seconds_this_run']:.0f} s): detect Acc@0.5 "
         f"{s['detect_acc_at_0.5']['acc']:.3f}" for i, s in enumerate(stages, 1)]
(tmp / "README.md").write_text(
    f"# soft_grounding default base model, scheme {scheme}\n\n"
    f"Detect Acc@0.5 {acc['acc']:.3f} ({acc['n_boxes']} boxes of {card['eval']}); the goal is 0.95. "
    f"Made in {len(stages)} stage{'s' if len(stages) > 1 else ''}"
    f"{' (each continuing the one before on unseen training-pool examples, with a new schedule)' if len(stages) > 1 else ''}:\n\n"
    + "\n".join(lines) + f"\n\n```json\n{json.dumps(card, indent=2)}\n```\n")
shutil.rmtree(dst, ignore_errors=True); shutil.copytree(tmp, dst)
print(dst, acc, sorted(p.name for p in dst.iterdir()))
