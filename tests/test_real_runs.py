"A real checkpoint and a real-format dataset through `soft-grounding experiment/tune --config`, as a cluster user runs them."
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures import write_refcoco

SCRIPT = Path(sys.executable).parent / "soft-grounding"


def run(*args):
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def machine(tmp_path_factory):
    "A 'machine': a tiny PaliGemma checkpoint in the real layout and a RefCOCO fixture under one mount point."
    from soft_grounding.models import build_tiny_paligemma
    root = tmp_path_factory.mktemp("node1")
    model, processor = build_tiny_paligemma()
    model.save_pretrained(root / "ckpt")
    processor.save_pretrained(root / "ckpt")
    write_refcoco(root / "refer", root / "coco")
    return root


def config_file(root, path, **changes):
    fields = {"model": {"family": "paligemma", "path": str(root / "ckpt")},
              "data": {"kind": "refcoco", "root": str(root / "refer"), "image_dir": str(root / "coco"), "test": "testA"},
              "methods": ["onehot_ce", "dip_ce"], "sizes": [2, 4], "seeds": [0], "step_choices": [2], "batch_size": 2,
              "n_test": 6, "n_val": 4, "n_trials": 1, "tune_size": 2, "warmup_steps": 0, **changes}
    path.write_text(json.dumps(fields))
    return path


def rows_of(out):
    return [json.loads(line) for p in sorted(out.glob("results*.jsonl")) for line in p.read_text().splitlines()]


def test_tune_once_then_shards_on_two_machines(machine, tmp_path):
    # the second machine mounts the same checkpoint and data elsewhere
    other = tmp_path / "node2"
    shutil.copytree(machine, other)
    res = run("tune", "--config", str(config_file(machine, tmp_path / "a.json")), "--out", str(tmp_path / "tuned"),
              "--device", "cpu", "--workers", "1")
    assert res.returncode == 0, res.stderr
    out = tmp_path / "sweep"
    out.mkdir()
    shutil.copy(tmp_path / "tuned" / "tuned.json", out / "tuned.json")
    for shard, root in (("0/2", machine), ("1/2", other)):  # each shard with its own machine's paths
        res = run("experiment", "--config", str(config_file(root, tmp_path / f"{root.name}.json")), "--out", str(out),
                  "--shard", shard, "--device", "cpu", "--workers", "1")
        assert res.returncode == 0, res.stderr
    assert not (out / "tuning.jsonl").exists()  # no shard tuned
    rows = rows_of(out)
    assert sorted(r["run_id"] for r in rows) == ["paligemma/dip_ce/n2/s0", "paligemma/dip_ce/n4/s0",
                                                 "paligemma/onehot_ce/n2/s0", "paligemma/onehot_ce/n4/s0"]
    assert len({r["config_hash"] for r in rows}) == 1  # other paths, one configuration
    report = (out / "report" / "report.md").read_text()
    assert "4 runs" in report
    # a shard of a configuration that no `tune` step has tuned is refused, before anything is written
    res = run("experiment", "--config", str(tmp_path / "a.json"), "--out", str(tmp_path / "untuned"), "--shard", "0/2",
              "--device", "cpu")
    assert res.returncode == 2 and "a shard never tunes" in res.stderr and not (tmp_path / "untuned").exists()


def test_rows_of_another_configuration_are_reported(machine, tmp_path):
    from soft_grounding.analysis import load_rows
    out = tmp_path / "out"
    res = run("experiment", "--config", str(config_file(machine, tmp_path / "a.json", sizes=[2])), "--out", str(out),
              "--device", "cpu", "--workers", "1")
    assert res.returncode == 0, res.stderr
    stray = {**rows_of(out)[0], "config_hash": "0123456789ab", "run_id": "paligemma/onehot_ce/n8/s0"}
    with open(out / "results-1of2.jsonl", "w") as f: f.write(json.dumps(stray) + "\n")
    with pytest.warns(UserWarning, match=r"left out 1 row\(s\) of another sweep configuration"):
        assert len(load_rows(out)) == 2


def test_bad_input_is_named_and_nothing_is_lost(machine, tmp_path):
    out = tmp_path / "out"
    wrong = config_file(machine, tmp_path / "wrong.json")
    fields = json.loads(wrong.read_text())
    fields["data"]["image_dir"] = str(tmp_path / "no-images")
    wrong.write_text(json.dumps(fields))
    res = run("experiment", "--config", str(wrong), "--out", str(out), "--device", "cpu")
    assert res.returncode == 2 and "image file(s) of the train pool are missing" in res.stderr, res.stderr
    assert "no-images" in res.stderr and not (out / "sweep.json").exists()  # nothing written: the fix can rerun here
    # a checkpoint of another family names the model type it holds
    res = run("experiment", "--config", str(config_file(machine, tmp_path / "k.json", model={"family": "kosmos2", "path": str(machine / "ckpt")})),
              "--out", str(out), "--device", "cpu")
    assert res.returncode == 2 and "holds a 'paligemma' model, not 'kosmos-2'" in res.stderr, res.stderr
    # a split the refs do not hold is named with the ones they do
    res = run("experiment", "--config", str(config_file(machine, tmp_path / "s.json", data={**fields["data"], "image_dir": str(machine / "coco"), "test": "testB"})),
              "--out", str(out), "--device", "cpu")
    assert res.returncode == 2 and "unknown split 'testB'" in res.stderr and "'testA', 'train', 'val'" in res.stderr, res.stderr
    assert not (out / "sweep.json").exists()


