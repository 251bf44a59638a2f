"""Tests for simclr.optim: LARS, parameter groups, optimizer building (schedules: test_schedule.py)."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn

from simclr.errors import SimCLRError
from simclr.optim import (
    LARS,
    OPTIMIZERS,
    build_optimizer,
    parameter_groups,
    set_lr,
    warmup_cosine_lr,
)


def reference_lars_step(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    bufs: list[torch.Tensor],
    lr: float,
    momentum: float,
    wd: float,
    eta: float,
) -> None:
    """One LARS step from the formulas of google-research/simclr lars_optimizer.py."""
    for p, g, buf in zip(params, grads, bufs):
        if p.dim() > 1:
            g = g + wd * p
            w_norm, g_norm = float(p.norm()), float(g.norm())
            trust = eta * w_norm / g_norm if w_norm > 0 and g_norm > 0 else 1.0
        else:
            trust = 1.0
        buf.copy_(momentum * buf + lr * trust * g)
        p.copy_(p - buf)


def make_params() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(4, 3, generator=g)
    bias = torch.randn(4, generator=g)
    zero = torch.zeros(2, 5)
    conv = torch.randn(3, 2, 3, 3, generator=g)
    return [t.requires_grad_() for t in (weight, bias, zero, conv)]


def grads_for(step: int, params: list[torch.Tensor]) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(100 + step)
    return [torch.randn(p.shape, generator=g) for p in params]


@pytest.mark.parametrize("steps", [1, 5])
def test_lars_matches_reference(steps: int) -> None:
    lr, momentum, wd, eta = 0.7, 0.9, 1e-2, 0.02
    params = make_params()
    ref = [p.detach().clone() for p in params]
    bufs = [torch.zeros_like(p) for p in ref]
    opt = LARS(params, lr=lr, momentum=momentum, weight_decay=wd, eta=eta)
    for step in range(steps):
        grads = grads_for(step, params)
        for p, g in zip(params, grads):
            p.grad = g.clone()
        opt.step()
        reference_lars_step(ref, grads, bufs, lr, momentum, wd, eta)
        for p, g in zip(params, grads):
            assert torch.equal(p.grad, g)  # the raw gradient is left untouched
    for p, r in zip(params, ref):
        torch.testing.assert_close(p.detach(), r, rtol=1e-5, atol=1e-6)
    for p, b in zip(params, bufs):
        torch.testing.assert_close(opt.state[p]["momentum_buffer"], b, rtol=1e-5, atol=1e-6)


def test_lars_bias_and_zero_weight_rules() -> None:
    """Bias: plain lr*g, no decay. All-zero weight: trust 1 and wd*0 = 0, so lr*g too."""
    params = make_params()
    weight, bias, zero, _ = params
    before = [p.detach().clone() for p in params]
    grads = grads_for(0, params)
    for p, g in zip(params, grads):
        p.grad = g.clone()
    LARS(params, lr=0.5, momentum=0.9, weight_decay=0.1, eta=0.001).step()
    torch.testing.assert_close(bias.detach(), before[1] - 0.5 * grads[1])
    torch.testing.assert_close(zero.detach(), before[2] - 0.5 * grads[2])
    # Adapted weight moves by lr * eta * ||w|| in norm, far less than lr * ||g||.
    g_wd = grads[0] + 0.1 * before[0]
    step = 0.5 * 0.001 * before[0].norm() / g_wd.norm() * g_wd
    torch.testing.assert_close(weight.detach(), before[0] - step)


def test_lars_group_overrides_and_skips_params_without_grad() -> None:
    w1, w2, w3 = (torch.ones(2, 2, requires_grad=True) for _ in range(3))
    opt = LARS(
        [{"params": [w1]}, {"params": [w2, w3], "lr": 2.0, "eta": 0.5, "weight_decay": 0.0}],
        lr=1.0, weight_decay=0.0, eta=0.1,
    )
    w1.grad = torch.ones(2, 2)
    w2.grad = torch.ones(2, 2)
    opt.step()
    # ||w|| = ||g|| = 2, so the step per entry is lr * eta.
    torch.testing.assert_close(w1.detach(), torch.full((2, 2), 1.0 - 0.1))
    torch.testing.assert_close(w2.detach(), torch.full((2, 2), 1.0 - 1.0))
    assert torch.equal(w3.detach(), torch.ones(2, 2)) and w3 not in opt.state


def test_lars_converges_on_least_squares() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(128, 10, generator=g)
    y = x @ torch.randn(10, 3, generator=g) + 0.5
    model = nn.Linear(10, 3)
    torch.manual_seed(2)
    nn.init.normal_(model.weight, std=0.1)
    opt = LARS(model.parameters(), lr=0.0, momentum=0.9, weight_decay=0.0, eta=0.01)
    loss_fn = nn.MSELoss()
    initial = loss_fn(model(x), y).item()
    total = 300
    for step in range(total):
        set_lr(opt, warmup_cosine_lr(step, total, warmup_steps=10, peak_lr=2.0))
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    final = loss_fn(model(x), y).item()
    assert final < 1e-5 * initial and final < 1e-4


def test_lars_state_dict_round_trip() -> None:
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Linear(6, 2))
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(3))

    def train(m: nn.Module, opt: torch.optim.Optimizer, steps: int) -> None:
        for _ in range(steps):
            opt.zero_grad()
            m(x).pow(2).mean().backward()
            opt.step()

    opt = LARS(model.parameters(), lr=1.0, momentum=0.9, weight_decay=1e-4)
    train(model, opt, 3)
    clone = copy.deepcopy(model)
    restored = LARS(clone.parameters(), lr=1.0, momentum=0.9, weight_decay=1e-4)
    # Serialise, as a checkpoint would: load_state_dict alone shares the buffer tensors.
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    assert all("momentum_buffer" in s for s in restored.state.values())
    fresh_model = copy.deepcopy(model)
    fresh = LARS(fresh_model.parameters(), lr=1.0, momentum=0.9, weight_decay=1e-4)

    train(model, opt, 3)
    train(clone, restored, 3)
    train(fresh_model, fresh, 3)
    for a, b in zip(model.parameters(), clone.parameters()):
        assert torch.equal(a, b)
    # Without the momentum buffers the trajectory differs, so the check above has teeth.
    assert not all(torch.equal(a, b) for a, b in zip(model.parameters(), fresh_model.parameters()))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"lr": -0.1}, "lr"), ({"lr": float("nan")}, "lr"), ({"momentum": 1.0}, "momentum"),
     ({"momentum": -0.1}, "momentum"), ({"weight_decay": -1e-6}, "weight_decay"),
     ({"eta": 0.0}, "eta")],
)
def test_lars_invalid_hparams(kwargs: dict[str, float], match: str) -> None:
    args = {"lr": 0.1} | kwargs
    with pytest.raises(SimCLRError, match=match):
        LARS([torch.zeros(2, 2, requires_grad=True)], **args)
    with pytest.raises(SimCLRError, match=match):
        LARS([{"params": [torch.zeros(2, 2, requires_grad=True)], **kwargs}], lr=0.1)


def test_parameter_groups_split_by_ndim() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    model[3].bias.requires_grad_(False)
    groups = parameter_groups(model, weight_decay=1e-4)
    by_wd = {g["weight_decay"]: g["params"] for g in groups}
    assert set(by_wd) == {1e-4, 0.0}
    ids = lambda ps: {id(p) for p in ps}  # noqa: E731
    assert ids(by_wd[1e-4]) == ids([model[0].weight, model[3].weight])
    assert ids(by_wd[0.0]) == ids([model[0].bias, model[1].weight, model[1].bias])
    with pytest.raises(SimCLRError, match="weight_decay"):
        parameter_groups(model, -1.0)


def test_parameter_groups_put_a_plain_module_last_without_decay_or_adaptation() -> None:
    model, head = nn.Linear(4, 3), nn.Linear(3, 2)
    groups = parameter_groups(model, weight_decay=1e-4, plain=head)
    assert [g["weight_decay"] for g in groups] == [1e-4, 0.0, 0.0]
    assert groups[-1]["adapt"] is False and [id(p) for p in groups[-1]["params"]] == [id(head.weight), id(head.bias)]
    assert all("adapt" not in g for g in groups[:-1])


def test_lars_group_without_adaptation_is_plain_sgd_momentum() -> None:
    """An ``adapt=False`` group: no weight decay and no trust ratio, i.e. torch's SGD with momentum."""
    start = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    lars_w, sgd_w, adapted_w = (start.clone().requires_grad_() for _ in range(3))
    lars = LARS([{"params": [lars_w], "adapt": False, "weight_decay": 0.0}], lr=0.5, momentum=0.9, weight_decay=0.1)
    sgd = torch.optim.SGD([sgd_w], lr=0.5, momentum=0.9)
    adapted = LARS([adapted_w], lr=0.5, momentum=0.9, weight_decay=0.1)
    for step in range(3):
        grad = torch.randn(4, 3, generator=torch.Generator().manual_seed(10 + step))
        for w, opt in ((lars_w, lars), (sgd_w, sgd), (adapted_w, adapted)):
            w.grad = grad.clone()
            opt.step()
    torch.testing.assert_close(lars_w.detach(), sgd_w.detach(), rtol=1e-6, atol=1e-7)
    assert not torch.allclose(adapted_w, sgd_w, atol=1e-3)  # the default group would have been adapted


