"""The learning-rate rules (simclr/optim/schedule.py): linear warm-up then cosine, batch scaling, defaults, per-group scale."""

from __future__ import annotations

import math

import pytest
import torch

from simclr.errors import SimCLRError
from simclr.optim import OPTIMIZERS, default_base_lr, scaled_lr, set_lr, warmup_cosine_lr


def test_warmup_cosine_known_values() -> None:
    peak, final, total, warm = 4.8, 0.1, 110, 10
    f = lambda s: warmup_cosine_lr(s, total, warm, peak, final)  # noqa: E731
    assert f(0) == pytest.approx(peak / warm)
    assert f(4) == pytest.approx(peak * 5 / warm)
    assert f(warm - 1) == pytest.approx(peak)
    assert f(warm) == pytest.approx(peak)
    assert f(warm + 50) == pytest.approx((peak + final) / 2)
    last = final + 0.5 * (peak - final) * (1 + math.cos(math.pi * 99 / 100))
    assert f(total - 1) == pytest.approx(last)
    assert final < f(total - 1) < final + 0.01
    assert f(total) == final and f(10 * total) == final
    assert all(f(s) >= f(s + 1) for s in range(warm, total))
    assert warmup_cosine_lr(0, 5, 0, 1.0) == pytest.approx(1.0)  # no warm-up


@pytest.mark.parametrize(
    ("args", "match"),
    [((-1, 10, 2, 1.0), "step"), ((0, 0, 0, 1.0), "total_steps"), ((0, 10, 11, 1.0), "warmup_steps"),
     ((0, 10, -1, 1.0), "warmup_steps"), ((0, 10, 2, -1.0), "peak_lr")],
)
def test_warmup_cosine_invalid(args: tuple, match: str) -> None:
    with pytest.raises(SimCLRError, match=match):
        warmup_cosine_lr(*args)


def test_scaled_lr_rules() -> None:
    assert scaled_lr(0.3, 4096, "linear") == pytest.approx(4.8)
    assert scaled_lr(0.075, 4096, "sqrt") == pytest.approx(4.8)
    assert scaled_lr(0.3, 4096, "none") == 0.3
    assert scaled_lr(0.3, 256, "linear") == pytest.approx(0.3)
    with pytest.raises(SimCLRError, match="rule"):
        scaled_lr(0.3, 256, "cubic")
    with pytest.raises(SimCLRError, match="batch_size"):
        scaled_lr(0.3, 0, "linear")


def test_default_base_lr() -> None:
    assert default_base_lr("lars", "linear") == 0.3
    assert default_base_lr("lars", "sqrt") == 0.075
    assert default_base_lr("sgd", "linear") == 0.3
    for name in OPTIMIZERS:
        for rule in ("linear", "sqrt", "none"):
            assert default_base_lr(name, rule) > 0
    assert scaled_lr(default_base_lr("adamw", "sqrt"), 256, "sqrt") == pytest.approx(1e-3)
    with pytest.raises(SimCLRError, match="optimizer"):
        default_base_lr("rmsprop", "linear")
    with pytest.raises(SimCLRError, match="rule"):
        default_base_lr("lars", "cubic")


def test_set_lr_applies_group_scale() -> None:
    w, b = torch.zeros(2, 2, requires_grad=True), torch.zeros(2, requires_grad=True)
    opt = torch.optim.SGD([{"params": [w]}, {"params": [b], "lr_scale": 0.1}], lr=1.0)
    set_lr(opt, 2.0)
    assert [g["lr"] for g in opt.param_groups] == [2.0, pytest.approx(0.2)]
    with pytest.raises(SimCLRError, match="lr"):
        set_lr(opt, -1.0)
