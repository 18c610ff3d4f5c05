"""Ship a continued base model into the package: copy <stage2 dir> (a `soft-grounding pretrain --init_from ...` output
model/) into soft_grounding/assets/default-<scheme> with a card that records both stages.

    python tools/ship_base_model.py A <stage 1 model_card.json> runs/pretrain-a2/model
"""
import json, shutil, sys, tempfile
from pathlib import Path
scheme, stage1_card, stage2_dir = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
dst = Path(__file__).resolve().parents[1] / "soft_grounding" / "assets" / f"default-{scheme.lower()}"
s1 = json.loads(stage1_card.read_text())
s2 = json.loads((stage2_dir / "model_card.json").read_text())
tmp = Path(tempfile.mkdtemp()) / "model"; shutil.copytree(stage2_dir, tmp)
card = {**s2, "stages": [{k: s1[k] for k in ("command", "max_steps", "batch_size", "lr", "train_seconds_this_run", "hardware", "detect_acc_at_0.5")},
                         {k: s2[k] for k in ("command", "max_steps", "batch_size", "lr", "train_seconds_this_run", "hardware", "detect_acc_at_0.5")}],
        "train_seconds_total": round(s1["train_seconds_this_run"] + s2["train_seconds_this_run"], 1)}
card["command"] = s2["command"].replace(f"--init_from {s2['init_from']}", "--init_from <stage 1 model>")
card["init_from"] = "stage 1: " + s1["command"]
(tmp / "model_card.json").write_text(json.dumps(card, indent=2) + "\n")
acc = card["detect_acc_at_0.5"]
(tmp / "README.md").write_text(f"# soft_grounding default base model, scheme {scheme}\n\nTwo stages on this project's 2-core CPU:\n\n"
    f"1. `{s1['command']}` ({s1['train_seconds_this_run']:.0f} s): detect Acc@0.5 {s1['detect_acc_at_0.5']['acc']:.3f}\n"
    f"2. `{card['command']}` ({s2['train_seconds_this_run']:.0f} s, continuing from stage 1 on unseen training-pool examples): "
    f"detect Acc@0.5 {acc['acc']:.3f} ({acc['n_boxes']} boxes of 500 validation examples)\n\n"
    f"The goal is 0.95. Issue 6 measured 0.997 for scheme A with `soft-grounding pretrain`'s defaults in 210 s on an H200; no GPU was available to this project yet, and scheme B has not been run on one.\n\n```json\n{json.dumps(card, indent=2)}\n```\n")
shutil.rmtree(dst, ignore_errors=True); shutil.copytree(tmp, dst)
print(dst, acc, sorted(p.name for p in dst.iterdir()))
