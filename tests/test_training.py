"""Training: every loss trains a tiny default model, LoRA trains only what it should, a copy task generates
parseable boxes, and an interrupted run resumes to the same weights."""
import pytest
import torch
from transformers import TrainerCallback
from transformers.utils import logging as hf_logging

from soft_grounding.data.synthetic import SyntheticWorld
from soft_grounding.data.tasks import format_example
from soft_grounding.geometry import loc_token_ids
from soft_grounding.losses import GroundingLoss, LossConfig
from soft_grounding.models import DEFAULT_SCHEMES, build_default_model, default_tokenizer, generate, paligemma_collator
from soft_grounding.training import TrainingConfig, apply_lora, train

hf_logging.set_verbosity_error()
TINY = dict(vision_width=32, vision_layers=1, text_width=32, text_layers=1)


def setup(scheme_name="A", n=16, seed=0):
    scheme = DEFAULT_SCHEMES[scheme_name]
    tok = default_tokenizer(scheme)
    model = build_default_model(tok, scheme, seed=seed, **TINY)
    collate = paligemma_collator(tok, scheme, model.config)
    items = []
    for ex in SyntheticWorld(0).examples("train", "refer", n):
        prompt, answer = format_example(ex, "default", scheme)
        items.append({"prompt": prompt, "answer": answer, "image": ex.load_image()})
    return scheme, tok, model, collate, items


@pytest.mark.parametrize("config", [LossConfig("ce"), LossConfig("soft_ce", "dip", {"power": 2}), LossConfig("gem"),
                                    LossConfig("soft_gem", "dip", {"power": 2}), LossConfig("dist2"), LossConfig("ntl", ntl="mse"),
                                    LossConfig("soft_ce", "gaussian", normalise="loc")], ids=lambda c: f"{c.loss}-{c.target}")
@pytest.mark.parametrize("scheme_name", ["A", "B"])
def test_every_loss_trains(config, scheme_name, tmp_path):
    scheme, tok, model, collate, items = setup(scheme_name)
    loss = GroundingLoss(config, scheme, loc_token_ids(scheme, tok))
    trainer = train(model, items, collate, loss, TrainingConfig(max_steps=20, batch_size=8, lr=3e-3, logging_steps=4, progress=False), tmp_path)
    history = [h for h in trainer.state.log_history if "loss" in h]
    assert history[-1]["loss"] < history[0]["loss"], history
    assert history[-1]["sg_ce"] < history[0]["sg_ce"], history


def test_lora_trains_only_adapters_and_loc_rows(tmp_path):
    scheme, tok, model, collate, items = setup()
    ids = loc_token_ids(scheme, tok)
    model = apply_lora(model, r=4, targets=("q_proj", "v_proj"), loc_token_ids=ids)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "token_adapter" in n for n in trainable)
    loss = GroundingLoss(LossConfig("soft_ce", "dip"), scheme, ids)
    train(model, items, collate, loss, TrainingConfig(max_steps=5, batch_size=8, lr=1e-2, logging_steps=5, progress=False), tmp_path)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}
    assert changed and changed <= trainable
    with pytest.raises(ValueError, match=r"LoRA targets \['c_attn'\] match no module"):
        apply_lora(build_default_model(tok, scheme, **TINY), targets=("c_attn",))


def test_copy_task_generates_parseable_boxes(tmp_path):
    scheme, tok, model, collate, items = setup(n=2)
    items = [items[0]] * 16  # one example, to learn by heart
    loss = GroundingLoss(LossConfig("ce"), scheme, loc_token_ids(scheme, tok))
    trainer = train(model, items, collate, loss, TrainingConfig(max_steps=120, batch_size=8, lr=1e-2, warmup_steps=5,
                                                                logging_steps=40, progress=False), tmp_path)
    texts, dists = generate(trainer.model, tok, scheme, collate, [items[0]], max_new_tokens=6)
    parsed = scheme.parse(texts[0], (64, 64))
    assert parsed.n_skipped == 0 and len(parsed) == 1, texts
    assert scheme.parse(items[0]["answer"], (64, 64))[0].indices == parsed[0].indices
    assert len(dists[0]) == 4 and all(abs(d.sum().item() - 1) < 1e-5 for _, d, _ in dists[0])


class StopAt(TrainerCallback):
    def __init__(self, step): self.step = step
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step: control.should_training_stop = True


