"""Tests for simclr.loss (NT-Xent, arXiv 2002.05709 Algorithm 1)."""

from __future__ import annotations

import math

import pytest
import torch

from simclr.errors import SimCLRError
from simclr.loss import NTXentLoss, _normalize, _nt_xent_from_parts, nt_xent


def naive_nt_xent(z_a: torch.Tensor, z_b: torch.Tensor, tau: float) -> torch.Tensor:
    """Algorithm 1 of the paper, literally, in float64 (differentiable).

    Views are interleaved as in the paper: z_{2k-1} = z_a[k], z_{2k} = z_b[k]
    (0-based here: z[2k] and z[2k+1]).
    """
    n = z_a.shape[0]
    z = []
    for k in range(n):
        z.append(z_a[k].double())
        z.append(z_b[k].double())

    def s(i: int, j: int) -> torch.Tensor:
        return torch.dot(z[i], z[j]) / (torch.linalg.norm(z[i]) * torch.linalg.norm(z[j]))

    sim = [[s(i, j) for j in range(2 * n)] for i in range(2 * n)]

    def ell(i: int, j: int) -> torch.Tensor:
        denom = sum(torch.exp(sim[i][k] / tau) for k in range(2 * n) if k != i)
        return -torch.log(torch.exp(sim[i][j] / tau) / denom)

    total = sum(ell(2 * k, 2 * k + 1) + ell(2 * k + 1, 2 * k) for k in range(n))
    return total / (2 * n)


def naive_accuracy(z_a: torch.Tensor, z_b: torch.Tensor) -> float:
    """Fraction of anchors whose positive is the most similar other embedding."""
    n = z_a.shape[0]
    z = torch.cat([z_a, z_b]).double()
    z = z / z.norm(dim=1, keepdim=True)
    hits = 0
    for i in range(2 * n):
        best, best_j = -math.inf, -1
        for j in range(2 * n):
            if j != i and float(z[i] @ z[j]) > best:
                best, best_j = float(z[i] @ z[j]), j
        hits += int(best_j == (i + n) % (2 * n))
    return hits / (2 * n)


@pytest.mark.parametrize("n", [2, 5, 16])
@pytest.mark.parametrize("d", [3, 8, 128])
@pytest.mark.parametrize("tau", [0.05, 0.1, 0.5, 1.0])
def test_matches_naive_algorithm_1(n: int, d: int, tau: float) -> None:
    g = torch.Generator().manual_seed(1000 * n + d)
    z_a = torch.randn(n, d, generator=g)
    z_b = z_a + 0.5 * torch.randn(n, d, generator=g)
    out = nt_xent(z_a, z_b, tau)
    expected = naive_nt_xent(z_a, z_b, tau)
    assert out.loss.dtype == torch.float32 and out.loss.ndim == 0
    torch.testing.assert_close(out.loss.double(), expected, rtol=1e-5, atol=1e-6)


def test_identical_embeddings_give_log_2n_minus_1() -> None:
    n = 7
    z = torch.ones(n, 4)
    out = nt_xent(z, z.clone(), temperature=0.3)
    assert out.loss.item() == pytest.approx(math.log(2 * n - 1), rel=1e-6)


def test_module_matches_function_and_stores_accuracy() -> None:
    g = torch.Generator().manual_seed(0)
    z_a, z_b = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    module = NTXentLoss(temperature=0.2)
    assert module.last_accuracy is None
    loss = module(z_a, z_b)
    out = nt_xent(z_a, z_b, 0.2)
    torch.testing.assert_close(loss, out.loss)
    assert module.last_accuracy is not None
    torch.testing.assert_close(module.last_accuracy, out.accuracy)


@pytest.mark.parametrize("tau", [0.1, 0.5])
def test_gradients_match_naive_autograd(tau: float) -> None:
    g = torch.Generator().manual_seed(3)
    base_a = torch.randn(5, 8, generator=g, dtype=torch.float64)
    base_b = torch.randn(5, 8, generator=g, dtype=torch.float64)

    ref_a, ref_b = base_a.clone().requires_grad_(), base_b.clone().requires_grad_()
    naive_nt_xent(ref_a, ref_b, tau).backward()

    # float64 path: tight agreement.
    a64, b64 = base_a.clone().requires_grad_(), base_b.clone().requires_grad_()
    nt_xent(a64, b64, tau).loss.backward()
    torch.testing.assert_close(a64.grad, ref_a.grad, rtol=1e-7, atol=1e-10)
    torch.testing.assert_close(b64.grad, ref_b.grad, rtol=1e-7, atol=1e-10)

    # float32 path: agreement to single precision.
    a32, b32 = base_a.float().requires_grad_(), base_b.float().requires_grad_()
    nt_xent(a32, b32, tau).loss.backward()
    torch.testing.assert_close(a32.grad.double(), ref_a.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(b32.grad.double(), ref_b.grad, rtol=1e-4, atol=1e-6)


def test_gradcheck_float64() -> None:
    g = torch.Generator().manual_seed(4)
    z_a = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    z_b = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: nt_xent(a, b, 0.3).loss, (z_a, z_b))


def test_accuracy_is_detached() -> None:
    z_a = torch.randn(4, 3, requires_grad=True)
    out = nt_xent(z_a, torch.randn(4, 3), 0.5)
    assert out.loss.requires_grad
    assert not out.accuracy.requires_grad
    assert out.accuracy.dtype == torch.float32 and out.accuracy.ndim == 0


