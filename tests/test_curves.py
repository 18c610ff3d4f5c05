"Learning curves of sweep runs (issue 18): a curve's point is the model a shorter run ends with, and the training-set score sees memorisation."
import dataclasses

import pytest

from soft_grounding.experiments.config import PRESETS, SweepConfig
from soft_grounding.experiments.context import SweepContext
from soft_grounding.experiments.runs import run_one


@pytest.fixture(scope="module")
def ctx():
    config = dataclasses.replace(SweepConfig(**PRESETS["smoke"]), curve_steps=(3, 6), n_curve=8, curve_greedy=True, n_test=8)
    return SweepContext(config, "cpu")


@pytest.mark.parametrize("method", ["onehot_ce", "dip_ce"])
def test_curve_point_equals_a_run_stopped_there(ctx, method):
    """The point at step 3 of a 6-step run is the model a 3-step run with the same seed ends with: same schedule
    (constant after warmup), same data order, and scoring in the middle draws no random numbers."""
    hp = {"lr": 1e-3, "power": 2.0} if method == "dip_ce" else {"lr": 1e-3}
    long = run_one(ctx, "A", method, 8, 1, {**hp, "steps": 6})
    short = run_one(ctx, "A", method, 8, 1, {**hp, "steps": 3})
    assert sorted(long["curve"], key=int) == ["3", "6"] and list(short["curve"]) == ["3"]
    assert long["curve"]["3"] == short["curve"]["3"]  # every measure, to the last (fifth) digit
    assert long["curve"]["6"] != long["curve"]["3"]  # the model moved on after step 3
    assert set(long["curve"]["3"]["val"]) == {"loc_nll", "loc_entropy", "loc_mass_1", "tf_iou", "tf_acc", "acc", "mean_iou"}
    assert set(long["curve"]["3"]["train"]) == {"loc_nll", "loc_entropy", "loc_mass_1", "tf_iou", "tf_acc"}


def test_memorised_training_set_scores_near_one(ctx):
    "A model trained long on 4 examples has learnt them: its training-subset score is near 1, far above held-out."
    memo = dataclasses.replace(ctx.config, curve_steps=(150,))
    row = run_one(SweepContext(memo, "cpu"), "A", "onehot_ce", 4, 0, {"lr": 3e-3, "steps": 150})
    train, val = row["curve"]["150"]["train"], row["curve"]["150"]["val"]
    assert train["tf_acc"] == 1.0 and train["tf_iou"] > 0.9, train
    assert train["loc_nll"] < 0.1 < val["loc_nll"], (train, val)
    assert val["tf_acc"] < 0.75, val  # held-out examples are not remembered
