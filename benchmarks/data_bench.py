"""Data speed: synthetic examples per second on one core, and the collator's share of a training step.

Baselines measured in the same run:
- the floor of making an example: drawing one 64x64x3 noise image with numpy (no shapes, no text);
- a training step: forward + backward + AdamW of the embedded default model (scheme A, 3M-parameter PaliGemma) on the
  collated batch.

    python benchmarks/data_bench.py [--n 2000] [--batch 16]
"""
import argparse
import time

import numpy as np
import torch


def per_second(fn, n):
    start = time.perf_counter()
    for i in range(n): fn(i)
    return n / (time.perf_counter() - start)


def main(n=2000, batch=16):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the data side on one core
    from soft_grounding.data.synthetic import SyntheticWorld
    from soft_grounding.data.tasks import format_example
    world = SyntheticWorld(0)
    rng = np.random.default_rng(0)
    floor = per_second(lambda i: (180 + rng.integers(-12, 13, size=(64, 64, 3))).astype(np.uint8), n)
    print(f"synthetic world, one core, 64x64 (floor: a bare noise image, {floor:,.0f}/s)")
    for task in ("caption", "detect", "refer", "ground"):
        rate = per_second(lambda i: world.example("train", task, i), n)
        print(f"  {task:8} {rate:8,.0f} examples/s   {rate / floor:5.3f}x the floor")

    from soft_grounding.models import DEFAULT_SCHEMES, build_default_model, default_tokenizer, paligemma_collator
    scheme = DEFAULT_SCHEMES["A"]
    tok = default_tokenizer(scheme)
    model = build_default_model(tok, scheme)
    collate = paligemma_collator(tok, scheme, model.config)
    pool = world.examples("train", "refer", batch * 20)

    def load_and_collate(i):
        items = []
        for ex in pool[(i % 20) * batch:(i % 20 + 1) * batch]:
            prompt, answer = format_example(ex, "default", scheme)
            items.append({"prompt": prompt, "answer": answer, "image": ex.load_image()})
        return collate(items)
    batches = [load_and_collate(i) for i in range(20)]
    t_collate = 1 / per_second(load_and_collate, 40)

    torch.set_num_threads(threads)  # the training step on all of them
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    def step(i):
        b = batches[i % 20]
        loss = model(**{k: v for k, v in b.items() if k != "loc_index"}).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    step(0)
    t_step = 1 / per_second(step, 20)
    print(f"load + format + collate a batch of {batch}: {t_collate * 1e3:.2f} ms; training step of the default model (fp32): "
          f"{t_step * 1e3:.1f} ms; ratio {t_collate / t_step:.3f} (target < 0.10)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    main(args.n, args.batch)
