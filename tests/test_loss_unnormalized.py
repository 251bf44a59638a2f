"""Un-normalised NT-Xent (``normalize=False``, the paper's Table 5): raw dot products of z over τ."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from simclr.config import Config
from simclr.loss import NTXentLoss, nt_xent
from simclr.train.step import StepSettings


def reference(z_a: torch.Tensor, z_b: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Float64 transcription: logits z_i . z_j / tau (no L2 norm), own column out, cross-entropy; and accuracy."""
    n = z_a.shape[0]
    z = torch.cat([z_a, z_b]).double()
    logits = (z @ z.T / tau).masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(logits, positives), (logits.argmax(1) == positives).double().mean()


def views(n: int, d: int, seed: int, scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    z_a = scale * torch.randn(n, d, generator=g)
    return z_a, z_a + scale * torch.randn(n, d, generator=g)


@pytest.mark.parametrize("chunk_rows", [None, 5])
@pytest.mark.parametrize("tau", [0.1, 1.0])
def test_unnormalized_loss_and_gradient_equal_the_float64_reference(chunk_rows: int | None, tau: float) -> None:
    z_a, z_b = views(16, 8, seed=1, scale=0.5)
    a, b = z_a.double().requires_grad_(), z_b.double().requires_grad_()
    out = nt_xent(a, b, tau, chunk_rows=chunk_rows, normalize=False)
    want, accuracy = reference(z_a, z_b, tau)
    torch.testing.assert_close(out.loss, want, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out.accuracy.double(), accuracy)
    out.loss.backward()
    ra, rb = z_a.double().requires_grad_(), z_b.double().requires_grad_()
    reference(ra, rb, tau)[0].backward()
    torch.testing.assert_close(a.grad, ra.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(b.grad, rb.grad, rtol=1e-10, atol=1e-12)


def test_unnormalized_float32_matches_the_reference_and_gradcheck_passes() -> None:
    z_a, z_b = views(12, 6, seed=2)
    torch.testing.assert_close(nt_xent(z_a, z_b, 0.5, normalize=False).loss.double(), reference(z_a, z_b, 0.5)[0], rtol=1e-5, atol=1e-6)
    a, b = z_a[:4, :3].double().requires_grad_(), z_b[:4, :3].double().requires_grad_()
    assert torch.autograd.gradcheck(lambda x, y: nt_xent(x, y, 0.7, normalize=False).loss, (a, b))
    assert torch.autograd.gradcheck(lambda x, y: nt_xent(x, y, 0.7, chunk_rows=3, normalize=False).loss, (a, b))


def test_the_scale_of_z_matters_only_without_normalisation() -> None:
    z_a, z_b = views(8, 4, seed=3)
    plain = [nt_xent(s * z_a, s * z_b, 0.5).loss for s in (1.0, 3.0)]
    raw = [nt_xent(s * z_a, s * z_b, 0.5, normalize=False).loss for s in (1.0, 3.0)]
    torch.testing.assert_close(plain[0], plain[1])
    assert not torch.allclose(raw[0], raw[1])


def test_module_and_config_carry_the_option() -> None:
    z_a, z_b = views(6, 4, seed=4)
    module = NTXentLoss(0.3, normalize=False)
    torch.testing.assert_close(module(z_a, z_b), nt_xent(z_a, z_b, 0.3, normalize=False).loss)
    assert "normalize=False" in repr(module)
    assert Config().train.loss_normalize is True
    assert StepSettings(0.2).loss_normalize is True


def test_a_train_step_passes_loss_normalize_to_the_loss(monkeypatch: pytest.MonkeyPatch) -> None:
    from torch import nn

    from simclr.train import step

    class Toy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(12, 4)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            h = self.fc(x.flatten(1))
            return h, h

    seen = []
    real = step.nt_xent
    monkeypatch.setattr(step, "nt_xent", lambda *args, **kwargs: seen.append(kwargs["normalize"]) or real(*args, **kwargs))
    model = Toy()
    state = step.TrainState(model, None, torch.optim.SGD(model.parameters(), lr=0.1), torch.amp.GradScaler("cpu", enabled=False),
                            StepSettings(0.5, loss_normalize=False))
    images = torch.rand(4, 3, 2, 2)
    stats = step.train_step(state, (images, images + 0.1, torch.full((4,), -1)))
    assert seen == [False] and torch.isfinite(stats["loss"])