def straight_interrupted_resumed(tmp_path, config, loss_config, n, stop):
    "The models of a straight run, of the same run stopped after `stop` steps, and of that run resumed."
    def run(out, callbacks=None):
        scheme, tok, model, collate, items = setup(n=n)
        loss = GroundingLoss(loss_config, scheme, loc_token_ids(scheme, tok))
        return train(model, items, collate, loss, config, out, callbacks=callbacks).model
    straight = run(tmp_path / "straight")
    interrupted = run(tmp_path / "interrupted", callbacks=[StopAt(stop)])
    return straight, interrupted, run(tmp_path / "interrupted")


def test_resume_gives_the_same_weights(tmp_path):
    config = TrainingConfig(max_steps=10, batch_size=4, lr=3e-3, save_steps=5, logging_steps=5, progress=False)
    straight, interrupted, resumed = straight_interrupted_resumed(tmp_path, config, LossConfig("soft_gem", "dip"), 24, 5)
    assert any(not torch.equal(a, b) for a, b in zip(straight.state_dict().values(), interrupted.state_dict().values()))
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_lora_resume_gives_the_same_weights(tmp_path):
    "LoRA checkpoints resume through Trainer's own (peft) path: the adapter and the loc rows end as in a straight run."
    config = TrainingConfig(max_steps=8, batch_size=4, lr=3e-3, save_steps=4, logging_steps=4, progress=False, lora_r=4,
                            lora_targets=("q_proj", "v_proj"), train_loc_rows=True)
    straight, interrupted, resumed = straight_interrupted_resumed(tmp_path, config, LossConfig("soft_ce", "dip"), 16, 4)
    trainable = [n for n, p in straight.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or "trainable_tokens" in n for n in trainable), trainable
    s, i = dict(straight.named_parameters()), dict(interrupted.named_parameters())
    assert any(not torch.equal(s[n], i[n]) for n in trainable)  # the interrupted run really stopped early
    r = dict(resumed.named_parameters())
    for n in trainable: assert torch.equal(s[n], r[n]), n


@pytest.mark.parametrize("lora", [False, True])
def test_rerun_of_a_finished_run_trains_nothing(lora, tmp_path):
    "A finished run that ended mid-epoch: the same command again gives its weights back; Trainer alone would take a step past max_steps."
    extra = dict(lora_r=4, lora_targets=("q_proj", "v_proj"), train_loc_rows=True) if lora else {}
    config = TrainingConfig(max_steps=3, batch_size=8, lr=3e-3, progress=False, **extra)  # 16 examples: 2 steps an epoch
    def run():
        scheme, tok, model, collate, items = setup(n=16)
        return train(model, items, collate, GroundingLoss(LossConfig("ce"), scheme, loc_token_ids(scheme, tok)), config, tmp_path)
    first = {n: p.detach().clone() for n, p in run().model.named_parameters()}
    again = run()
    assert again.state.global_step == 3 and sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-3"]
    for n, p in again.model.named_parameters(): assert torch.equal(first[n], p), n


def test_resume_refuses_another_configuration(tmp_path):
    scheme, tok, model, collate, items = setup(n=8)
    loss = GroundingLoss(LossConfig("ce"), scheme, loc_token_ids(scheme, tok))
    train(model, items, collate, loss, TrainingConfig(max_steps=2, batch_size=4, progress=False), tmp_path)
    with pytest.raises(ValueError, match=r"holds a run of another configuration \(differs in \['loss'\]\)"):
        train(model, items, collate, GroundingLoss(LossConfig("gem"), scheme, loc_token_ids(scheme, tok)),
              TrainingConfig(max_steps=2, batch_size=4, progress=False), tmp_path)


def tiny_paligemma_checkpoint(path):
    "A tiny PaliGemma checkpoint with its own PaliGemmaProcessor, saved to `path` as a real one is laid out."
    from soft_grounding.models import build_tiny_paligemma
    model, processor = build_tiny_paligemma()
    model.save_pretrained(path)
    processor.save_pretrained(path)


