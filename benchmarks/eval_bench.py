"""Evaluation cost on the embedded default: `evaluate_refer` with one shared prefill per batch (`decoding.SharedPrefix`)
against the `generate` path (`share_prefix=False`: one prefill per pass), with and without the candidates the presets ask
for (best-of-16 samples and 5 beams on the first 100 examples), on the same refer examples, measured in the same run and
alternated. Loc statistics (teacher forced) are on in every case, as a sweep's test evaluation has them.

    python benchmarks/eval_bench.py [--n 400] [--rounds 2] [--scheme A] [--threads 1]

Prints seconds per case (the best of the rounds) and the ratios generate path / shared prefix.
"""
import argparse
import time

import torch
from transformers.utils import logging as hf_logging

from soft_grounding.data.synthetic import SyntheticWorld
from soft_grounding.evaluation import evaluate_refer
from soft_grounding.models import load_base_model, paligemma_collator


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--scheme", default="A")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (a sweep worker uses 1)")
    ap.add_argument("--best_of", type=int, default=16)
    ap.add_argument("--n_best_of", type=int, default=100)
    ap.add_argument("--beams", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    hf_logging.set_verbosity_error()
    model, tok, scheme = load_base_model(args.scheme)
    model.eval()
    collator = paligemma_collator(tok, scheme, model.config)
    exs = SyntheticWorld(0).examples("test", "refer", args.n)
    cands = dict(best_of=args.best_of, n_best_of=args.n_best_of, beams=args.beams)
    cases = {("greedy + loc stats", "generate"): dict(share_prefix=False), ("greedy + loc stats", "shared"): {},
             ("+ samples and beams", "generate"): dict(share_prefix=False, **cands), ("+ samples and beams", "shared"): cands}
    times = {k: [] for k in cases}
    for _ in range(args.rounds):
        for key, kwargs in cases.items():
            t = time.perf_counter()
            evaluate_refer(model, tok, scheme, collator, exs, **kwargs)
            times[key].append(time.perf_counter() - t)
    best = {k: min(v) for k, v in times.items()}
    print(f"{args.n} refer examples, scheme {args.scheme}, {torch.get_num_threads()} thread(s), best of {args.rounds}; "
          f"candidates: best_of={args.best_of}, beams={args.beams} on {args.n_best_of} examples")
    for (case, path), v in best.items(): print(f"  {case:<22} {path:<9} {v:7.2f} s")
    for case in ("greedy + loc stats", "+ samples and beams"):
        print(f"{case}: generate path / shared prefix = {best[(case, 'generate')] / best[(case, 'shared')]:.2f}x")
    print(f"shared prefix with candidates / generate path without: "
          f"{best[('+ samples and beams', 'shared')] / best[('greedy + loc stats', 'generate')]:.2f}x")


if __name__ == "__main__":
    main()
