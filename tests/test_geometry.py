"""Location schemes against each family's own code (differential), their algebra (hypothesis), and bad input."""
import math
import random
from types import SimpleNamespace

import pytest
import torch
from hypothesis import given, settings, strategies as st
from transformers.models.florence2.processing_florence2 import Florence2PostProcessor
from transformers.models.kosmos2.processing_kosmos2 import (clean_text_and_extract_entities_with_bboxes,
                                                            coordinate_to_patch_index, patch_index_to_coordinate)

from soft_grounding.geometry import (FLORENCE2, KOSMOS2, OFA, PALIGEMMA, PIX2SEQ, BinScheme, GridScheme, Parsed,
                                     box_iou, check_box, florence2_od_text, kosmos2_grounded_text, paligemma_detect_text,
                                     parse_florence2, parse_kosmos2_grounded, parse_paligemma_detect)

N_BOXES = 12_000
SCHEMES = [PALIGEMMA, FLORENCE2, OFA, PIX2SEQ, KOSMOS2]


def random_boxes(n, grid=(32, 1000, 1023, 1024), seed=0):
    """Normalised boxes in (0, 1]: uniform ones, and a third with edges on a quantisation lattice (k / g for the
    lattices of the families), where floor, ceil and round decide differently."""
    rng = random.Random(seed)
    boxes = []
    while len(boxes) < n:
        if len(boxes) % 3 == 0:
            g = rng.choice(grid)
            a, b = sorted(rng.sample(range(g + 1), 2))
            c, d = sorted(rng.sample(range(g + 1), 2))
            box = (a / g, c / g, b / g, d / g)
        else:
            x = sorted(rng.random() for _ in range(2))
            y = sorted(rng.random() for _ in range(2))
            box = (x[0], y[0], x[1], y[1])
        if box[2] > box[0] and box[3] > box[1]: boxes.append(box)
    return boxes


BOXES = random_boxes(N_BOXES)
SIZES = [(640, 480), (1, 1), (333, 517), (224, 224)]


# ---------- differential: Kosmos-2 against transformers ----------

def test_kosmos2_encode_decode_match_transformers():
    for k, (x1, y1, x2, y2) in enumerate(BOXES):
        width, height = SIZES[k % len(SIZES)]
        pixel = (x1 * width, y1 * height, x2 * width, y2 * height)
        ours = KOSMOS2.encode(pixel, (width, height))
        # transformers takes the normalised box; normalising our pixel box the way encode does gives the same floats
        theirs = coordinate_to_patch_index((pixel[0] / width, pixel[1] / height, pixel[2] / width, pixel[3] / height), 32)
        assert tuple(ours) == theirs, (pixel, (width, height))
        decoded = KOSMOS2.decode(ours, (width, height))
        expected = patch_index_to_coordinate(*theirs, 32)
        assert decoded == pytest.approx((expected[0] * width, expected[1] * height, expected[2] * width, expected[3] * height), abs=1e-9)


def test_kosmos2_grounded_parser_matches_transformers():
    rng = random.Random(1)
    words = ["a", "dog", "red", "the", "small circle", "two cats", "fire"]
    for t in range(2_000):
        segments, n_phrases = [], rng.randint(1, 4)
        for _ in range(n_phrases):
            segments.append(" " + " ".join(rng.choices(words, k=rng.randint(0, 3))))
            boxes = [BOXES[rng.randrange(N_BOXES)] for _ in range(rng.randint(1, 3))]
            segments.append((" " + rng.choice(words), boxes))
        segments.append(rng.choice([".", "", " end."]))
        text = kosmos2_grounded_text(segments, (1, 1))
        ours = parse_kosmos2_grounded(text, (1, 1))
        _, entities = clean_text_and_extract_entities_with_bboxes("<grounding>" + text)
        flat = [(name, box) for name, _, boxes in entities for box in boxes]
        assert ours.n_skipped == 0
        assert [p.phrase for p in ours] == [name for name, _ in flat], text
        for p, (_, box) in zip(ours, flat): assert p.box == pytest.approx(box, abs=1e-12), text


# ---------- differential: Florence-2 against Florence2PostProcessor ----------

@pytest.fixture(scope="module")
def florence_post():
    return Florence2PostProcessor(config={}, tokenizer=SimpleNamespace(all_special_tokens=[]))


