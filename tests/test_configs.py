"Each shipped config in configs/ runs end to end through the command line (tune, sweep, report) on tiny checkpoints of its family and real-format fixtures of its dataset, its paths swapped and its grid cut down."
import json
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures import write_coco, write_flickr30k, write_refcoco

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.json"))
SCRIPT = Path(sys.executable).parent / "soft-grounding"
# what the CPU can run: two methods, two sizes, one seed, one trial, tiny pools; everything else as shipped
SMALL = dict(methods=["onehot_ce", "dip_ce"], sizes=[2, 4], seeds=[0], step_choices=[2], n_trials=1, tune_size=2,
             batch_size=2, grad_accum=1, warmup_steps=0, n_test=4, n_val=4, n_curve=2, curve_steps=[1])


def test_every_pairing_is_shipped():
    pairs = {(c["model"]["family"], c["data"]["kind"], c["task"]) for c in map(lambda p: json.loads(p.read_text()), CONFIGS)}
    assert pairs == {("paligemma", "refcoco", "refer"), ("kosmos2", "flickr30k", "ground"), ("florence2", "refcoco", "refer"),
                     ("florence2", "coco", "detect")}
    names = {p.name for p in CONFIGS}
    assert {"paligemma-refcoco.json", "paligemma-refcocoplus.json", "paligemma-refcocog.json", "paligemma2-refcoco.json"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_config_runs_end_to_end(path, tmp_path):
    from soft_grounding.experiments import load_sweep_config
    from soft_grounding.models import build_tiny_florence2, build_tiny_kosmos2, build_tiny_paligemma
    shipped = json.loads(path.read_text())
    assert all(k in shipped for k in ("_about", "_recipe", "_estimate"))  # what it is for, whose recipe, time and memory
    load_sweep_config(path)  # loads as shipped
    family, data = shipped["model"]["family"], dict(shipped["data"])
    model, processor = {"paligemma": build_tiny_paligemma, "kosmos2": build_tiny_kosmos2,
                        "florence2": build_tiny_florence2}[family]()
    model.save_pretrained(tmp_path / "ckpt")
    processor.save_pretrained(tmp_path / "ckpt")
    if data["kind"] == "refcoco":
        dataset = data.get("dataset", "refcoco")
        umd = dataset == "refcocog"
        write_refcoco(tmp_path / "refer", tmp_path / "images", dataset=dataset, split_by="umd" if umd else "unc",
                      splits=("train", "val", data["test"]))
        data.update(root=str(tmp_path / "refer"), image_dir=str(tmp_path / "images"))
    elif data["kind"] == "flickr30k":
        write_flickr30k(tmp_path / "flickr", tmp_path / "images")
        data.update(root=str(tmp_path / "flickr"), image_dir=str(tmp_path / "images"))
    else:
        write_coco(tmp_path / "coco")
        data.update(root=str(tmp_path / "coco"), image_dir=str(tmp_path / "coco"))
    small = {**shipped, **SMALL, "model": {**shipped["model"], "path": str(tmp_path / "ckpt")}, "data": data,
             **({"best_of": 2, "n_best_of": 2, "beams": 2} if shipped.get("best_of") else {})}
    cfg = tmp_path / path.name
    cfg.write_text(json.dumps(small))
    out = tmp_path / "out"
    for args in (("tune", "--config", str(cfg), "--out", str(out)), ("experiment", "--config", str(cfg), "--out", str(out))):
        res = subprocess.run([str(SCRIPT), *args, "--device", "cpu", "--workers", "1"], capture_output=True, text=True,
                             timeout=600)
        assert res.returncode == 0, res.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["run_id"] for r in rows) == sorted([f"{family}/zero_shot/n0/s0"] + [
        f"{family}/{m}/n{n}/s0" for m in ("onehot_ce", "dip_ce") for n in (2, 4)])
    assert {r["task"] for r in rows} == {shipped["task"]}
    task_metric = {"refer": "acc_expect", "ground": "recall_merged", "detect": "map"}[shipped["task"]]
    assert all(task_metric in r["metrics"] for r in rows)
    assert "5 runs" in (out / "report" / "report.md").read_text()