@pytest.mark.parametrize("config", [LossConfig("ce"), LossConfig("soft_gem", "dip", {"power": 3})], ids=lambda c: c.loss)
def test_real_paligemma_checkpoint_trains(config, tmp_path):
    from soft_grounding.geometry import PALIGEMMA
    from soft_grounding.models import PaliGemmaProcessorCollator, load_paligemma
    tiny_paligemma_checkpoint(tmp_path / "ckpt")
    model, processor = load_paligemma(tmp_path / "ckpt")
    collate = PaliGemmaProcessorCollator(processor, PALIGEMMA)
    items = []
    for ex in SyntheticWorld(0).examples("train", "refer", 16):
        prompt, answer = format_example(ex, "paligemma")
        items.append({"prompt": prompt, "answer": answer, "image": ex.load_image()})
    batch = collate(items[:2])
    assert batch["loc_index"][0].ge(0).sum() == 4 and (batch["loc_index"] >= 0).sum() == 8
    loss = GroundingLoss(config, PALIGEMMA, loc_token_ids(PALIGEMMA, processor.tokenizer))
    trainer = train(model, items, collate, loss, TrainingConfig(max_steps=20, batch_size=8, lr=3e-3, logging_steps=4, progress=False), tmp_path / "run")
    history = [h for h in trainer.state.log_history if "loss" in h]
    assert history[-1]["loss"] < history[0]["loss"], history
    texts, _ = generate(trainer.model, processor.tokenizer, PALIGEMMA, collate, items[:2], max_new_tokens=6)
    assert len(texts) == 2
    # the shared-prefix evaluation through the real processor equals the generate path (greedy, beams, confidences)
    from soft_grounding.evaluation import evaluate_refer
    exs = SyntheticWorld(0).examples("val", "refer", 6)
    runs = [evaluate_refer(trainer.model, processor.tokenizer, PALIGEMMA, collate, exs, family="paligemma", best_of=2,
                           n_best_of=3, beams=2, share_prefix=shared) for shared in (True, False)]
    (shared_summary, shared_recs), (plain_summary, plain_recs) = runs
    assert [r["text"] for r in shared_recs] == [r["text"] for r in plain_recs]
    assert [r.get("beam_ious") for r in shared_recs] == [r.get("beam_ious") for r in plain_recs]
    for a, b in zip(shared_recs, plain_recs): assert a["loc_probs"] == pytest.approx(b["loc_probs"], abs=1e-5)
    assert shared_summary["loc_nll"] == pytest.approx(plain_summary["loc_nll"], abs=1e-4)
    with pytest.raises(ValueError, match="model directory not found"): load_paligemma(tmp_path / "nothing")


def test_lora_from_the_config_and_eval_loss(tmp_path):
    scheme, tok, model, collate, items = setup(n=24)
    base = {n: p.detach().clone() for n, p in model.named_parameters()}
    loss = GroundingLoss(LossConfig("soft_ce", "dip"), scheme, loc_token_ids(scheme, tok))
    config = TrainingConfig(max_steps=6, batch_size=8, lr=1e-2, logging_steps=3, lora_r=4, lora_targets=("q_proj", "v_proj"), progress=False)
    trainer = train(model, items[:16], collate, loss, config, tmp_path, eval_items=items[16:])
    assert hasattr(trainer.model, "peft_config")
    merged = {n.replace("base_model.model.", "").replace(".base_layer", ""): p for n, p in trainer.model.named_parameters()}
    frozen_same = [torch.equal(merged[n], base[n]) for n in base if n in merged and "embed_tokens" not in n]
    assert frozen_same and all(frozen_same)  # the base weights did not move
    assert [h["step"] for h in trainer.state.log_history if "eval_loss" in h] == [3, 6]


def stock_arguments(cfg:TrainingConfig, output_dir):
    "`TrainingArguments` fields (also `SFTConfig`'s) for a stock trainer that takes the steps `train` takes with `cfg`, on the CPU."
    return dict(output_dir=str(output_dir), max_steps=cfg.max_steps, per_device_train_batch_size=cfg.batch_size,
                learning_rate=cfg.lr, warmup_steps=cfg.warmup_steps, lr_scheduler_type=cfg.scheduler,
                weight_decay=cfg.weight_decay, seed=cfg.seed, data_seed=cfg.seed, save_strategy="no",
                logging_steps=cfg.logging_steps, report_to="none", remove_unused_columns=False, use_cpu=True, disable_tqdm=True)


