"""Time and peak extra memory of the losses at PaliGemma's vocabulary, against F.cross_entropy measured in the same run.

Setup (issue 4): V = 257,216, 20% of positions are loc tokens (the last 1,024 ids, as in PaliGemma), bf16 logits,
forward + backward. 1,024 tokens on a CPU, 4,096 on a GPU. Each loss runs in a fresh process, so that its peak
memory is its own: on a CPU the peak resident set size (VmHWM, reset once the logits exist and a warm-up pass has run) above the RSS at that point;
on a GPU torch.cuda.max_memory_allocated above the allocation with the logits.

    python benchmarks/loss_bench.py [--tokens N] [--device cpu|cuda] [--reps 3]
"""
import argparse
import json
import os
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

V, N_LOC = 257_216, 1024


def official_gem(logits, labels, beta=0.7):
    "The official GEM loss (liziniu/GEM), linear h, transcribed from its formula: the memory-hungry reference."
    mask = labels != -100
    z, y = logits.float()[mask], labels[mask]
    log_p = F.log_softmax(z, -1)
    q = torch.exp(F.log_softmax(z / beta, -1)).detach()
    w = torch.ones_like(z)
    return -torch.sum(q * w * (log_p.gather(-1, y[:, None]) - log_p), -1).mean()


def make_loss(name):
    "The loss function of a benchmark row: (logits [N, V], labels [N]) -> scalar."
    if name == "F.cross_entropy (fp32)": return lambda z, y: F.cross_entropy(z.float(), y)
    if name == "official GEM (linear)": return official_gem
    from soft_grounding.geometry import PALIGEMMA
    from soft_grounding.losses import GroundingLoss, LossConfig
    loc_ids = torch.arange(V - N_LOC, V)
    configs = {"GroundingLoss ce, chunked": LossConfig("ce"),
               "GroundingLoss DIP + soft GEM, one chunk": LossConfig("soft_gem", "dip", {"power": 2}, chunk_size=None),
               "GroundingLoss DIP + soft GEM, chunked": LossConfig("soft_gem", "dip", {"power": 2}),
               "GroundingLoss DIP + soft CE, chunked": LossConfig("soft_ce", "dip", {"power": 2})}
    loss_fn = GroundingLoss(configs[name], PALIGEMMA, loc_ids)
    return lambda z, y: loss_fn(z, y)[0]


ROWS = ["F.cross_entropy (fp32)", "official GEM (linear)", "GroundingLoss ce, chunked",
        "GroundingLoss DIP + soft GEM, one chunk", "GroundingLoss DIP + soft GEM, chunked", "GroundingLoss DIP + soft CE, chunked"]


def rss_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field): return int(line.split()[1])


def worker(name, tokens, device, reps):
    "Measure one loss in this process; print a JSON line."
    torch.manual_seed(0)
    labels = torch.randint(0, V - N_LOC, (tokens,))
    loc = torch.rand(tokens) < 0.2
    labels[loc] = torch.randint(V - N_LOC, V, (int(loc.sum()),))
    logits = torch.empty(tokens, V, dtype=torch.bfloat16, device=device)
    for s in range(0, tokens, 64):  # no full-size fp32 temporary on the way
        logits[s:s + 64] = torch.randn(min(64, tokens - s), V, device=device) * 2
    logits.requires_grad_()
    labels = labels.to(device)
    loss_fn = make_loss(name)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    loss_fn(logits, labels).backward()  # warm-up
    logits.grad = None
    sync()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        import gc
        gc.collect()
        base = rss_kb("VmRSS") * 1024
        with open("/proc/self/clear_refs", "w") as f: f.write("5")  # reset the peak (VmHWM) to the current RSS
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        loss = loss_fn(logits, labels)
        loss.backward()
        sync()
        times.append(time.perf_counter() - start)
        logits.grad = None
        del loss
    peak = torch.cuda.max_memory_allocated() if device == "cuda" else rss_kb("VmHWM") * 1024
    print(json.dumps({"name": name, "ms": 1e3 * min(times), "extra_gb": (peak - base) / 1e9}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=None, help="tokens (rows of logits); 1,024 on a CPU, 4,096 on a GPU")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", default=None, help="run one row, by its exact name (internal)")
    args = parser.parse_args()
    tokens = args.tokens or (4096 if args.device == "cuda" else 1024)
    if args.only: return worker(args.only, tokens, args.device, args.reps)
    print(f"loss benchmark: V={V:,}, {tokens:,} tokens, 20% loc positions, bf16 logits, forward+backward, device {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if args.device == "cuda" else f", {torch.get_num_threads()} threads"))
    results = []
    for name in ROWS:
        out = subprocess.run([sys.executable, __file__, "--only", name, "--tokens", str(tokens), "--device", args.device,
                              "--reps", str(args.reps)], capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        if out.returncode != 0:
            print(f"{name}: FAILED\n{out.stderr[-2000:]}")
            continue
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    ce = results[0]
    print(f"{'loss':42} {'ms':>9} {'x CE':>6} {'extra GB':>9} {'x CE':>6}")
    for r in results:
        print(f"{r['name']:42} {r['ms']:9.1f} {r['ms'] / ce['ms']:6.2f} {r['extra_gb']:9.2f} {r['extra_gb'] / ce['extra_gb']:6.2f}")


if __name__ == "__main__":
    main()
