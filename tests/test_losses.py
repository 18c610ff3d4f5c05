"""Losses against references: the official GEM formula, F.cross_entropy, transformers' causal-LM loss, closed-form
gradients, gradcheck in float64, and bad input."""
import math

import pytest
import torch
import torch.nn.functional as F
from transformers.loss.loss_utils import ForCausalLMLoss

from soft_grounding.geometry import KOSMOS2, BinScheme
from soft_grounding.labels import soft_label, soft_label_table
from soft_grounding.losses import (GroundingLoss, LossConfig, ce_loss, dist2_loss, gem_loss, ntl_loss,
                                   soft_cross_entropy, soft_gem_loss)

BINS = BinScheme("bins16", 16, "<loc{:02d}>")
TEXT = 12  # a toy vocabulary: 12 text tokens, then the 16 loc tokens
V = TEXT + BINS.n_loc
LOC_IDS = torch.arange(TEXT, V)


def official_gem(logits, labels, beta=0.7, h="linear", ignore_index=-100):
    """The official GEM loss (liziniu/GEM, SFTTrainer.gem_loss) transcribed from its formula, on pre-shifted inputs:
    mask, weights from the logit differences (held constant), q = softmax(z / beta) held constant,
    loss = -sum_j q_j w_j (log p_y - log p_j), mean over counted tokens."""
    mask = labels != ignore_index
    z, y = logits[mask], labels[mask]
    with torch.no_grad():
        diff = z - z.gather(-1, y[:, None])
        w = torch.ones_like(diff) if h == "linear" else torch.sigmoid(0.01 * diff)
    log_p = F.log_softmax(z, -1)
    q = torch.exp(F.log_softmax(z / beta, -1)).detach()
    return -torch.sum(q * w * (log_p.gather(-1, y[:, None]) - log_p), -1).mean()


def batch(seed=0, dtype=torch.float64, b=3, t=10):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(b, t, V, generator=g) * 3).to(dtype)
    labels = torch.randint(0, V, (b, t), generator=g)
    labels[torch.rand(b, t, generator=g) < 0.25] = -100
    labels[0, 0] = TEXT + 3  # at least one loc and one text position
    labels[0, 1] = 2
    return logits, labels


# ---------- GEM against the official code ----------

@pytest.mark.parametrize("h", ["linear", "logsigmoid"])
@pytest.mark.parametrize("ignore_index", [-100, -1, 7])
@pytest.mark.parametrize("beta", [0.7, 0.3, 1.0])
def test_gem_equals_official_in_value_and_gradient(h, ignore_index, beta):
    logits, labels = batch(seed=1)
    labels[labels == -100] = ignore_index
    a = logits.clone().requires_grad_()
    b = logits.clone().requires_grad_()
    ours = gem_loss(a, labels, beta=beta, h=h, ignore_index=ignore_index)
    ref = official_gem(b, labels, beta=beta, h=h, ignore_index=ignore_index)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-12, abs=1e-12)
    (ga,) = torch.autograd.grad(ours, a)
    (gb,) = torch.autograd.grad(ref, b)
    assert torch.allclose(ga, gb, atol=1e-12)


def test_gem_num_items_in_batch_and_sum():
    logits, labels = batch(seed=2)
    n = (labels != -100).sum()
    total = gem_loss(logits, labels, reduction="sum")
    assert gem_loss(logits, labels).item() == pytest.approx((total / n).item())
    assert gem_loss(logits, labels, num_items_in_batch=40).item() == pytest.approx((total / 40).item())


