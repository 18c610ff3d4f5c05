"""Kosmos-2 and Florence-2 adapters: tiny random models of the real classes train with every loss, LoRA trains only
what it should, the trainer lines labels up as each architecture's own loss does, a model trained to copy a box
generates a parseable box (greedy and beam), and bad checkpoints, tokenizers and LoRA targets give clear errors.
(The PaliGemma-architecture default models and a real-layout PaliGemma checkpoint are covered in test_training.py.)"""
import shutil

import pytest
import torch
from transformers import TrainingArguments
from transformers.utils import logging as hf_logging

from soft_grounding.data.synthetic import SyntheticWorld
from soft_grounding.data.tasks import format_example
from soft_grounding.geometry import FLORENCE2, KOSMOS2, loc_token_ids, parse_florence2, parse_kosmos2_grounded
from soft_grounding.losses import GroundingLoss, LossConfig
from soft_grounding.models import (LORA_TARGETS, Florence2ProcessorCollator, Kosmos2ProcessorCollator, build_tiny_florence2,
                                   build_tiny_kosmos2, family_tokenizer, generate, load_florence2, load_kosmos2)
from soft_grounding.training import GroundingTrainer, TrainingConfig, apply_lora, train

hf_logging.set_verbosity_error()

FAMILIES = {"kosmos2": (build_tiny_kosmos2, Kosmos2ProcessorCollator, KOSMOS2, parse_kosmos2_grounded, load_kosmos2),
            "florence2": (build_tiny_florence2, Florence2ProcessorCollator, FLORENCE2, parse_florence2, load_florence2)}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    "These models are 32 wide: one thread is faster than two, and far faster when another job holds a core."
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_items(family, n=16, tasks=("refer", "detect"), seed=0):
    world = SyntheticWorld(seed)
    items = []
    for i in range(n):
        ex = world.example("train", tasks[i % len(tasks)], i // len(tasks))
        prompt, answer = format_example(ex, family)
        items.append({"prompt": prompt, "answer": answer, "image": ex.load_image(), "image_size": ex.image_size})
    return items


def make_family(family, n=16, seed=0, **items_kwargs):
    build, collator_class, scheme, _, _ = FAMILIES[family]
    model, processor = build(seed=seed)
    return model, processor, collator_class(processor), scheme, make_items(family, n, **items_kwargs)


def model_inputs(batch):
    return {k: v for k, v in batch.items() if k != "loc_index"}


LOSSES = [LossConfig("ce"), LossConfig("soft_ce", "dip", {"power": 2}), LossConfig("soft_ce", "gaussian"),
          LossConfig("soft_ce", "smooth"), LossConfig("soft_ce", "laplace"), LossConfig("gem"),
          LossConfig("soft_gem", "dip", {"power": 2}), LossConfig("soft_gem", "gaussian", h="logsigmoid", normalise="loc"),
          LossConfig("dist2"), LossConfig("ntl"), LossConfig("ntl", ntl="mse")]


def loss_id(config):
    return "-".join([config.loss, config.ntl if config.loss == "ntl" else config.target] + (["logsigmoid"] if config.h == "logsigmoid" else []))


@pytest.mark.parametrize("config", LOSSES, ids=loss_id)
@pytest.mark.parametrize("family", FAMILIES)
def test_every_loss_trains(family, config, tmp_path):
    model, processor, collate, scheme, items = make_family(family)
    loss = GroundingLoss(config, scheme, loc_token_ids(scheme, processor.tokenizer))
    trainer = train(model, items, collate, loss, TrainingConfig(max_steps=20, batch_size=8, lr=3e-3, logging_steps=4, progress=False), tmp_path)
    history = [h for h in trainer.state.log_history if "loss" in h]
    assert len(history) == 5, history
    assert history[-1]["loss"] < history[0]["loss"], history
    assert history[-1]["sg_ce"] < history[0]["sg_ce"], history


@pytest.mark.parametrize("family", FAMILIES)
def test_trainer_lines_labels_up_as_the_model_does(family, tmp_path):
    "With CE, GroundingTrainer's loss equals the model's own loss from `labels`: shifted for Kosmos-2, in place for Florence-2."
    model, processor, collate, scheme, items = make_family(family, n=4, tasks=("refer", "detect", "caption", "ground"))
    batch = collate(items)
    loss = GroundingLoss(LossConfig("ce"), scheme, loc_token_ids(scheme, processor.tokenizer))
    trainer = GroundingTrainer(model=model, args=TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True),
                               grounding_loss=loss)
    model.eval()
    with torch.no_grad():
        ours = trainer.compute_loss(model, dict(batch))
        theirs = model(**model_inputs(batch)).loss
    assert torch.allclose(ours, theirs, atol=1e-5), (ours, theirs)