def test_out_of_memory_names_the_run(monkeypatch):
    import torch
    from types import SimpleNamespace
    from soft_grounding.experiments import runs
    def oom(*args): raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    monkeypatch.setattr(runs, "run_one", oom)
    ctx = SimpleNamespace(device="cuda:0", config=SimpleNamespace(batch_size=8))
    with pytest.raises(RuntimeError, match=r"run paligemma/dip_ce/n64/s1 ran out of memory on cuda:0 at batch_size 8: "
                                           r"lower batch_size .*Tried to allocate 2.00 GiB"):
        runs._attempt(ctx, "paligemma", "dip_ce", 64, 1, {"lr": 1e-4, "steps": 10})



def test_torchrun_sweep_writes_each_run_once(machine, tmp_path):
    "Two torchrun processes: each rank runs its shard of the grid once, and nothing tunes."
    cfg = config_file(machine, tmp_path / "a.json")
    res = run("tune", "--config", str(cfg), "--out", str(tmp_path / "tuned"), "--device", "cpu", "--workers", "1")
    assert res.returncode == 0, res.stderr
    out = tmp_path / "sweep"
    out.mkdir()
    shutil.copy(tmp_path / "tuned" / "tuned.json", out / "tuned.json")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "--no-python",
                          str(SCRIPT), "experiment", "--config", str(cfg), "--out", str(out), "--device", "cpu"],
                         capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert sorted(p.name for p in out.glob("results*.jsonl")) == ["results-0of2.jsonl", "results-1of2.jsonl"]
    ids = [r["run_id"] for r in rows_of(out)]
    assert sorted(ids) == ["paligemma/dip_ce/n2/s0", "paligemma/dip_ce/n4/s0", "paligemma/onehot_ce/n2/s0",
                           "paligemma/onehot_ce/n4/s0"]  # each run once, across the two ranks
    assert not (out / "tuning.jsonl").exists() and not (out / "report").exists()  # no rank tuned or wrote the report
    assert "soft-grounding report --out" in res.stdout
    res = run("report", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert "4 runs" in (out / "report" / "report.md").read_text()


def test_slurm_array_script_runs_the_shards(machine, tmp_path):
    "configs/slurm/sweep.sbatch as two array tasks would run it: refused before tuning, then one shard each."
    script = Path(__file__).resolve().parents[1] / "configs" / "slurm" / "sweep.sbatch"
    cfg, out = config_file(machine, tmp_path / "a.json"), tmp_path / "out"
    env = {**os.environ, "DEVICE": "cpu", "SOFT_GROUNDING": str(SCRIPT), "SLURM_ARRAY_TASK_COUNT": "2", "OMP_NUM_THREADS": "1"}
    task = lambda i: subprocess.run(["bash", str(script), str(cfg), str(out)], capture_output=True, text=True, timeout=600,
                                    env={**env, "SLURM_ARRAY_TASK_ID": str(i)})
    res = task(0)
    assert res.returncode == 2 and "run 'soft-grounding tune --config" in res.stderr  # no tuned.json yet
    assert run("tune", "--config", str(cfg), "--out", str(out), "--device", "cpu", "--workers", "1").returncode == 0
    for i in (0, 1):
        res = task(i)
        assert res.returncode == 0, res.stderr[-3000:]
    assert sorted(p.name for p in out.glob("results*.jsonl")) == ["results-0of2.jsonl", "results-1of2.jsonl"]
    assert len(rows_of(out)) == 4 and len({r["run_id"] for r in rows_of(out)}) == 4


def test_dry_run_prints_the_plan_and_writes_nothing(machine, tmp_path):
    cfg, out = config_file(machine, tmp_path / "a.json"), tmp_path / "out"
    res = run("experiment", "--config", str(cfg), "--out", str(out), "--device", "cpu", "--dry-run")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "plan: 4 runs (2 methods x 2 sizes x 1 seeds on paligemma" in res.stdout
    assert "tuning: 2 searches, 2 trials of up to 2 steps" in res.stdout  # nothing tuned yet
    assert "steps per run: n=2: 2, n=4: 2" in res.stdout and "estimate:" in res.stdout and "GiB" in res.stdout
    assert not out.exists() or not any(out.iterdir())  # nothing written
    # a real sweep prints the same plan first, then runs
    res = run("experiment", "--config", str(cfg), "--out", str(out), "--device", "cpu", "--workers", "1")
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.index("plan: 4 runs") < res.stdout.index("sweep time")
    assert len(list((out / "train-logs").glob("*.json"))) == 4  # each run's training log