def test_large_norm_small_temperature_is_finite() -> None:
    g = torch.Generator().manual_seed(5)
    z_a = (1e4 * torch.randn(32, 16, generator=g)).requires_grad_()
    z_b = (1e4 * torch.randn(32, 16, generator=g)).requires_grad_()
    out = nt_xent(z_a, z_b, temperature=0.05)
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert torch.isfinite(z_a.grad).all() and torch.isfinite(z_b.grad).all()
    expected = naive_nt_xent(z_a.detach(), z_b.detach(), 0.05)
    torch.testing.assert_close(out.loss.double(), expected, rtol=1e-5, atol=1e-6)


def test_bf16_autocast_is_computed_in_fp32() -> None:
    g = torch.Generator().manual_seed(6)
    z_a = torch.randn(16, 64, generator=g).bfloat16().requires_grad_()
    z_b = (z_a.detach().float() + 0.3 * torch.randn(16, 64, generator=g)).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = nt_xent(z_a, z_b, temperature=0.1)
    out.loss.backward()
    assert out.loss.dtype == torch.float32
    assert torch.isfinite(out.loss) and torch.isfinite(z_a.grad).all()
    # The same bf16 values in plain fp32 give the same loss: autocast was off inside.
    fp32 = nt_xent(z_a.detach().float(), z_b.float(), temperature=0.1)
    torch.testing.assert_close(out.loss, fp32.loss, rtol=1e-6, atol=1e-6)


def test_accuracy_one_for_identical_separated_views() -> None:
    z = 3.0 * torch.eye(8, 10)
    out = nt_xent(z, z.clone(), temperature=0.5)
    assert out.accuracy.item() == 1.0


def test_accuracy_matches_naive_count() -> None:
    g = torch.Generator().manual_seed(7)
    z_a = torch.randn(24, 6, generator=g)
    z_b = z_a + 1.0 * torch.randn(24, 6, generator=g)
    expected = naive_accuracy(z_a, z_b)
    assert 0.0 < expected < 1.0  # informative case: some hits, some misses
    assert nt_xent(z_a, z_b, 0.5).accuracy.item() == pytest.approx(expected, abs=1e-6)


def test_from_parts_shards_average_to_full_loss() -> None:
    """Local anchors against the global candidate set, as a distributed caller would."""
    g = torch.Generator().manual_seed(8)
    a = _normalize(torch.randn(12, 5, generator=g))
    b = _normalize(torch.randn(12, 5, generator=g))
    full = nt_xent(a, b, 0.2)
    shards = [_nt_xent_from_parts(a[i : i + 4], b[i : i + 4], a, b, i, 0.2) for i in (0, 4, 8)]
    torch.testing.assert_close(torch.stack([s.loss for s in shards]).mean(), full.loss)
    torch.testing.assert_close(torch.stack([s.accuracy for s in shards]).mean(), full.accuracy)


@pytest.mark.parametrize("tau", [0.0, -0.1, float("nan"), float("inf")])
def test_invalid_temperature(tau: float) -> None:
    z = torch.randn(4, 3)
    with pytest.raises(SimCLRError, match="temperature"):
        nt_xent(z, z, tau)
    with pytest.raises(SimCLRError, match="temperature"):
        NTXentLoss(tau)


@pytest.mark.parametrize(
    ("shape_a", "shape_b", "match"),
    [((4, 3), (4, 5), "same shape"), ((4, 3), (5, 3), "same shape"), ((4,), (4,), "2-D"),
     ((2, 3, 4), (2, 3, 4), "2-D"), ((1, 3), (1, 3), "N must be >= 2")],
)
def test_invalid_shapes(shape_a: tuple[int, ...], shape_b: tuple[int, ...], match: str) -> None:
    with pytest.raises(SimCLRError, match=match):
        nt_xent(torch.randn(shape_a), torch.randn(shape_b))


@pytest.mark.parametrize("chunk_rows", [1, 3, 7, 16])
def test_chunked_loss_equals_plain_in_value_and_gradient(chunk_rows):
    generator = torch.Generator().manual_seed(11)
    z_a = torch.randn(8, 6, dtype=torch.float64, generator=generator, requires_grad=True)
    z_b = torch.randn(8, 6, dtype=torch.float64, generator=generator, requires_grad=True)
    plain = nt_xent(z_a, z_b, 0.3)
    plain_grads = torch.autograd.grad(plain.loss, (z_a, z_b))
    chunked = nt_xent(z_a, z_b, 0.3, chunk_rows=chunk_rows)
    chunked_grads = torch.autograd.grad(chunked.loss, (z_a, z_b))
    torch.testing.assert_close(chunked.loss, plain.loss, rtol=1e-12, atol=0)
    assert chunked.accuracy.item() == plain.accuracy.item()
    for got, want in zip(chunked_grads, plain_grads):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_chunked_loss_matches_the_reference_at_float32():
    generator = torch.Generator().manual_seed(12)
    z_a, z_b = torch.randn(2, 64, 16, generator=generator)
    reference = naive_nt_xent(z_a.double(), z_b.double(), 0.1)
    assert nt_xent(z_a, z_b, 0.1, chunk_rows=40).loss.item() == pytest.approx(reference.item(), rel=1e-5)


@pytest.mark.parametrize("bad", [0, -2, 1.5, True])
def test_chunk_rows_must_be_a_positive_integer(bad):
    with pytest.raises(SimCLRError, match="chunk_rows"):
        nt_xent(torch.randn(4, 3), torch.randn(4, 3), 0.5, chunk_rows=bad)