def test_gem_closed_form_gradients():
    "GEM's gradient holds q and w constant, so it is not the gradient of its value: check it against the closed forms."
    z = torch.randn(7, V, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, V, (7,))
    beta = 0.6
    q = torch.softmax(z.detach() / beta, -1)
    onehot = F.one_hot(y, V).double()
    (g,) = torch.autograd.grad(gem_loss(z, y, beta, reduction="sum"), z)
    assert torch.allclose(g, q - onehot, atol=1e-12)
    w = torch.sigmoid((z.detach() - z.detach().gather(-1, y[:, None])) / 100)
    (g,) = torch.autograd.grad(gem_loss(z, y, beta, h="logsigmoid", reduction="sum"), z)
    assert torch.allclose(g, q * w - onehot * (q * w).sum(-1, keepdim=True), atol=1e-12)
    t = torch.softmax(torch.randn(7, V, dtype=torch.float64), -1)
    (g,) = torch.autograd.grad(soft_gem_loss(z, t, beta, reduction="sum"), z)
    assert torch.allclose(g, q - t, atol=1e-12)  # linear soft GEM: q - t


# ---------- reductions ----------

def test_soft_ce_with_onehot_is_cross_entropy():
    logits, labels = batch(seed=3, dtype=torch.float32)
    keep = labels != -100
    assert torch.allclose(soft_cross_entropy(logits[keep], F.one_hot(labels[keep], V).float()),
                          F.cross_entropy(logits[keep], labels[keep]), atol=1e-6)


@pytest.mark.parametrize("h", ["linear", "logsigmoid"])
@pytest.mark.parametrize("mean_field", [False, True])
def test_soft_gem_with_onehot_is_gem(h, mean_field):
    logits, labels = batch(seed=4)
    keep = labels != -100
    a = logits[keep].clone().requires_grad_()
    b = logits[keep].clone().requires_grad_()
    soft = soft_gem_loss(a, F.one_hot(labels[keep], V).double(), h=h, mean_field=mean_field)
    hard = gem_loss(b, labels[keep], h=h)
    assert soft.item() == pytest.approx(hard.item(), rel=1e-12)
    assert torch.allclose(torch.autograd.grad(soft, a)[0], torch.autograd.grad(hard, b)[0], atol=1e-12)


@pytest.mark.parametrize("num_items", [None, 23])
def test_grounding_loss_onehot_equals_transformers_causal_lm_loss(num_items):
    logits, labels = batch(seed=5, dtype=torch.float32, b=4, t=16)
    shifted = F.pad(labels, (0, 1), value=-100)[..., 1:]  # what ForCausalLMLoss does inside
    a = logits.clone().requires_grad_()
    b = logits.clone().requires_grad_()
    ours, _ = GroundingLoss(LossConfig("ce", chunk_size=5), BINS, LOC_IDS)(a, shifted, num_items_in_batch=num_items)
    hf = ForCausalLMLoss(b, labels, V, num_items_in_batch=None if num_items is None else torch.tensor(num_items))
    assert ours.item() == pytest.approx(hf.item(), rel=1e-6)
    assert torch.allclose(torch.autograd.grad(ours, a)[0], torch.autograd.grad(hf, b)[0], atol=1e-7)


def dense_target(labels, kind, **params):
    "The dense [B, T, V] target a GroundingLoss with a soft label stands for (one-hot on text, the label on loc tokens)."
    target = torch.zeros(*labels.shape, V, dtype=torch.float64)
    for i in range(labels.shape[0]):
        for j in range(labels.shape[1]):
            y = int(labels[i, j])
            if y == -100: continue
            if y >= TEXT: target[i, j, TEXT:] = soft_label(BINS, y - TEXT, kind, dtype=torch.float64, **params)
            else: target[i, j, y] = 1
    return target