def test_florence2_quantize_dequantize_match_transformers(florence_post):
    for width, height in SIZES:
        pixel = torch.tensor([(x1 * width, y1 * height, x2 * width, y2 * height) for x1, y1, x2, y2 in BOXES], dtype=torch.float64)
        theirs = florence_post.quantize(pixel, (width, height)).tolist()
        ours = [FLORENCE2.encode(b, (width, height)) for b in pixel.tolist()]
        assert ours == theirs
        # the formula, in floats: bin centres (q + 0.5) * size / 1000
        for q in ours[:2000]:
            expected = ((q[0] + 0.5) * width / 1000, (q[1] + 0.5) * height / 1000, (q[2] + 0.5) * width / 1000, (q[3] + 0.5) * height / 1000)
            assert FLORENCE2.decode(q, (width, height)) == pytest.approx(expected, abs=1e-9)
        # transformers' port truncates the same centres to integers
        dq = florence_post.dequantize(torch.tensor(ours[:2000], dtype=torch.float64), (width, height)).tolist()
        assert dq == [[int(v) for v in FLORENCE2.decode(q, (width, height))] for q in ours[:2000]]


def test_florence2_od_parser_matches_transformers(florence_post):
    rng = random.Random(2)
    for t in range(1_000):
        objects = [((x1 * 640, y1 * 480, x2 * 640, y2 * 480), rng.choice(["car", "person", "red ball"]))
                   for x1, y1, x2, y2 in rng.sample(BOXES, rng.randint(1, 5))]
        text = "</s><s>" + florence2_od_text(objects, (640, 480)) + "</s>"
        ours = parse_florence2(text, (640, 480))
        theirs = florence_post.parse_description_with_bboxes_from_text_and_spans(text, (640, 480))
        assert [p.phrase for p in ours] == [o["cat_name"] for o in theirs]
        assert [[int(v) for v in p.box] for p in ours] == [o["bbox"] for o in theirs]


# ---------- differential: PaliGemma, OFA, Pix2seq against their published formulas ----------

def test_paligemma_is_round_1023_in_yxyx_order():
    for k, (x1, y1, x2, y2) in enumerate(BOXES):
        width, height = SIZES[k % len(SIZES)]
        pixel = (x1 * width, y1 * height, x2 * width, y2 * height)
        expected = [round(pixel[1] / height * 1023), round(pixel[0] / width * 1023), round(pixel[3] / height * 1023), round(pixel[2] / width * 1023)]
        assert PALIGEMMA.encode(pixel, (width, height)) == expected
        assert PALIGEMMA.decode(expected, (width, height)) == pytest.approx(
            (expected[1] / 1023 * width, expected[0] / 1023 * height, expected[3] / 1023 * width, expected[2] / 1023 * height))
    assert PALIGEMMA.to_text((0, 0, 640, 480), (640, 480)) == "<loc0000><loc0000><loc1023><loc1023>"


def test_ofa_and_pix2seq_formulas():
    for k, (x1, y1, x2, y2) in enumerate(BOXES[:3000]):
        width, height = SIZES[k % len(SIZES)]
        pixel = (x1 * width, y1 * height, x2 * width, y2 * height)
        assert OFA.encode(pixel, (width, height)) == [round(pixel[0] / width * 999), round(pixel[1] / height * 999),
                                                      round(pixel[2] / width * 999), round(pixel[3] / height * 999)]
        side = max(width, height)  # Pix2seq pads to a square: both axes by the longer side, y x y x
        assert PIX2SEQ.encode(pixel, (width, height)) == [round(pixel[1] / side * 999), round(pixel[0] / side * 999),
                                                          round(pixel[3] / side * 999), round(pixel[2] / side * 999)]


def test_half_to_even_rounding():
    # 0.5 / 1023 * 1023 is exactly 0.5 only in exact arithmetic; use a bin scheme where the tie is exact
    scheme = BinScheme("tie", 5, "<b{}>")  # round(v * 4): v = 0.375 -> 1.5 -> 2, v = 0.625 -> 2.5 -> 2
    assert scheme.encode((0.375, 0.625, 1.0, 1.0), (1, 1))[:2] == [2, 2]


