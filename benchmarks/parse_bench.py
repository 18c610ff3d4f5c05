"""How long `parse` takes on a 300-token answer (the issue's budget: under 1 ms), against baselines timed in the
same run: a bare `re.findall` of the loc tokens (the least any parser must do) and, for Kosmos-2, transformers'
own `clean_text_and_extract_entities_with_bboxes`.

    python benchmarks/parse_bench.py [--repeat 2000]
"""
import argparse
import random
import timeit

from transformers.models.kosmos2.processing_kosmos2 import clean_text_and_extract_entities_with_bboxes

from soft_grounding.geometry import (FLORENCE2, KOSMOS2, PALIGEMMA, florence2_od_text, kosmos2_grounded_text,
                                     paligemma_detect_text, parse_florence2, parse_kosmos2_grounded,
                                     parse_paligemma_detect)


def boxes(n, size, seed=0):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        x1, x2 = sorted(rng.uniform(0, size[0]) for _ in range(2))
        y1, y2 = sorted(rng.uniform(0, size[1]) for _ in range(2))
        out.append((x1, y1, x2 + 1, y2 + 1))
    return out


def per_call_ms(fn, repeat):
    return min(timeit.repeat(fn, number=repeat, repeat=5)) / repeat * 1e3


def main(repeat=2000):
    size = (640, 480)
    # 300 tokens: 60 PaliGemma objects of 4 loc tokens and a one-word label; 75 Florence-2 boxes in 25 labels
    # (4 loc tokens each); 100 Kosmos-2 phrases of one word with one 2-token object (plus their tags)
    labels = ["cat", "dog", "car", "person", "ball"]
    pali = paligemma_detect_text([(b, labels[k % 5]) for k, b in enumerate(boxes(60, size))], size)
    flo = florence2_od_text([(b, labels[(k // 3) % 5]) for k, b in enumerate(boxes(75, size))], size)
    kos = kosmos2_grounded_text([(" " + labels[k % 5], [b]) for k, b in enumerate(boxes(100, size))], size)
    rows = [
        ("paligemma detect (60 boxes)", lambda: parse_paligemma_detect(pali, size), lambda: PALIGEMMA._token_re.findall(pali)),
        ("florence2 OD (75 boxes)", lambda: parse_florence2(flo, size), lambda: FLORENCE2._token_re.findall(flo)),
        ("kosmos2 grounded (100 boxes)", lambda: parse_kosmos2_grounded(kos, size), lambda: KOSMOS2._token_re.findall(kos)),
    ]
    print(f"{'answer (300 tokens)':32} {'parse ms':>9} {'re.findall ms':>14} {'ratio':>7}")
    for name, ours, floor in rows:
        a, b = per_call_ms(ours, repeat), per_call_ms(floor, repeat)
        print(f"{name:32} {a:9.3f} {b:14.3f} {a / b:6.1f}x")
    a = per_call_ms(lambda: parse_kosmos2_grounded(kos, size), repeat)
    b = per_call_ms(lambda: clean_text_and_extract_entities_with_bboxes(kos), repeat)
    print(f"kosmos2: ours {a:.3f} ms vs transformers' clean_text_and_extract_entities_with_bboxes {b:.3f} ms: ratio {a / b:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2000)
    main(parser.parse_args().repeat)