@pytest.mark.parametrize("chunk", [None, 0, 4])
def test_grounding_loss_matches_dense_definitions(chunk):
    logits, labels = batch(seed=6)
    keep = labels != -100
    target = dense_target(labels, "dip", power=2)
    cases = [(LossConfig("soft_ce", "dip", {"power": 2}, chunk_size=chunk), lambda z: soft_cross_entropy(z[keep], target[keep])),
             (LossConfig("soft_gem", "dip", {"power": 2}, beta=0.5, chunk_size=chunk), lambda z: soft_gem_loss(z[keep], target[keep], beta=0.5)),
             (LossConfig("soft_gem", "dip", {"power": 2}, h="logsigmoid", chunk_size=chunk),
              lambda z: soft_gem_loss(z[keep], target[keep], h="logsigmoid")),
             (LossConfig("gem", h="logsigmoid", chunk_size=chunk), lambda z: gem_loss(z, labels, h="logsigmoid"))]
    for config, dense in cases:
        a = logits.clone().requires_grad_()
        b = logits.clone().requires_grad_()
        ours, _ = GroundingLoss(config, BINS, LOC_IDS)(a, labels)
        ref = dense(b)
        assert ours.item() == pytest.approx(ref.item(), rel=1e-10), config
        assert torch.allclose(torch.autograd.grad(ours, a)[0], torch.autograd.grad(ref, b)[0], atol=1e-12), config


def test_grounding_loss_baselines_match_standalone():
    logits, labels = batch(seed=7)
    keep = labels != -100
    is_loc = keep & (labels >= TEXT)
    text = keep & ~is_loc
    n = keep.sum()
    ce_text = F.cross_entropy(logits[text], labels[text], reduction="sum")
    for config, extra in [(LossConfig("dist2", alpha=0.2, tau=2.0, normalise="loc"),
                           lambda: dist2_loss(logits[is_loc][:, TEXT:], labels[is_loc] - TEXT, BINS, alpha=0.2, tau=2.0, reduction="sum")),
                          (LossConfig("ntl", ntl="mse", lam=0.5, normalise="loc"),
                           lambda: ntl_loss(logits[is_loc][:, TEXT:], labels[is_loc] - TEXT, BINS, "mse", lam=0.5, reduction="sum"))]:
        ours, _ = GroundingLoss(config, BINS, LOC_IDS)(logits, labels)
        assert ours.item() == pytest.approx(((ce_text + extra()) / n).item(), rel=1e-10)


def test_grounding_loss_normalise_loc_uses_the_loc_softmax():
    logits, labels = batch(seed=8)
    labels[labels < TEXT] = -100  # loc positions only
    keep = labels != -100
    ours, _ = GroundingLoss(LossConfig("ce", normalise="loc"), BINS, LOC_IDS)(logits, labels)
    ref = F.cross_entropy(logits[keep][:, TEXT:], labels[keep] - TEXT)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-12)


def test_grounding_loss_logs():
    logits, labels = batch(seed=9)
    keep = labels != -100
    is_loc = keep & (labels >= TEXT)
    _, logs = GroundingLoss(LossConfig("soft_ce", "dip", {"power": 2}), BINS, LOC_IDS)(logits, labels)
    assert logs["ce"] == pytest.approx(F.cross_entropy(logits[keep], labels[keep]).item())
    p_loc = torch.softmax(logits[is_loc][:, TEXT:], -1)
    assert logs["loc_entropy"] == pytest.approx(-(p_loc * p_loc.log()).sum(-1).mean().item())
    p = torch.softmax(logits[is_loc], -1)[:, TEXT:]
    near = (torch.arange(16)[None] - (labels[is_loc] - TEXT)[:, None]).abs() <= 1
    assert logs["loc_mass_1"] == pytest.approx((p * near).sum(-1).mean().item())
    assert (logs["n_tokens"], logs["n_loc"]) == (int(keep.sum()), int(is_loc.sum()))