# ---------- properties ----------

box_strategy = st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.floats(0, 1)).filter(
    lambda b: min(b[2], b[0]) < max(b[2], b[0]) and min(b[1], b[3]) < max(b[1], b[3]))
size_strategy = st.tuples(st.integers(1, 2000), st.integers(1, 2000))


def pixel_box(b, size):
    x1, x2 = sorted((b[0], b[2]))
    y1, y2 = sorted((b[1], b[3]))
    return (x1 * size[0], y1 * size[1], x2 * size[0], y2 * size[1])


@settings(max_examples=400, deadline=None)
@given(box_strategy, size_strategy, st.sampled_from([PALIGEMMA, FLORENCE2, OFA, PIX2SEQ]))
def test_bin_round_trip_within_half_a_bin(b, size, scheme):
    box = pixel_box(b, size)
    if box[2] == box[0] or box[3] == box[1]: return
    back = scheme.decode(scheme.encode(box, size), size)
    sides = (max(size),) * 2 if scheme.normalise == "max_side" else size
    for k in range(4):
        bin_width = sides[k % 2] / scheme.encode_scale
        assert abs(back[k] - box[k]) <= bin_width / 2 * (1 + 1e-9) + 1e-9


@settings(max_examples=400, deadline=None)
@given(box_strategy, size_strategy)
def test_grid_round_trip_within_one_cell(b, size):
    box = pixel_box(b, size)
    if box[2] == box[0] or box[3] == box[1]: return
    back = KOSMOS2.decode(KOSMOS2.encode(box, size), size)
    for k in range(4):
        assert abs(back[k] - box[k]) <= size[k % 2] / 32 * (1 + 1e-9)


@settings(max_examples=300, deadline=None)
@given(box_strategy, size_strategy, st.sampled_from(SCHEMES))
def test_parse_recovers_decode_of_encode(b, size, scheme):
    box = pixel_box(b, size)
    if box[2] == box[0] or box[3] == box[1]: return
    parsed = scheme.parse(scheme.to_text(box, size), size)
    assert parsed.n_skipped == 0 and len(parsed) == 1
    assert parsed[0].box == scheme.decode(scheme.encode(box, size), size)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([PALIGEMMA, FLORENCE2, KOSMOS2, BinScheme("b7", 7, "<b{}>"), GridScheme("g5", 5, "<g{}>")]), st.data())
def test_distances_are_a_metric(scheme, data):
    i, j, k = (data.draw(st.integers(0, scheme.n_loc - 1)) for _ in range(3))
    di, dj = scheme.distances(i), scheme.distances(j)
    assert di[i] == 0 and di.min() == 0 and (di >= 0).all()
    assert di[j] == pytest.approx(dj[i].item())
    assert di[k] <= di[j] + dj[k] + 1e-5


def test_distance_shapes():
    assert PALIGEMMA.distances(3).shape == (1024,) and PALIGEMMA.distances(3)[0] == 3
    d = KOSMOS2.distances(32 * 5 + 7)
    assert d[32 * 5 + 10] == 3 and d[32 * 9 + 10] == 5  # (4 rows, 3 cols) away


# ---------- whole-answer formatters and parsers ----------

def test_paligemma_detect_round_trip():
    objects = [(pixel_box(b, (640, 480)), label) for b, label in zip(BOXES[:50], ["cat", "dog", "two people"] * 20)]
    parsed = parse_paligemma_detect(paligemma_detect_text(objects, (640, 480)), (640, 480))
    assert parsed.n_skipped == 0
    assert [p.phrase for p in parsed] == [label for _, label in objects]
    assert [p.box for p in parsed] == [PALIGEMMA.decode(PALIGEMMA.encode(b, (640, 480)), (640, 480)) for b, _ in objects]


def test_ofa_bare_box():
    text = OFA.to_text((10, 20, 30, 40), (100, 100))
    assert text == "<bin_100> <bin_200> <bin_300> <bin_400>"
    assert OFA.parse(text, (100, 100))[0].box == pytest.approx((10.01, 20.02, 30.03, 40.04), abs=0.01)


# ---------- bad input ----------