def test_kosmos2_collator_matches_the_processor():
    "Prompt through the processor plus the answer tokenized alone = the processor on prompt and answer together, then </s>."
    _, processor, collate, _, items = make_family("kosmos2", n=8, tasks=("refer", "detect", "caption", "ground"))
    batch = collate(items)
    tok = processor.tokenizer
    for k, item in enumerate(items):
        whole = processor(images=[item["image"]], text=[item["prompt"] + " " + item["answer"]])
        n = int(batch["attention_mask"][k].sum())
        assert batch["input_ids"][k, :n].tolist() == whole["input_ids"][0] + [tok.eos_token_id], item
        assert batch["image_embeds_position_mask"][k, :n].tolist() == whole["image_embeds_position_mask"][0] + [0]
        n_prompt = len(processor(images=[item["image"]], text=[item["prompt"]])["input_ids"][0])
        answer = tok(item["answer"], add_special_tokens=False)["input_ids"]
        assert batch["labels"][k, :n].tolist() == [-100] * n_prompt + answer + [tok.eos_token_id]
        boxes = KOSMOS2.parse(item["answer"], item["image_size"])
        assert (batch["loc_index"][k] >= 0).sum() == 2 * len(boxes)
    generation = collate(items, for_generation=True)
    assert generation["input_ids"][:, -1].ne(tok.pad_token_id).all()  # left-padded: every prompt ends at the last column
    assert "labels" not in generation


def test_florence2_labels_are_the_decoder_tokens():
    _, processor, collate, _, items = make_family("florence2", n=4, tasks=("refer", "detect", "caption", "ground"))
    batch = collate(items)
    tok = processor.tokenizer
    for k, item in enumerate(items):
        labels = batch["labels"][k][batch["labels"][k] >= 0].tolist()
        assert labels == [tok.bos_token_id] + tok(item["answer"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        assert (batch["loc_index"][k] >= 0).sum() == 4 * len(parse_florence2(item["answer"], item["image_size"]))
    prompt = tok.decode(batch["input_ids"][0][batch["attention_mask"][0].bool()].tolist())
    assert prompt.startswith("<image>" * processor.num_image_tokens + "<s>") and "Locate the phrases in the caption:" in prompt


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_trains_only_adapters_and_loc_rows(family, tmp_path):
    model, processor, collate, scheme, items = make_family(family)
    ids = loc_token_ids(scheme, processor.tokenizer)
    model = apply_lora(model, r=4, targets=LORA_TARGETS[family], loc_token_ids=ids)
    assert type(model.get_output_embeddings()).__name__ == "TrainableTokensWrapper"  # the tied output rows train too
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "token_adapter" in n for n in trainable)
    assert any("token_adapter" in n for n in trainable)
    loss = GroundingLoss(LossConfig("soft_ce", "dip"), scheme, ids)
    train(model, items, collate, loss, TrainingConfig(max_steps=4, batch_size=8, lr=1e-2, logging_steps=4, progress=False), tmp_path)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}
    assert changed <= trainable
    assert any("token_adapter" in n for n in changed) and any("lora_B" in n for n in changed)


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_without_loc_rows(family):
    model, _, _, _, _ = make_family(family, n=1)
    model = apply_lora(model, r=2, targets=("q_proj", "v_proj"))
    assert all("lora_" in n for n, p in model.named_parameters() if p.requires_grad)


@pytest.mark.parametrize("family", FAMILIES)
def test_copy_task_generates_parseable_boxes(family, tmp_path):
    model, processor, collate, scheme, items = make_family(family, n=1, tasks=("refer",))
    parse = FAMILIES[family][3]
    item = items[0]
    loss = GroundingLoss(LossConfig("ce"), scheme, loc_token_ids(scheme, processor.tokenizer))
    trainer = train(model, [item] * 8, collate, loss, TrainingConfig(max_steps=100, batch_size=4, lr=1e-2, warmup_steps=5,
                                                                   logging_steps=50, progress=False), tmp_path)
    truth = parse(item["answer"], item["image_size"])
    for beams in (1, 2):
        texts, dists = generate(trainer.model, processor.tokenizer, scheme, collate, [item], max_new_tokens=12, num_beams=beams)
        parsed = parse(texts[0], item["image_size"])
        assert parsed.n_skipped == 0 and len(parsed) == 1, (beams, texts)
        assert parsed[0].indices == truth[0].indices, (beams, texts, item["answer"])
        assert [index for index, _, _ in dists[0]] == list(truth[0].indices)
        assert all(abs(d.sum().item() - 1) < 1e-5 and 0 < mass <= 1 for _, d, mass in dists[0])
    check_distributions_against_a_forward_pass(trainer.model, processor.tokenizer, scheme, collate, item, dists[0])


