"Multi-process training through torchrun (2 CPU processes, gloo) follows the single-process loss trajectory at the same global batch."
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("ddp_worker.py")


def test_two_processes_match_one(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    single = subprocess.run([sys.executable, str(WORKER), str(tmp_path / "single.json"), "8"], capture_output=True, text=True,
                            env=env, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    with socket.socket() as s:  # a free port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port)]
    ddp = subprocess.run(torchrun + [str(WORKER), str(tmp_path / "ddp.json"), "4"], capture_output=True, text=True, env=env, timeout=600)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one, two = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("single", "ddp"))
    assert len(one) == len(two) == 8
    assert two == pytest.approx(one, rel=1e-3, abs=1e-4), (one, two)
