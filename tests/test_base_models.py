"""The shipped base models load from the package and reproduce their model card's detect Acc@0.5 within 0.01.
Slow-ish (generation on 500 validation examples), and CI runs it."""
import json

import pytest

from soft_grounding.data.synthetic import SyntheticWorld
from soft_grounding.models import DEFAULT_SCHEMES, base_model_dir, load_base_model, paligemma_collator
from soft_grounding.training import detect_accuracy


def shipped():
    names = []
    for name in DEFAULT_SCHEMES:
        try: base_model_dir(name)
        except ValueError: continue
        names.append(name)
    return names


def test_a_base_model_is_shipped():
    assert shipped(), "no base model is shipped under soft_grounding/assets"


@pytest.mark.parametrize("name", shipped())
def test_base_model_reproduces_its_card(name):
    card = json.loads((base_model_dir(name) / "model_card.json").read_text())
    model, tokenizer, scheme = load_base_model(name)
    assert scheme is DEFAULT_SCHEMES[name]
    world = SyntheticWorld(card["seed"])
    n = int(card["eval"].split()[0])
    acc = detect_accuracy(model, tokenizer, scheme, paligemma_collator(tokenizer, scheme, model.config), world.examples("val", "detect", n))
    assert acc["acc"] == pytest.approx(card["detect_acc_at_0.5"]["acc"], abs=0.01)
    assert acc["n_boxes"] == card["detect_acc_at_0.5"]["n_boxes"]
