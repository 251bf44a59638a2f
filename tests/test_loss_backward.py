"""NT-Xent's hand-written backward: against float64 autograd, across shards, chunked, twice, on CUDA."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from simclr.loss import nt_xent

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def reference_loss(z_a: torch.Tensor, z_b: torch.Tensor, tau: float) -> torch.Tensor:
    """The textbook NT-Xent through autograd (in the inputs' dtype): cosine logits, diagonal out, cross-entropy."""
    n = z_a.shape[0]
    z = F.normalize(torch.cat([z_a, z_b]), dim=1)
    logits = (z @ z.T / tau).masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    return F.cross_entropy(logits, torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device))


def views(n: int, d: int, seed: int, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    z_a = torch.randn(n, d, generator=g)
    return z_a.to(device), (z_a + 1.5 * torch.randn(n, d, generator=g)).to(device)


def loss_and_grads(z_a: torch.Tensor, z_b: torch.Tensor, tau: float, **kwargs: object) -> tuple[torch.Tensor, ...]:
    a, b = z_a.clone().requires_grad_(), z_b.clone().requires_grad_()
    loss = nt_xent(a, b, tau, **kwargs).loss if kwargs.get("reference") is None else reference_loss(a, b, tau)
    loss.backward()
    return loss.detach(), a.grad, b.grad


@pytest.mark.parametrize("chunk_rows", [None, 100, 512])
@pytest.mark.parametrize("tau", [0.05, 0.5])
def test_float32_loss_and_gradients_equal_the_float64_reference(chunk_rows: int | None, tau: float) -> None:
    z_a, z_b = views(256, 128, seed=1)
    want = loss_and_grads(z_a.double(), z_b.double(), tau, reference=True)
    got = loss_and_grads(z_a, z_b, tau, chunk_rows=chunk_rows)
    assert got[0].dtype == torch.float32
    torch.testing.assert_close(got[0].double(), want[0], rtol=1e-6, atol=0)
    for g, w in zip(got[1:], want[1:]):  # to 2e-5 of the gradient's largest entry
        torch.testing.assert_close(g.double(), w, rtol=0, atol=2e-5 * float(w.abs().max()))


@pytest.mark.parametrize("chunk_rows", [None, 3])
def test_a_second_backward_through_a_retained_graph_gives_the_same_gradients(chunk_rows: int | None) -> None:
    z_a, z_b = views(8, 5, seed=2)
    a, b = z_a.requires_grad_(), z_b.requires_grad_()
    loss = nt_xent(a, b, 0.2, chunk_rows=chunk_rows).loss
    first = torch.autograd.grad(loss, (a, b), retain_graph=True)
    second = torch.autograd.grad(loss, (a, b))
    for x, y in zip(first, second):
        assert torch.equal(x, y)


@pytest.mark.parametrize("chunk_rows", [None, 5])
def test_sharded_losses_with_gathered_candidates_give_the_full_batch_gradient(chunk_rows: int | None) -> None:
    """Two 'processes' of 6 pairs each, each gathering the other's views with gradient, as DDP does."""
    z_a, z_b = views(12, 7, seed=3, device="cpu")
    z_a, z_b = z_a.double(), z_b.double()
    full = loss_and_grads(z_a, z_b, 0.3, reference=True)
    shards = [(z_a[i : i + 6].clone().requires_grad_(), z_b[i : i + 6].clone().requires_grad_()) for i in (0, 6)]

    def gather_for(rank: int):
        def gather(local: torch.Tensor) -> tuple[torch.Tensor, int]:
            # (6, 2, d) local rows; the other shard's rows come from its own leaves, so gradients reach them.
            others = [local if k == rank else torch.stack([F.normalize(a, dim=1), F.normalize(b, dim=1)], dim=1)
                      for k, (a, b) in enumerate(shards)]
            return torch.cat(others), 6 * rank
        return gather

    losses = [nt_xent(a, b, 0.3, gather=gather_for(rank), chunk_rows=chunk_rows).loss for rank, (a, b) in enumerate(shards)]
    (sum(losses) / 2).backward()  # DDP averages the processes' gradients
    torch.testing.assert_close((losses[0] + losses[1]).detach() / 2, full[0], rtol=1e-12, atol=1e-12)
    grad_a = torch.cat([a.grad for a, _ in shards])
    grad_b = torch.cat([b.grad for _, b in shards])
    torch.testing.assert_close(grad_a, full[1], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grad_b, full[2], rtol=1e-10, atol=1e-12)


def test_the_raw_inputs_gradients_flow_through_the_bf16_cast() -> None:
    z_a, z_b = views(16, 32, seed=4)
    a = z_a.bfloat16().requires_grad_()
    nt_xent(a, z_b.bfloat16(), 0.1).loss.backward()
    assert a.grad.dtype == torch.bfloat16 and torch.isfinite(a.grad.float()).all() and a.grad.abs().sum() > 0


@cuda
@pytest.mark.parametrize("chunk_rows", [None, 1000])
def test_cuda_loss_and_gradients_equal_the_float64_reference(chunk_rows: int | None) -> None:
    z_a, z_b = views(2048, 128, seed=5)
    want = loss_and_grads(z_a.double(), z_b.double(), 0.1, reference=True)
    got = loss_and_grads(z_a.cuda(), z_b.cuda(), 0.1, chunk_rows=chunk_rows)
    torch.testing.assert_close(got[0].double().cpu(), want[0], rtol=1e-5, atol=1e-6)
    for g, w in zip(got[1:], want[1:]):
        torch.testing.assert_close(g.double().cpu(), w, rtol=0, atol=2e-5 * float(w.abs().max()))


@cuda
def test_cuda_chunked_loss_keeps_its_memory_to_the_chunk() -> None:
    """N = 8192 pairs: the (2N)^2 logits are 1 GiB; 1024-row chunks allocate about 1/16 of that per buffer."""
    z_a, z_b = (v.requires_grad_() for v in views(8192, 128, seed=6, device="cuda"))
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    baseline = torch.cuda.memory_allocated()
    nt_xent(z_a, z_b, 0.1, chunk_rows=1024).loss.backward()
    torch.cuda.synchronize()
    assert torch.cuda.max_memory_allocated() - baseline < 0.4 * 2**30
