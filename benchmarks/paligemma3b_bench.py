"""Step time and peak GPU memory of GroundingLoss (DIP + soft GEM) against the model's built-in CE, on a
PaliGemma-3B-shaped random model, measured in one run with the two alternated.

Setup (issue 6): SigLIP-So400m (27 x 1152, patch 14, 224 px: 256 image tokens) + Gemma-2B (18 x 2048, MQA, head 256,
vocabulary 257,216) dimensions, random weights in bf16, LoRA r=16 on every linear layer of both towers, batch 8 x 304
tokens (256 image + 16 prompt + 32 answer tokens, 16 of them loc tokens), bf16 autocast. Baseline: plain
`transformers.Trainer` with the model computing its own CE from `labels`. Ours: `GroundingTrainer` with
`LossConfig("soft_gem", "dip", {"power": 2})`, which computes logits only from the first labelled position on
(`logits_to_keep`) and stops on NaN or infinite gradients (one gradient norm a step); a third arm turns the trimming off
(`trim_logits=False`) to show what it buys, a fourth the guard (`stop_on_nonfinite=False`) to show what it costs. Targets (issue 6): throughput ratio (built-in step time / ours) at least
0.95, memory ratio (our peak / built-in peak) at most 1.0. Each arm gets a fresh Trainer (and optimiser) on the same LoRA model;
peak memory is `torch.cuda.max_memory_allocated` over its steps.

    python benchmarks/paligemma3b_bench.py [--steps 12] [--rounds 2]
    python benchmarks/paligemma3b_bench.py --tiny --steps 3 --rounds 1   # small dimensions: a CPU check of the code path
"""
import argparse
import gc
import tempfile
import time

import torch
from transformers import PaliGemmaConfig, PaliGemmaForConditionalGeneration, Trainer, TrainerCallback, TrainingArguments
from transformers.utils import logging as hf_logging

from soft_grounding.geometry import PALIGEMMA
from soft_grounding.losses import GroundingLoss, LossConfig
from soft_grounding.training import GroundingTrainer, apply_lora

VOCAB, LOC0, IMAGE_TOKEN, BOS, NEWLINE, EOS = 257_216, 256_000, 257_152, 2, 108, 1
LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "out_proj", "fc1", "fc2", "gate_proj", "up_proj", "down_proj", "linear")


def config(tiny=False):
    "PaliGemma-3B dimensions (or a small model of the same shape, for a CPU check)."
    if tiny:
        vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, patch_size=14, image_size=224)
        text = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, head_dim=32)
    else:
        vision = dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16, patch_size=14, image_size=224)
        text = dict(hidden_size=2048, intermediate_size=16384, num_hidden_layers=18, num_attention_heads=8, num_key_value_heads=1, head_dim=256)
    vision.update(model_type="siglip_vision_model", vision_use_head=False)
    text.update(model_type="gemma", vocab_size=VOCAB, hidden_activation="gelu_pytorch_tanh", pad_token_id=0, bos_token_id=BOS, eos_token_id=EOS)
    return PaliGemmaConfig(vision_config=vision, text_config=text, image_token_index=IMAGE_TOKEN, vocab_size=VOCAB,
                           projection_dim=text["hidden_size"], hidden_size=text["hidden_size"], pad_token_id=0)


def batch(n=8, n_image=256, n_prompt=16, n_answer=32, n_loc=16, seed=0):
    "Fixed random inputs: image tokens, bos + prompt + newline (prefix), answer with loc tokens + eos (suffix, labelled)."
    g = torch.Generator().manual_seed(seed)
    words = lambda k: torch.randint(1000, 250_000, (n, k), generator=g)
    answer = words(n_answer - 1)
    loc_at = torch.stack([torch.randperm(n_answer - 1, generator=g)[:n_loc] for _ in range(n)])
    answer.scatter_(1, loc_at, LOC0 + torch.randint(0, 1024, (n, n_loc), generator=g))
    prefix = torch.cat([torch.full((n, n_image), IMAGE_TOKEN), torch.full((n, 1), BOS), words(n_prompt - 2), torch.full((n, 1), NEWLINE)], 1)
    suffix = torch.cat([answer, torch.full((n, 1), EOS)], 1)
    ids = torch.cat([prefix, suffix], 1)
    types = torch.cat([torch.zeros_like(prefix), torch.ones_like(suffix)], 1)
    labels = torch.where(types == 1, ids, -100)
    return [{"input_ids": ids[i], "token_type_ids": types[i], "attention_mask": torch.ones_like(ids[i]), "labels": labels[i],
             "pixel_values": torch.randn(3, 224, 224, generator=g)} for i in range(n)]


