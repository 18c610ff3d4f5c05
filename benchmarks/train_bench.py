"""Training throughput of GroundingLoss (DIP + soft GEM) against plain transformers.Trainer with the model's own CE,
on the embedded default model (scheme A, full size), measured in the same run, the two alternated.

    python benchmarks/train_bench.py [--steps 20] [--batch 16] [--rounds 2]
"""
import argparse
import tempfile
import time

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.utils import logging as hf_logging

from soft_grounding.data.synthetic import SyntheticWorld
from soft_grounding.data.tasks import format_example
from soft_grounding.geometry import loc_token_ids
from soft_grounding.losses import GroundingLoss, LossConfig
from soft_grounding.models import DEFAULT_SCHEMES, build_default_model, default_tokenizer, paligemma_collator
from soft_grounding.training import GroundingTrainer, ItemDataset


class StepTimer(TrainerCallback):
    "Wall time of the steps after the first (warm-up) one."
    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == 1: self.start = time.perf_counter()
    def on_train_end(self, args, state, control, **kwargs):
        self.per_step = (time.perf_counter() - self.start) / (state.global_step - 1)


def run(kind, steps, batch, items, scheme, tok):
    model = build_default_model(tok, scheme, seed=0)
    collate = paligemma_collator(tok, scheme, model.config)
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as d:
        args = TrainingArguments(output_dir=d, max_steps=steps, per_device_train_batch_size=batch, learning_rate=1e-3,
                                 report_to="none", remove_unused_columns=False, save_strategy="no", disable_tqdm=True,
                                 logging_steps=steps, use_cpu=not torch.cuda.is_available(), bf16=torch.cuda.is_available())
        data = ItemDataset(items, len(items))
        if kind == "Trainer + model CE":
            drop = lambda b: {k: v for k, v in collate(b).items() if k != "loc_index"}
            trainer = Trainer(model=model, args=args, train_dataset=data, data_collator=drop, callbacks=[timer])
        else:
            loss = GroundingLoss(LossConfig("soft_gem", "dip", {"power": 2}), scheme, loc_token_ids(scheme, tok))
            trainer = GroundingTrainer(model=model, args=args, train_dataset=data, data_collator=collate, grounding_loss=loss, callbacks=[timer])
        trainer.train()
    return timer.per_step


def main(steps=20, batch=16, rounds=2):
    hf_logging.set_verbosity_error()
    scheme = DEFAULT_SCHEMES["A"]
    tok = default_tokenizer(scheme)
    items = []
    for ex in SyntheticWorld(0).examples("train", "refer", steps * batch):
        prompt, answer = format_example(ex, "default", scheme)
        items.append({"prompt": prompt, "answer": answer, "image": ex.load_image()})
    times = {"Trainer + model CE": [], "GroundingTrainer, DIP + soft GEM": []}
    for _ in range(rounds):
        for kind in times: times[kind].append(run(kind, steps, batch, items, scheme, tok))
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU, {torch.get_num_threads()} threads"
    print(f"default model (scheme A), batch {batch}, {steps} steps x {rounds} rounds, {device}")
    base = min(times["Trainer + model CE"])
    for kind, ts in times.items():
        print(f"  {kind:34} {min(ts) * 1e3:8.1f} ms/step   throughput {base / min(ts):5.3f}x the Trainer's")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    a = parser.parse_args()
    main(a.steps, a.batch, a.rounds)
