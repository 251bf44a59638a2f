"""LARS on foreach kernels against the per-parameter implementation it replaced (kept here only).

Every kind of parameter a SimCLR run has: conv and linear weights (adapted, decayed), biases
and BatchNorm affine (not adapted), an ``adapt=False`` group (the online probe), a parameter
whose gradient is all zeros and one whose gradient is None.
"""

from __future__ import annotations

import copy
import io
from typing import Any, Callable

import pytest
import torch
from torch import Tensor, nn

from simclr.optim import LARS, parameter_groups


class PerParameterLARS(torch.optim.Optimizer):
    """The LARS update as it was before foreach: a Python loop of small kernels per parameter."""

    def __init__(self, params: Any, lr: float, momentum: float = 0.9, weight_decay: float = 1e-6, eta: float = 0.001) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, eta=eta, adapt=True))

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> None:  # type: ignore[override]
        for group in self.param_groups:
            lr, momentum = group["lr"], group["momentum"]
            weight_decay, eta = group["weight_decay"], group["eta"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if p.ndim > 1 and group["adapt"]:
                    grad = grad.add(p, alpha=weight_decay) if weight_decay != 0 else grad
                    w_norm = torch.linalg.vector_norm(p)
                    g_norm = torch.linalg.vector_norm(grad)
                    trust = torch.where((w_norm > 0) & (g_norm > 0), eta * w_norm / g_norm, torch.ones_like(w_norm))
                    update = grad * (trust * lr)
                else:
                    update = grad * lr
                state = self.state[p]
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = update.clone()
                    state["momentum_buffer"] = buf
                else:
                    buf.mul_(momentum).add_(update)
                p.sub_(buf)


class Net(nn.Module):
    """Conv + BN + linear encoder; a zero-initialised layer; a layer that never gets a gradient."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 4)
        self.zero = nn.Linear(8, 4)  # beside fc, so fc still gets gradients
        nn.init.zeros_(self.zero.weight)
        self.unused = nn.Linear(8, 4)  # grad stays None

    def forward(self, x: Tensor) -> Tensor:
        h = self.bn(self.conv(x)).relu().mean(dim=(2, 3))
        return self.fc(h) + self.zero(h)


def _setups(model: Net, probe: nn.Linear) -> list[dict[str, Any]]:
    return parameter_groups(model, 1e-2, plain=probe)


def _train(optimizer_class: type, steps: int, seed: int = 0, device: str = "cpu") -> tuple[Net, nn.Linear, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model, probe = Net().to(device), nn.Linear(4, 3).to(device)
    optimizer = optimizer_class(_setups(model, probe), lr=0.8, momentum=0.9, weight_decay=1e-2, eta=0.02)
    generator = torch.Generator().manual_seed(seed + 1)
    for step in range(steps):
        x = torch.randn(4, 3, 6, 6, generator=generator).to(device)
        optimizer.zero_grad(set_to_none=True)
        out = model(x)
        (out.pow(2).mean() + probe(out.detach()).logsumexp(1).mean()).backward()
        if step % 2:  # a zero gradient, with and without a momentum buffer behind it
            model.fc.bias.grad.zero_()
            model.conv.weight.grad.zero_()
        optimizer.step()
    return model, probe, optimizer


def _tensors(model: Net, probe: nn.Linear, optimizer: torch.optim.Optimizer) -> dict[str, Tensor]:
    named = {f"model.{k}": v for k, v in model.named_parameters()} | {f"probe.{k}": v for k, v in probe.named_parameters()}
    out = {name: p.detach() for name, p in named.items()}
    out |= {f"buf.{name}": optimizer.state[p]["momentum_buffer"] for name, p in named.items() if p in optimizer.state}
    return out


@pytest.mark.parametrize("steps", [1, 2, 6])
def test_foreach_lars_equals_the_per_parameter_one_for_every_kind_of_parameter(steps: int) -> None:
    new, old = _tensors(*_train(LARS, steps)), _tensors(*_train(PerParameterLARS, steps))
    assert new.keys() == old.keys()
    assert "buf.model.unused.weight" not in new and "buf.model.bn.weight" in new and "buf.probe.weight" in new
    for name in new:
        torch.testing.assert_close(new[name], old[name], rtol=1e-7, atol=1e-7, msg=name)
    # The run moved every trained parameter, and the one without a gradient not at all.
    start = _tensors(*_train(LARS, 0))
    assert torch.equal(new["model.unused.weight"], start["model.unused.weight"])
    assert all(not torch.equal(new[k], start[k]) for k in start if k.startswith(("model.", "probe.")) and "unused" not in k)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_foreach_lars_equals_the_per_parameter_one() -> None:
    """On CUDA the foreach norms are fused kernels (another summation order): equal to 1e-7 still."""
    new, old = _tensors(*_train(LARS, 6, device="cuda")), _tensors(*_train(PerParameterLARS, 6, device="cuda"))
    for name in new:
        assert new[name].is_cuda
        torch.testing.assert_close(new[name], old[name], rtol=1e-7, atol=1e-7, msg=name)


def test_each_rule_applies_to_its_kind_of_parameter() -> None:
    """One step from zero buffers: adapted weights move by lr * trust * (g + wd p), the rest by lr * g."""
    torch.manual_seed(3)
    model, probe = Net(), nn.Linear(4, 3)
    before = {name: p.detach().clone() for name, p in [*model.named_parameters(), *(("probe." + k, v) for k, v in probe.named_parameters())]}
    optimizer = LARS(_setups(model, probe), lr=0.5, momentum=0.9, weight_decay=1e-2, eta=0.02)
    model(torch.randn(2, 3, 6, 6)).sum().backward()
    probe(torch.randn(2, 4)).sum().backward()
    grads = {name: p.grad.clone() for name, p in [*model.named_parameters(), *(("probe." + k, v) for k, v in probe.named_parameters())]
             if p.grad is not None}
    optimizer.step()
    after = dict(model.named_parameters()) | {"probe." + k: v for k, v in probe.named_parameters()}
    for name in ("conv.weight", "fc.weight"):
        g = grads[name] + 1e-2 * before[name]
        trust = 0.02 * before[name].norm() / g.norm()
        torch.testing.assert_close(after[name].detach(), before[name] - 0.5 * trust * g, msg=name)
    for name in ("bn.weight", "bn.bias", "fc.bias", "probe.weight", "probe.bias"):  # plain: no decay, no trust
        torch.testing.assert_close(after[name].detach(), before[name] - 0.5 * grads[name], msg=name)
    # All-zero weight: ||p|| = 0 gives trust 1 (and wd * p = 0).
    torch.testing.assert_close(after["zero.weight"].detach(), -0.5 * grads["zero.weight"])
    assert torch.equal(after["unused.weight"].detach(), before["unused.weight"])
    for name, p in model.named_parameters():  # the raw gradient is left as it was
        if name in grads:
            assert torch.equal(p.grad, grads[name]), name


def test_checkpointed_state_resumes_bitwise_across_implementations() -> None:
    """A state dict saved by the per-parameter LARS loads into the foreach one, and on from there bitwise."""
    model, probe, old = _train(PerParameterLARS, 3)
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "probe": probe.state_dict(), "optimizer": old.state_dict()}, buffer)
    twin, twin_probe = copy.deepcopy(model), copy.deepcopy(probe)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    new = LARS(_setups(twin, twin_probe), lr=0.8, momentum=0.9, weight_decay=1e-2, eta=0.02)
    new.load_state_dict(saved["optimizer"])
    again = LARS(_setups(model, probe), lr=0.8, momentum=0.9, weight_decay=1e-2, eta=0.02)
    again.load_state_dict(old.state_dict())
    x = torch.randn(4, 3, 6, 6, generator=torch.Generator().manual_seed(9))
    for net, head, optimizer in ((model, probe, again), (twin, twin_probe, new)):
        optimizer.zero_grad(set_to_none=True)
        (net(x).pow(2).mean() + head(net(x).detach()).logsumexp(1).mean()).backward()
        optimizer.step()
    for (name, a), b in zip(model.state_dict().items(), twin.state_dict().values()):
        assert torch.equal(a, b), name


def test_mixed_dtypes_in_one_group_are_updated_each_in_its_own_dtype() -> None:
    w32 = torch.randn(3, 4, generator=torch.Generator().manual_seed(0)).requires_grad_()
    w64 = w32.detach().double().clone().requires_grad_()
    optimizer = LARS([w32, w64], lr=0.3, weight_decay=1e-3, eta=0.1)
    grad = torch.randn(3, 4, generator=torch.Generator().manual_seed(1))
    w32.grad, w64.grad = grad.clone(), grad.double()
    optimizer.step()
    assert w32.dtype == torch.float32 and w64.dtype == torch.float64
    torch.testing.assert_close(w64.detach().float(), w32.detach(), rtol=1e-6, atol=1e-7)


def test_sparse_gradients_are_refused() -> None:
    weight = torch.randn(4, 3, requires_grad=True)
    weight.grad = torch.randn(4, 3).to_sparse()
    with pytest.raises(Exception, match="sparse"):
        LARS([weight], lr=0.1).step()


def test_parameters_spread_over_several_cpu_buckets_get_the_same_update() -> None:
    """A megabyte's worth of parameters at a time on the CPU: the runs' boundaries change nothing."""
    from simclr.optim.lars import _buckets

    shapes = [(700, 600), (600,), (3, 5), (400, 900), (900,), (2, 2, 3, 3), (800, 400)]
    starts = [torch.randn(shape, generator=torch.Generator().manual_seed(i)) for i, shape in enumerate(shapes)]
    assert len(_buckets(starts)) >= 3 and [p for bucket in _buckets(starts) for p in bucket] == starts
    results = []
    for optimizer_class in (LARS, PerParameterLARS):
        params = [p.clone().requires_grad_() for p in starts]
        optimizer = optimizer_class(params, lr=0.5, momentum=0.9, weight_decay=1e-3, eta=0.01)
        for step in range(3):
            for i, p in enumerate(params):
                p.grad = torch.randn(p.shape, generator=torch.Generator().manual_seed(100 * step + i))
            optimizer.step()
        results.append(params)
    for new, old in zip(*results):
        torch.testing.assert_close(new.detach(), old.detach(), rtol=1e-7, atol=1e-7)
