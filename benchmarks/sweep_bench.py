"""Sweep throughput: runs per minute of the default preset's runs with worker processes (one thread per run), against
one process giving each run every core's threads (how the sweep ran before workers). Both arms run the same runs.

Baseline measured in the same run: the same runs in this process, one after another, with torch's default threads.
The workers arm is `run_sweep(workers=N)` into a fresh directory, its workers' start-up included.

    python benchmarks/sweep_bench.py [--seeds 4] [--workers N]
"""
import argparse
import json
import tempfile
import time

import torch


def main(seeds=4, workers=None):
    from soft_grounding.experiments import (PRESETS, SweepConfig, SweepContext, committed_tuned_path, default_workers, grid,
                                            run_one, run_sweep)
    config = SweepConfig(**{**PRESETS["default"], "schemes": ("A",), "methods": ("onehot_ce",), "sizes": (16, 64),
                            "seeds": tuple(range(seeds))})
    workers = workers or default_workers("cpu")
    hp = {k: v for k, v in json.loads(committed_tuned_path().read_text())["tuned"]["A"]["onehot_ce"].items() if not k.startswith("val_")}
    runs = grid(config)
    print(f"{len(runs)} runs (scheme A, one-hot CE, sizes {config.sizes}, {seeds} seeds, {config.n_test} test examples each); "
          f"{torch.get_num_threads()} torch threads by default, {workers} workers")

    ctx = SweepContext(config, "cpu")
    start = time.perf_counter()
    base_rows = [run_one(ctx, *r, hp) for r in runs]
    base = time.perf_counter() - start
    print(f"  one process, {torch.get_num_threads()} threads a run: {base:7.1f} s  ({60 * len(runs) / base:5.2f} runs/min)")

    with tempfile.TemporaryDirectory() as d:
        start = time.perf_counter()
        rows = run_sweep(config, d, device="cpu", progress=False, workers=workers)
        ours = time.perf_counter() - start
    print(f"  {workers} workers, 1 thread a run:      {ours:7.1f} s  ({60 * len(runs) / ours:5.2f} runs/min)   {base / ours:.2f}x the throughput")
    same = sum(a["metrics"]["acc"] == b["metrics"]["acc"] for a, b in zip(sorted(base_rows, key=lambda r: r["run_id"]),
                                                                          sorted(rows, key=lambda r: r["run_id"])))
    print(f"  Acc@0.5 equal in {same} of {len(runs)} runs (the float metrics may differ in the last digits across thread counts)")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--workers", type=int, default=None)
    main(**vars(p.parse_args()))