@pytest.mark.parametrize("config", [LossConfig("ce"), LossConfig("soft_gem", "dip", {"power": 3})], ids=lambda c: c.loss)
def test_stock_trainer_with_grounding_loss_func_equals_grounding_trainer(config, tmp_path):
    "A stock transformers.Trainer with `grounding_loss_func` and `stock_collator` takes the same steps as `train`."
    from transformers import Trainer, TrainingArguments
    from soft_grounding.core import seed_everything
    from soft_grounding.training import ItemDataset, grounding_loss_func, stock_collator
    losses = []
    for stock in (False, True):
        scheme, tok, model, collate, items = setup(n=16)
        loss = GroundingLoss(config, scheme, loc_token_ids(scheme, tok))
        cfg = TrainingConfig(max_steps=6, batch_size=4, lr=3e-3, warmup_steps=1, logging_steps=1, save_steps=-1, progress=False)
        if not stock: trainer = train(model, items, collate, loss, cfg, tmp_path / "ours")
        else:
            seed_everything(cfg.seed)
            args = TrainingArguments(**stock_arguments(cfg, tmp_path / "stock"))
            trainer = Trainer(model=model, args=args, train_dataset=ItemDataset(items, len(items)),
                              data_collator=stock_collator(collate, model.config), compute_loss_func=grounding_loss_func(loss, model))
            trainer.train()
        losses.append([h["loss"] for h in trainer.state.log_history if "loss" in h])
    assert len(losses[0]) == 6
    assert losses[1] == pytest.approx(losses[0], abs=1e-4), losses
    assert losses[0][-1] < losses[0][0]


@pytest.mark.parametrize("lora_r", [0, 4])
def test_gradient_checkpointing_takes_the_same_steps(lora_r, tmp_path):
    losses = []
    for checkpointing in (False, True):
        scheme, tok, model, collate, items = setup(n=8)
        loss = GroundingLoss(LossConfig("soft_ce", "dip"), scheme, loc_token_ids(scheme, tok))
        cfg = TrainingConfig(max_steps=4, batch_size=4, grad_accum=2, lr=3e-3, logging_steps=1, save_steps=-1, progress=False,
                             gradient_checkpointing=checkpointing, lora_r=lora_r, lora_targets=("q_proj", "v_proj"))
        trainer = train(model, items, collate, loss, cfg, tmp_path / str(checkpointing))
        assert trainer.args.gradient_checkpointing == checkpointing
        losses.append([h["loss"] for h in trainer.state.log_history if "loss" in h])
    assert len(losses[0]) == 4 and losses[1] == pytest.approx(losses[0], abs=1e-5), losses


def test_trl_sft_trainer_with_grounding_loss_func_equals_grounding_trainer(tmp_path):
    "TRL's SFTTrainer with `grounding_loss_func` (fp32, its data left to our collator) takes the same steps as `train`."
    pytest.importorskip("trl")
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer
    from soft_grounding.core import seed_everything
    from soft_grounding.training import grounding_loss_func, stock_collator
    losses = []
    for stock in (False, True):
        scheme, tok, model, collate, items = setup(n=16)
        loss = GroundingLoss(LossConfig("soft_gem", "dip", {"power": 2}), scheme, loc_token_ids(scheme, tok))
        cfg = TrainingConfig(max_steps=6, batch_size=4, lr=3e-3, warmup_steps=1, logging_steps=1, save_steps=-1, progress=False)
        if not stock: trainer = train(model, items, collate, loss, cfg, tmp_path / "ours")
        else:
            seed_everything(cfg.seed)
            args = SFTConfig(**stock_arguments(cfg, tmp_path / "trl"), loss_type="nll", max_length=None, bf16=False,
                             dataset_kwargs={"skip_prepare_dataset": True})
            # the tiny model is no vision-language model TRL knows: the image column goes under another name
            data = Dataset.from_list([{"prompt": it["prompt"], "answer": it["answer"], "picture": it["image"]} for it in items])
            collator = stock_collator(collate, model.config)
            trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tok,
                                 data_collator=lambda batch: collator([{"prompt": b["prompt"], "answer": b["answer"],
                                                                        "image": b["picture"]} for b in batch]),
                                 compute_loss_func=grounding_loss_func(loss, model))
            trainer.train()
        losses.append([h["loss"] for h in trainer.state.log_history if "loss" in h])
    assert len(losses[0]) == 6
    assert losses[1] == pytest.approx(losses[0], abs=1e-6), losses
