"""NT-Xent, the normalized temperature-scaled cross-entropy loss of SimCLR.

Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual
Representations" (arXiv 2002.05709), Section 2.1 eq. (1) and Algorithm 1.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ContextManager

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from simclr.errors import SimCLRError

__all__ = ["ContrastiveOutput", "NTXentLoss", "nt_xent"]


@dataclass
class ContrastiveOutput:
    """Result of :func:`nt_xent`.

    Attributes:
        loss: 0-dim float32 tensor (float64 for float64 inputs), the mean loss
            over all 2N anchors; differentiable.
        accuracy: 0-dim float32 tensor, detached: fraction of the 2N anchors
            whose positive has the largest logit among the 2N - 1 candidates.
    """

    loss: Tensor
    accuracy: Tensor


def _check_temperature(temperature: float) -> None:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise SimCLRError(f"temperature must be a finite number > 0, got {temperature!r}")
    # `not (t > 0)` also rejects NaN.
    if not (temperature > 0) or not math.isfinite(temperature):
        raise SimCLRError(f"temperature must be a finite number > 0, got {temperature}")


def _check_pair(z_a: Tensor, z_b: Tensor) -> None:
    if not isinstance(z_a, Tensor) or not isinstance(z_b, Tensor):
        raise SimCLRError("z_a and z_b must be tensors of shape (N, d)")
    if z_a.shape != z_b.shape:
        raise SimCLRError(
            f"z_a and z_b must have the same shape (N, d), got {tuple(z_a.shape)} "
            f"and {tuple(z_b.shape)}"
        )
    if z_a.ndim != 2 or z_a.shape[1] < 1:
        raise SimCLRError(
            f"z_a and z_b must be 2-D (N, d) with d >= 1, got shape {tuple(z_a.shape)}"
        )
    if z_a.shape[0] < 2:
        raise SimCLRError(
            f"batch size N must be >= 2 for NT-Xent (needs negatives), got {z_a.shape[0]}"
        )


def _autocast_off(device_type: str) -> ContextManager[object]:
    # Some torch builds reject autocast for device types they do not support
    # (e.g. mps on older releases); there is then nothing to switch off.
    try:
        return torch.autocast(device_type=device_type, enabled=False)
    except RuntimeError:
        return contextlib.nullcontext()


def _upcast(z: Tensor) -> Tensor:
    """(N, d) in at least float32."""
    return z.to(torch.promote_types(z.dtype, torch.float32))


def _normalize(z: Tensor) -> Tensor:
    """Upcast to at least float32 and L2-normalise rows: (N, d) -> (N, d)."""
    return F.normalize(_upcast(z), dim=1)


def _nt_xent_from_parts(
    local_a: Tensor,
    local_b: Tensor,
    all_a: Tensor,
    all_b: Tensor,
    offset: int,
    temperature: float,
    chunk_rows: int | None = None,
) -> ContrastiveOutput:
    """NT-Xent of local anchors against a (possibly gathered) global candidate set.

    Inputs must already be at least float32 (and L2-normalised, unless the loss is the
    un-normalised one), and autocast must be off. Rows ``offset .. offset + n - 1`` of ``all_a``/``all_b`` are the
    local rows themselves (the same tensors, so gradients flow through them).

    Args:
        local_a, local_b: (n, d) local views; row i of each is one sample.
        all_a, all_b: (M, d) views of the whole batch, M >= n.
        offset: index in the global batch of local row 0.
        temperature: tau > 0.
        chunk_rows: compute the loss this many anchor rows at a time (None: all at once).

    Returns:
        Loss averaged over the 2n local anchors (eq. (1), Algorithm 1 of
        arXiv 2002.05709) and the detached top-1 positive-retrieval accuracy.
    """
    n, m = local_a.shape[0], all_a.shape[0]
    anchors = torch.cat([local_a, local_b])  # (2n, d)
    # Alone (no gather), the anchors are the candidates: one tensor, one gradient sum.
    same = local_a is all_a and local_b is all_b
    candidates = anchors if same else torch.cat([all_a, all_b])  # (2M, d)
    local = torch.arange(n, device=local_a.device)
    self_cols = torch.cat([offset + local, m + offset + local])
    pos_cols = torch.cat([m + offset + local, offset + local])
    rows = anchors.shape[0]
    chunk = rows if chunk_rows is None else min(chunk_rows, rows)
    loss_sum, correct = _NTXentRows.apply(anchors, candidates, self_cols, pos_cols, 1.0 / temperature, chunk)
    return ContrastiveOutput(loss=loss_sum / rows, accuracy=(correct / rows).float().detach())


def _masked_logits(anchors: Tensor, candidates: Tensor, self_cols: Tensor, inv_tau: float) -> Tensor:
    """(rows, 2M) logits a.c / tau, each anchor's own column set to -inf.

    1/tau scales the (rows, d) anchors, not the (rows, 2M) product: no pass over the big matrix.
    """
    logits = torch.mm(anchors * inv_tau, candidates.T)
    # -inf is exact in fp32 and every row keeps finite candidates (M >= 2).
    logits[torch.arange(anchors.shape[0], device=anchors.device), self_cols] = float("-inf")
    return logits


class _NTXentRows(torch.autograd.Function):
    """(summed NT-Xent over rows of anchors, count of anchors whose positive ranks first).

    Hand-written backward, so the only (rows, 2M) buffers are the logits and their log-softmax
    (autograd through logsumexp, indexing and masking makes several more full-size passes and
    buffers, and on the CPU each fresh buffer of tens of MB costs page faults): the gradient of
    the summed loss w.r.t. the logits is softmax - one-hot(positive), computed in place in the
    kept log-softmax, and two matrix products give the anchors' and the candidates' gradients.
    With ``chunk`` < rows the rows go ``chunk`` at a time and only each row's log-sum-exp is
    kept; backward rebuilds each block of logits (memory bounded by ``chunk`` x 2M; one extra
    matrix product).
    """

    @staticmethod
    def forward(ctx: Any, anchors: Tensor, candidates: Tensor, self_cols: Tensor, pos_cols: Tensor,
                inv_tau: float, chunk: int) -> tuple[Tensor, Tensor]:
        rows = anchors.shape[0]
        loss_sum, correct = anchors.new_zeros(()), torch.zeros((), dtype=torch.long, device=anchors.device)
        log_sum_exp = anchors.new_empty(rows)  # per row; lets backward rebuild softmax from the logits
        whole = None
        for start in range(0, rows, chunk):
            part = slice(start, start + chunk)
            logits = _masked_logits(anchors[part], candidates, self_cols[part], inv_tau)
            positions = pos_cols[part].unsqueeze(1)
            correct += (logits.argmax(dim=1, keepdim=True) == positions).sum()
            log_p = torch.log_softmax(logits, dim=1)
            log_p_pos = log_p.gather(1, positions)
            loss_sum -= log_p_pos.sum()
            # log-sum-exp = logit - log-probability at any column; the positive's is finite.
            torch.sub(logits.gather(1, positions), log_p_pos, out=log_sum_exp[part].unsqueeze(1))
            whole = log_p if chunk >= rows else None
            del logits, log_p
        ctx.mark_non_differentiable(correct)
        ctx.save_for_backward(anchors, candidates, self_cols, pos_cols, log_sum_exp)
        # Kept off save_for_backward: backward turns it into the softmax in place, once.
        ctx.whole_log_p, ctx.inv_tau, ctx.chunk = whole, inv_tau, chunk
        return loss_sum, correct

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_loss: Tensor, _grad_correct: Tensor | None) -> tuple[Tensor | None, ...]:
        anchors, candidates, self_cols, pos_cols, log_sum_exp = ctx.saved_tensors
        rows, chunk, inv_tau = anchors.shape[0], ctx.chunk, ctx.inv_tau
        whole, ctx.whole_log_p = ctx.whole_log_p, None
        scale = grad_loss * inv_tau  # d(logits)/d(a.c) = 1/tau
        grad_anchors = torch.empty_like(anchors)
        grad_candidates = torch.zeros_like(candidates)
        for start in range(0, rows, chunk):
            part = slice(start, start + chunk)
            if chunk >= rows:  # a second backward (retain_graph) redoes forward's log-softmax, bit for bit
                log_p = whole if whole is not None else torch.log_softmax(
                    _masked_logits(anchors, candidates, self_cols, inv_tau), dim=1)
                probs = log_p.exp_()
            else:
                probs = _masked_logits(anchors[part], candidates, self_cols[part], inv_tau)
                probs.sub_(log_sum_exp[part].unsqueeze(1)).exp_()
            # d(summed loss)/d(logits) = softmax - one-hot(positive); -inf columns give exactly 0.
            probs.scatter_add_(1, pos_cols[part].unsqueeze(1), probs.new_full((probs.shape[0], 1), -1.0))
            torch.mm(probs, candidates, out=grad_anchors[part])
            grad_candidates.addmm_(probs.T, anchors[part])
            del probs
        return grad_anchors.mul_(scale), grad_candidates.mul_(scale), None, None, None, None


# Maps this process's (n, k) rows to the global (M, k) batch and the index of local row 0;
# ``simclr.distributed.gather_with_grad`` is the one that lets gradients flow back.
Gather = Callable[[Tensor], tuple[Tensor, int]]


def nt_xent(
    z_a: Tensor, z_b: Tensor, temperature: float = 0.5, gather: Gather | None = None, chunk_rows: int | None = None,
    normalize: bool = True,
) -> ContrastiveOutput:
    """SimCLR's NT-Xent loss over a batch of positive pairs.

    Row i of ``z_a`` and row i of ``z_b`` are projections of two augmented views
    of sample i; every other row of either tensor is a negative. The loss is the
    cross-entropy of identifying the positive among the 2N - 1 other embeddings
    with cosine-similarity logits / tau, averaged over all 2N anchors
    (arXiv 2002.05709, eq. (1) and Algorithm 1).

    Computation is done in float32 (float64 kept as is) with autocast disabled,
    so bf16/fp16 inputs under mixed precision stay numerically stable.

    Args:
        z_a: (N, d) projections of the first views, N >= 2.
        z_b: (N, d) projections of the second views.
        temperature: tau > 0; the paper's default for large batches is 0.1,
            this package's default 0.5.
        gather: with several processes, contrast the local anchors with the
            views of every process's batch (2(N_global - 1) negatives each);
            the loss is then the mean over the local anchors.
        chunk_rows: bound memory at large batch: the (2N, 2N) logits are built this
            many anchor rows at a time and rebuilt in backward (same value; slower).
        normalize: False drops the L2 normalisation: logits are dot products of the
            raw z over tau (the paper's Table 5 ablation).

    Returns:
        :class:`ContrastiveOutput` with 0-dim ``loss`` and detached ``accuracy``.

    Raises:
        SimCLRError: on a bad temperature, mismatched or non-2-D shapes, or N < 2.
    """
    _check_temperature(temperature)
    _check_pair(z_a, z_b)
    if chunk_rows is not None and (isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1):
        raise SimCLRError(f"chunk_rows must be an integer >= 1 or None, got {chunk_rows!r}")
    with _autocast_off(z_a.device.type):
        a = _normalize(z_a) if normalize else _upcast(z_a)
        b = _normalize(z_b) if normalize else _upcast(z_b)
        if gather is None:
            return _nt_xent_from_parts(a, b, a, b, 0, temperature, chunk_rows)
        # One collective for both views: (n, 2, d) rows -> (M, 2, d).
        everything, offset = gather(torch.stack([a, b], dim=1))
        return _nt_xent_from_parts(a, b, everything[:, 0], everything[:, 1], offset, temperature, chunk_rows)


class NTXentLoss(nn.Module):
    """Module wrapper of :func:`nt_xent` (arXiv 2002.05709, eq. (1)).

    ``forward(z_a, z_b)`` takes two (N, d) tensors and returns the 0-dim loss;
    the detached accuracy of the latest call is kept in ``last_accuracy``.
    """

    last_accuracy: Tensor | None

    def __init__(self, temperature: float = 0.5, chunk_rows: int | None = None, normalize: bool = True) -> None:
        super().__init__()
        _check_temperature(temperature)
        self.temperature = float(temperature)
        self.chunk_rows = chunk_rows
        self.normalize = bool(normalize)
        self.last_accuracy = None

    def forward(self, z_a: Tensor, z_b: Tensor) -> Tensor:
        """Return the NT-Xent loss of (N, d) views ``z_a``, ``z_b`` as a 0-dim tensor."""
        out = nt_xent(z_a, z_b, self.temperature, chunk_rows=self.chunk_rows, normalize=self.normalize)
        self.last_accuracy = out.accuracy
        return out.loss

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}" + ("" if self.normalize else ", normalize=False")