class Rows(torch.utils.data.Dataset):
    def __init__(self, rows, length): self.rows, self.length = rows, length
    def __len__(self): return self.length
    def __getitem__(self, i): return self.rows[i % len(self.rows)]


def collate(rows): return {k: torch.stack([r[k] for r in rows]) for k in rows[0]}


class StepTimer(TrainerCallback):
    "Wall time and peak memory of the steps after the first (warm-up) one."
    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == 1:
            if torch.cuda.is_available(): torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
            self.start = time.perf_counter()
    def on_train_end(self, args, state, control, **kwargs):
        if torch.cuda.is_available(): torch.cuda.synchronize()
        self.per_step = (time.perf_counter() - self.start) / (state.global_step - 1)
        self.peak = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else float("nan")


def run(kind, model, rows, steps, batch_size):
    timer, cuda = StepTimer(), torch.cuda.is_available()
    with tempfile.TemporaryDirectory() as d:
        args = TrainingArguments(output_dir=d, max_steps=steps, per_device_train_batch_size=batch_size, learning_rate=1e-4,
                                 report_to="none", remove_unused_columns=False, save_strategy="no", disable_tqdm=True,
                                 logging_steps=steps, use_cpu=not cuda, bf16=cuda)
        data = Rows(rows, steps * batch_size)
        if kind == "built-in CE":
            trainer = Trainer(model=model, args=args, train_dataset=data, data_collator=collate, callbacks=[timer])
        else:
            loss = GroundingLoss(LossConfig("soft_gem", "dip", {"power": 2}), PALIGEMMA, torch.arange(LOC0, LOC0 + 1024))
            trainer = GroundingTrainer(model=model, args=args, train_dataset=data, data_collator=collate, grounding_loss=loss,
                                       callbacks=[timer], trim_logits="full logits" not in kind,
                                       stop_on_nonfinite="no NaN guard" not in kind)
        trainer.train()
        del trainer
    gc.collect()  # the previous arm's optimiser state, before the next arm's peak is measured
    if cuda: torch.cuda.empty_cache()
    return timer.per_step, timer.peak


def main(steps=12, rounds=2, tiny=False, batch_size=8):
    hf_logging.set_verbosity_error()
    cuda = torch.cuda.is_available()
    torch.manual_seed(0)
    with torch.device("cuda" if cuda else "cpu"):
        model = PaliGemmaForConditionalGeneration(config(tiny)).to(torch.bfloat16 if cuda else torch.float32)
    n_params = sum(p.numel() for p in model.parameters())
    model = apply_lora(model, r=16, alpha=16, targets=[t for t in LINEAR if any(n.endswith("." + t) for n, _ in model.named_modules())])
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    rows = batch(batch_size)
    times = {"built-in CE": [], "GroundingLoss, DIP + soft GEM": [], "the same, full logits": [], "the same, no NaN guard": []}
    for _ in range(rounds):
        for kind in times: times[kind].append(run(kind, model, rows, steps, batch_size))
    device = torch.cuda.get_device_name() if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"PaliGemma-3B-shaped random model{' (tiny)' if tiny else ''}: {n_params / 1e9:.2f}B parameters, LoRA r=16 "
          f"({n_train / 1e6:.1f}M trainable), batch {batch_size} x {rows[0]['input_ids'].numel()} tokens, "
          f"{steps} steps x {rounds} rounds, alternated, {device}")
    base_t, base_m = min(t for t, _ in times["built-in CE"]), min(m for _, m in times["built-in CE"])
    for kind, runs in times.items():
        t, m = min(r[0] for r in runs), min(r[1] for r in runs)
        print(f"  {kind:31} {t * 1e3:8.1f} ms/step  (rounds: {', '.join(f'{r[0] * 1e3:.1f}' for r in runs)})  "
              f"throughput ratio {base_t / t:5.3f}   peak {m / 2**30:6.2f} GiB  memory ratio {m / base_m:5.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tiny", action="store_true", help="small dimensions, to check the code path on a CPU")
    a = parser.parse_args()
    main(a.steps, a.rounds, a.tiny, a.batch)