@pytest.mark.parametrize(
    ("name", "cls"),
    [("lars", LARS), ("sgd", torch.optim.SGD), ("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)],
)
def test_build_optimizer_types(name: str, cls: type) -> None:
    model = nn.Linear(3, 2)
    opt = build_optimizer(name, parameter_groups(model, 1e-3), lr=0.1, weight_decay=5e-4)
    assert type(opt) is cls
    assert [g["weight_decay"] for g in opt.param_groups] == [1e-3, 0.0]
    assert all(g["lr"] == 0.1 for g in opt.param_groups)
    if name == "sgd":
        assert opt.param_groups[0]["momentum"] == 0.9 and not opt.param_groups[0]["nesterov"]
    plain = build_optimizer(name, list(model.parameters()), lr=0.1, weight_decay=5e-4)
    assert plain.param_groups[0]["weight_decay"] == 5e-4


def test_build_optimizer_errors() -> None:
    params = list(nn.Linear(2, 2).parameters())
    assert OPTIMIZERS == ("lars", "sgd", "adam", "adamw")
    with pytest.raises(SimCLRError, match="lars, sgd, adam, adamw"):
        build_optimizer("rmsprop", params, lr=0.1, weight_decay=0.0)
    with pytest.raises(SimCLRError, match="lr"):
        build_optimizer("sgd", params, lr=-1.0, weight_decay=0.0)
    with pytest.raises(SimCLRError, match="momentum"):
        build_optimizer("sgd", params, lr=0.1, weight_decay=0.0, momentum=1.5)