def check_distributions_against_a_forward_pass(model, tokenizer, scheme, collate, item, rows):
    "The beam-search distributions equal those of one teacher-forced forward pass over the chosen sequence."
    batch = collate([{**item, "answer": ""}], for_generation=True)
    answer = tokenizer(item["answer"], add_special_tokens=False)["input_ids"]
    ids = loc_token_ids(scheme, tokenizer)
    with torch.no_grad():
        if model.config.is_encoder_decoder:
            decoder = torch.tensor([[model.config.text_config.decoder_start_token_id, tokenizer.bos_token_id, *answer]])
            logits = model(**batch, decoder_input_ids=decoder).logits[0]
            offset = 1  # logits[i] predicts decoder token i + 1, and answer token t is decoder token t + 2
        else:
            n = batch["input_ids"].shape[1]
            full = torch.cat([batch["input_ids"], torch.tensor([answer])], 1)
            logits = model(input_ids=full, attention_mask=torch.ones_like(full), pixel_values=batch["pixel_values"],
                           image_embeds_position_mask=torch.cat([batch["image_embeds_position_mask"], torch.zeros(1, len(answer), dtype=torch.long)], 1)).logits[0]
            offset = n - 1  # answer token t stands at n + t, predicted from position n + t - 1
    positions = [t for t, token in enumerate(answer) if token in set(ids.tolist())]
    assert len(positions) == len(rows)
    for t, (index, dist, mass) in zip(positions, rows):
        p = torch.softmax(logits[offset + t].float(), -1)
        assert torch.allclose(dist, p[ids] / p[ids].sum(), atol=1e-4)
        assert abs(mass - p[ids].sum().item()) < 1e-4


@pytest.mark.parametrize("family", FAMILIES)
def test_checkpoint_round_trip_and_bad_directories(family, tmp_path):
    model, processor, collate, scheme, items = make_family(family, n=2)
    load = FAMILIES[family][4]
    model.save_pretrained(tmp_path / "ckpt")
    processor.save_pretrained(tmp_path / "ckpt")
    loaded, loaded_processor = load(tmp_path / "ckpt")
    batch = collate(items)
    assert torch.equal(FAMILIES[family][1](loaded_processor)(items)["input_ids"], batch["input_ids"])
    model.eval()
    loaded.eval()
    with torch.no_grad():
        assert torch.allclose(loaded(**model_inputs(batch)).logits, model(**model_inputs(batch)).logits, atol=1e-6)
    with pytest.raises(ValueError, match="model directory not found: .*nothing"):
        load(tmp_path / "nothing")
    other = "load_florence2" if family == "kosmos2" else "load_kosmos2"
    with pytest.raises(ValueError, match="holds a '(kosmos-2|florence2)' model, not"):
        {"load_florence2": load_florence2, "load_kosmos2": load_kosmos2}[other](tmp_path / "ckpt")
    shutil.copytree(tmp_path / "ckpt", tmp_path / "no-tokenizer")
    for name in ("tokenizer.json", "vocab.json", "sentencepiece.bpe.model", "tokenizer.model"):
        (tmp_path / "no-tokenizer" / name).unlink(missing_ok=True)
    with pytest.raises(ValueError, match="model directory .*no-tokenizer has no tokenizer"):
        load(tmp_path / "no-tokenizer")


def test_a_tokenizer_without_loc_tokens_is_refused(tmp_path):
    from transformers import Florence2Processor
    model, processor = build_tiny_florence2()
    bare = family_tokenizer(["a", "circle"], image_token="<image>")  # no <loc_N> tokens
    Florence2Processor(processor.image_processor, bare).save_pretrained(tmp_path)
    model.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"lacks 1000 of the 1000 florence2 loc tokens, e\.g\. \['<loc_0>', '<loc_1>', '<loc_2>'\]"):
        load_florence2(tmp_path)
    with pytest.raises(ValueError, match=r"lacks 1000 of the 1000 florence2 loc tokens"):
        Florence2ProcessorCollator(Florence2Processor(processor.image_processor, bare))
    partial = family_tokenizer(["a"], added_tokens=FLORENCE2.tokens[:998], image_token="<image>")
    with pytest.raises(ValueError, match=r"lacks 2 of the 1000 florence2 loc tokens, e\.g\. \['<loc_998>', '<loc_999>'\]"):
        loc_token_ids(FLORENCE2, partial)
    _, kosmos_processor = build_tiny_kosmos2()
    with pytest.raises(ValueError, match=r"lacks 1000 of the 1000 florence2 loc tokens"):
        Kosmos2ProcessorCollator(kosmos_processor, scheme=FLORENCE2)  # a scheme the tokenizer does not speak


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_target_that_matches_nothing(family):
    model, _, _, _, _ = make_family(family, n=1)
    with pytest.raises(ValueError, match=r"LoRA targets \['c_attn'\] match no module of (Kosmos2|Florence2)ForConditionalGeneration"):
        apply_lora(model, targets=("q_proj", "c_attn"))


def test_empty_batch_is_refused():
    for family in FAMILIES:
        _, _, collate, _, _ = make_family(family, n=1)
        with pytest.raises(ValueError, match="cannot collate an empty batch"):
            collate([])
