"""Train the tiny default model for a few steps and write the loss trajectory (rank 0) to the JSON file in argv[1].
Run under torchrun (2 processes, gloo, CPU) by tests/test_ddp.py, and as a single process for the comparison."""
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from test_training import setup  # noqa: E402

from soft_grounding.geometry import loc_token_ids  # noqa: E402
from soft_grounding.losses import GroundingLoss, LossConfig  # noqa: E402
from soft_grounding.training import TrainingConfig, train  # noqa: E402

out, per_device_batch = Path(sys.argv[1]), int(sys.argv[2])
scheme, tok, model, collate, items = setup(n=64)
loss = GroundingLoss(LossConfig("soft_gem", "dip", {"power": 2}), scheme, loc_token_ids(scheme, tok))
trainer = train(model, items, collate, loss, TrainingConfig(max_steps=8, batch_size=per_device_batch, lr=3e-3, warmup_steps=0,
                                                            logging_steps=1, progress=False), out.parent / f"run-{out.stem}")
if trainer.is_world_process_zero():
    out.write_text(json.dumps([h["loss"] for h in trainer.state.log_history if "loss" in h]))
if torch.distributed.is_initialized():  # a clean exit: gloo's threads abort the process if left running at shutdown
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