@pytest.mark.parametrize("box, message", [
    ((0, 0, float("nan"), 4), "NaN or infinite"), ((0, float("-inf"), 3, 4), "NaN or infinite"),
    ((5, 0, 3, 4), "x2 < x1"), ((0, 5, 3, 4), "y2 < y1"), ((3, 0, 3, 4), "zero area"), ((0, 2, 3, 2), "zero area"),
    ((700, 0, 800, 4), "lies outside the image"), ((1, 2, 3), "has 3 values"), ("abcd", "is not 4 numbers"),
])
@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.name)
def test_bad_boxes_raise_naming_the_box(scheme, box, message):
    with pytest.raises(ValueError, match=message) as e:
        scheme.encode(box, (640, 480))
    assert str(tuple(box)) in str(e.value) or repr(box) in str(e.value)


def test_partly_outside_box_is_clipped():
    assert check_box((-10, -5, 700, 100), (640, 480)) == (0, 0, 640, 100)
    assert PALIGEMMA.encode((-10, -5, 700, 100), (640, 480)) == PALIGEMMA.encode((0, 0, 640, 100), (640, 480))


def garbage(rng, n):
    pieces = ["<loc", "<loc0012>", "<loc9999>", "<loc12>", "<patch_index_", "<patch_index_0044>", "<patch_index_2000>",
              "<loc_5>", "<loc_1000>", "<bin_3>", "<phrase>", "</phrase>", "<object>", "</object>", ";", " ", "x",
              "</delimiter_of_multi_objects/>", "<", ">", "\x00", "é", "<coord_5>", "<loc_", "99999999999999999999>"]
    return "".join(rng.choice(pieces) for _ in range(n))


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.name)
def test_parse_never_raises(scheme):
    rng = random.Random(3)
    texts = [garbage(rng, rng.randint(0, 60)) for _ in range(500)]
    texts += [garbage(rng, 10_000)]  # 10,000-token garbage
    texts += [bytes(rng.randrange(256) for _ in range(200)).decode("latin-1") for _ in range(100)]  # random bytes as text
    good = scheme.to_text((10, 20, 300, 400), (640, 480))
    texts += [good[:k] for k in range(len(good))]  # every truncation
    for text in texts:
        parsed = scheme.parse(text, (640, 480))
        assert isinstance(parsed, Parsed) and isinstance(parsed, list) and parsed.n_skipped >= 0
        for p in parsed: assert all(math.isfinite(v) for v in p.box)
    assert scheme.parse(b"\x00\xff<loc0001>", (640, 480)) == []  # bytes, not text: nothing, counted as skipped


def test_parse_counts_what_it_skips():
    assert PALIGEMMA.parse("<loc0001><loc0002><loc0003>", (64, 64)).n_skipped == 1
    assert PALIGEMMA.parse("<loc0001><loc0002><loc0003><loc0004><loc0005>", (64, 64)).n_skipped == 1
    assert PALIGEMMA.parse("<loc0001><loc2000><loc0003><loc0004> cat", (64, 64)).n_skipped == 1
    parsed = KOSMOS2.parse("<object><patch_index_0001></object> <object><patch_index_0001><patch_index_0040></object>", (64, 64))
    assert len(parsed) == 1 and parsed.n_skipped == 1


def test_box_iou_against_a_loop():
    rng = random.Random(4)
    a = torch.tensor([pixel_box(b, (100, 100)) for b in rng.sample(BOXES, 200)])
    b = torch.tensor([pixel_box(b, (100, 100)) for b in rng.sample(BOXES, 200)])
    def iou(p, q):
        w = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
        h = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
        inter = w * h
        return inter / ((p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - inter)
    expected = torch.tensor([iou(p.tolist(), q.tolist()) for p, q in zip(a, b)], dtype=torch.float64)
    assert torch.allclose(box_iou(a, b), expected, atol=1e-6)


def test_pictures_from_the_package():
    import matplotlib
    matplotlib.use("Agg")
    import numpy as np
    from soft_grounding.geometry import show_bin_scheme, show_grid_scheme
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    assert show_bin_scheme(BinScheme("b16", 16, "<b{}>"), image, (5, 6, 40, 50)).get_title() == "<b1><b1><b9><b12>"
    assert show_grid_scheme(KOSMOS2, image, (5, 6, 40, 50)).get_title() == "<patch_index_0098><patch_index_0787>"