def test_grounding_loss_on_the_kosmos2_grid():
    loc_ids = torch.arange(5, 5 + 1024)
    logits = torch.randn(2, 6, 1029, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([[1, 5 + 40, 5 + 900, 2, -100, -100], [5 + 0, 5 + 1023, 3, 3, 4, -100]])
    loss, logs = GroundingLoss(LossConfig("soft_gem", "gaussian", {"sigma": 1.5}), KOSMOS2, loc_ids)(logits, labels)
    keep = labels != -100
    target = torch.zeros(2, 6, 1029, dtype=torch.float64)
    table = soft_label_table(KOSMOS2, "gaussian", torch.float64, sigma=1.5)
    for i, j in keep.nonzero().tolist():
        y = int(labels[i, j])
        if y >= 5: target[i, j, 5:] = table[y - 5]
        else: target[i, j, y] = 1
    assert loss.item() == pytest.approx(soft_gem_loss(logits[keep], target[keep]).item(), rel=1e-10)
    assert logs["n_loc"] == 4


# ---------- gradcheck in float64 ----------
# GEM-family losses hold q (and w) constant by design, so their gradient is not the derivative of their value and
# gradcheck does not apply; their gradients are pinned above against closed forms and the official formula.

def test_gradcheck_standalone_losses():
    torch.manual_seed(10)
    z = torch.randn(5, 16, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 5, -100, 15, 7])
    t = torch.softmax(torch.randn(5, 16, dtype=torch.float64), -1)
    assert torch.autograd.gradcheck(lambda z: ce_loss(z, y), (z,))
    assert torch.autograd.gradcheck(lambda z: soft_cross_entropy(z, t), (z,))
    assert torch.autograd.gradcheck(lambda z: dist2_loss(z, y, BINS), (z,))
    for kind in ("was", "mse"): assert torch.autograd.gradcheck(lambda z: ntl_loss(z, y, BINS, kind), (z,))


@pytest.mark.parametrize("config", [LossConfig("ce", chunk_size=3), LossConfig("soft_ce", "dip", {"power": 2, "radius": 3}),
                                    LossConfig("soft_ce", "laplace", normalise="loc", chunk_size=2),
                                    LossConfig("dist2", chunk_size=4), LossConfig("ntl", ntl="mse"),
                                    LossConfig("ntl", ntl="was", normalise="loc", chunk_size=1)],
                         ids=lambda c: f"{c.loss}-{c.target}-{c.normalise}-{c.chunk_size}")
def test_gradcheck_grounding_loss(config):
    logits, labels = batch(seed=11, b=2, t=5)
    logits = logits.clone().requires_grad_()
    loss_fn = GroundingLoss(config, BINS, LOC_IDS)
    assert torch.autograd.gradcheck(lambda z: loss_fn(z, labels)[0], (logits,))


# ---------- precision, empty input, bad input ----------

def test_bf16_is_upcast():
    logits, labels = batch(seed=12, dtype=torch.float32)
    low = logits.bfloat16().requires_grad_()
    for fn in (lambda z: ce_loss(z, labels), lambda z: gem_loss(z, labels),
               lambda z: GroundingLoss(LossConfig("soft_gem", "dip"), BINS, LOC_IDS)(z, labels)[0]):
        loss = fn(low)
        assert loss.dtype == torch.float32
        assert loss.item() == pytest.approx(fn(low.detach().float()).item(), rel=1e-6)
        (g,) = torch.autograd.grad(loss, low)
        assert g.dtype == torch.bfloat16


def test_all_ignored_gives_zero():
    logits = torch.randn(2, 3, V, requires_grad=True)
    labels = torch.full((2, 3), -100)
    for loss in (ce_loss(logits, labels), gem_loss(logits, labels), dist2_loss(logits[..., TEXT:], labels, BINS),
                 GroundingLoss(LossConfig("soft_gem", "dip"), BINS, LOC_IDS)(logits, labels)[0]):
        assert loss.item() == 0.0 and not math.isnan(loss.item())
        (g,) = torch.autograd.grad(loss, logits)
        assert (g == 0).all()


