"""Evaluation cost on the embedded default: `evaluate_refer` (greedy with the KV cache, expectation decoding, parsing)
against a bare `model.generate` with the KV cache and against one without it, on the same refer examples, measured
in the same run and alternated.

    python benchmarks/eval_bench.py [--n 300] [--rounds 2] [--scheme A]

Prints seconds per run and the ratios: `evaluate_refer` / bare generate (the cost of what evaluation adds), and
no-cache / cache (what the KV cache saves).
"""
import argparse
import time

import torch
from transformers.utils import logging as hf_logging

from soft_grounding.data.synthetic import SyntheticWorld
from soft_grounding.data.tasks import format_example
from soft_grounding.evaluation import evaluate_refer
from soft_grounding.models import load_base_model, paligemma_collator


def bare_generate(model, tok, collator, items, use_cache, batch=64):
    for s in range(0, len(items), batch):
        b = collator([{**it, "answer": ""} for it in items[s:s + batch]], for_generation=True)
        model.generate(**{k: v for k, v in b.items() if k not in ("labels", "loc_index")}, max_new_tokens=8, do_sample=False,
                       use_cache=use_cache, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--scheme", default="A")
    args = ap.parse_args()
    hf_logging.set_verbosity_error()
    model, tok, scheme = load_base_model(args.scheme)
    model.eval()
    collator = paligemma_collator(tok, scheme, model.config)
    exs = SyntheticWorld(0).examples("val", "refer", args.n)
    items = [{"prompt": format_example(e, "default", scheme)[0], "image": e.load_image()} for e in exs]
    times = {"evaluate_refer (cache, + loc stats)": [], "generate, KV cache": [], "generate, no cache": []}
    with torch.no_grad():
        for _ in range(args.rounds):
            t = time.perf_counter(); evaluate_refer(model, tok, scheme, collator, exs); times["evaluate_refer (cache, + loc stats)"].append(time.perf_counter() - t)
            t = time.perf_counter(); bare_generate(model, tok, collator, items, True); times["generate, KV cache"].append(time.perf_counter() - t)
            t = time.perf_counter(); bare_generate(model, tok, collator, items, False); times["generate, no cache"].append(time.perf_counter() - t)
    best = {k: min(v) for k, v in times.items()}
    print(f"{args.n} refer examples, scheme {args.scheme}, {torch.get_num_threads()} threads, best of {args.rounds}:")
    for k, v in best.items(): print(f"  {k:<38} {v:7.2f} s")
    print(f"evaluate_refer / bare generate (cache): {best['evaluate_refer (cache, + loc stats)'] / best['generate, KV cache']:.2f}x")
    print(f"no cache / KV cache:                    {best['generate, no cache'] / best['generate, KV cache']:.2f}x")


if __name__ == "__main__":
    main()