@pytest.mark.parametrize("call, message", [
    (lambda z, y, t: soft_cross_entropy(z, t * 0.9), "rows must sum to 1"),
    (lambda z, y, t: soft_gem_loss(z, t - 0.01), "negative entry"),
    (lambda z, y, t: soft_cross_entropy(z, t[:, :-1]), "do not match logits"),
    (lambda z, y, t: gem_loss(z, y[:-1]), "do not match logits"),
    (lambda z, y, t: gem_loss(z, y, beta=0.0), "beta must lie in (0, 1], got 0.0"),
    (lambda z, y, t: gem_loss(z, y, beta=1.2), "beta must lie in (0, 1], got 1.2"),
    (lambda z, y, t: soft_gem_loss(z, t, beta=-1), "beta must lie in (0, 1], got -1"),
    (lambda z, y, t: ce_loss(z, y + V), f"labels must lie in [0, {V})"),
    (lambda z, y, t: gem_loss(z, y - 200), f"labels must lie in [0, {V})"),
    (lambda z, y, t: GroundingLoss(LossConfig("soft_ce", "dip"), BINS, LOC_IDS)(z[None], (y + V)[None]), f"labels must lie in [0, {V})"),
    (lambda z, y, t: GroundingLoss(LossConfig("ce"), BINS, LOC_IDS)(z[:, :20], y.clamp(max=19)), "outside the logits' vocabulary of 20"),
    (lambda z, y, t: GroundingLoss(LossConfig("ce"), BINS, LOC_IDS[:5]), "expected 16 loc token ids"),
    (lambda z, y, t: LossConfig("soft_ce", "dip", {"power": -1}), "power must be >= 0, got -1"),
    (lambda z, y, t: LossConfig("ntl", ntl="huber"), "unknown NTL kind 'huber'"),
    (lambda z, y, t: LossConfig("ce", normalise="all"), "unknown normalise 'all'"),
])
def test_bad_input_names_the_problem(call, message):
    z = torch.randn(4, V)
    y = torch.tensor([1, TEXT + 2, -100, 5])
    t = torch.softmax(torch.randn(4, V), -1)
    with pytest.raises(ValueError) as e:
        call(z, y, t)
    assert message in str(e.value)


@pytest.mark.parametrize("h", ["linear", "logsigmoid"])
def test_soft_gem_is_the_expectation_of_official_gem(h):
    "Value and gradient of soft GEM against sum_k t_k * official GEM(z, k), with autograd through the official formula."
    torch.manual_seed(13)
    logits = torch.randn(6, 20, dtype=torch.float64) * 4
    t = torch.softmax(torch.randn(6, 20, dtype=torch.float64) * 2, -1)
    t[:, 15:] = 0  # a target with a partial support
    t = t / t.sum(-1, keepdim=True)
    a = logits.clone().requires_grad_()
    b = logits.clone().requires_grad_()
    ours = soft_gem_loss(a, t, beta=0.6, h=h, reduction="sum")
    ref = sum((t[:, k] * torch.stack([official_gem(b[i:i + 1], torch.tensor([k]), 0.6, h) for i in range(6)])).sum() for k in range(20))
    assert ours.item() == pytest.approx(ref.item(), rel=1e-10)
    assert torch.allclose(torch.autograd.grad(ours, a)[0], torch.autograd.grad(ref, b)[0], atol=1e-10)


def test_reduction_none_and_int32_labels():
    logits, labels = batch(seed=14)
    a = logits.clone().requires_grad_()
    b = logits.clone().requires_grad_()
    ours = ce_loss(a, labels.int(), reduction="none")
    ref = F.cross_entropy(b.reshape(-1, V), labels.reshape(-1), reduction="none").view(labels.shape)
    assert torch.allclose(ours, ref, atol=1e-12)
    weights = torch.rand(labels.shape, dtype=torch.float64)
    (ga,) = torch.autograd.grad(ours, a, weights)
    (gb,) = torch.autograd.grad(ref, b, weights)
    assert torch.allclose(ga, gb, atol=1e-12)
    loss, _ = GroundingLoss(LossConfig("soft_gem", "dip"), BINS, LOC_IDS)(logits, labels.int())
    assert loss.item() == pytest.approx(GroundingLoss(LossConfig("soft_gem", "dip"), BINS, LOC_IDS)(logits, labels)[0].item())
