"""NT-Xent, the normalized temperature-scaled cross-entropy loss of SimCLR.

Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual
Representations" (arXiv 2002.05709), Section 2.1 eq. (1) and Algorithm 1.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ContextManager

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

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


def _normalize(z: Tensor) -> Tensor:
    """Upcast to at least float32 and L2-normalise rows: (N, d) -> (N, d)."""
    dtype = torch.promote_types(z.dtype, torch.float32)
    return F.normalize(z.to(dtype), dim=1)


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

    Inputs must already be L2-normalised and at least float32, and autocast must
    be off. Rows ``offset .. offset + n - 1`` of ``all_a``/``all_b`` are the
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
    candidates = torch.cat([all_a, all_b])  # (2M, d)
    local = torch.arange(n, device=local_a.device)
    self_cols = torch.cat([offset + local, m + offset + local])
    pos_cols = torch.cat([m + offset + local, offset + local])
    rows = anchors.shape[0]
    if chunk_rows is None or chunk_rows >= rows:
        loss_sum, correct = _anchor_rows_loss(anchors, candidates, self_cols, pos_cols, temperature)
    else:
        # Rows of anchors in turn, each recomputed in backward: only a (chunk, 2M) block is alive.
        loss_sum, correct = anchors.new_zeros(()), anchors.new_zeros(())
        for start in range(0, rows, chunk_rows):
            part = slice(start, start + chunk_rows)
            chunk_loss, chunk_correct = checkpoint(
                _anchor_rows_loss, anchors[part], candidates, self_cols[part], pos_cols[part], temperature, use_reentrant=False
            )
            loss_sum, correct = loss_sum + chunk_loss, correct + chunk_correct
    return ContrastiveOutput(loss=loss_sum / rows, accuracy=(correct / rows).float().detach())


def _anchor_rows_loss(
    anchors: Tensor, candidates: Tensor, self_cols: Tensor, pos_cols: Tensor, temperature: float
) -> tuple[Tensor, Tensor]:
    """(summed loss, number of anchors whose positive ranks first) for rows of anchors.

    One (rows, 2M) logits matrix, scaled and masked in place (mm's backward needs only its
    inputs), is the only large tensor autograd keeps: the loss is logsumexp minus the
    positive logit, which saves no softmax matrix of its own.
    """
    logits = anchors @ candidates.T
    logits.div_(temperature)
    rows = torch.arange(anchors.shape[0], device=anchors.device)
    # -inf is exact in fp32 and every row keeps finite candidates (M >= 2).
    logits[rows, self_cols] = float("-inf")
    positive = logits[rows, pos_cols]
    loss_sum = (torch.logsumexp(logits, dim=1) - positive).sum()
    with torch.no_grad():
        correct = (logits.argmax(dim=1) == pos_cols).sum()
    return loss_sum, correct


# Maps this process's (n, k) rows to the global (M, k) batch and the index of local row 0;
# ``simclr.distributed.gather_with_grad`` is the one that lets gradients flow back.
Gather = Callable[[Tensor], tuple[Tensor, int]]


def nt_xent(
    z_a: Tensor, z_b: Tensor, temperature: float = 0.5, gather: Gather | None = None, chunk_rows: int | None = None
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
        a = _normalize(z_a)
        b = _normalize(z_b)
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

    def __init__(self, temperature: float = 0.5, chunk_rows: int | None = None) -> None:
        super().__init__()
        _check_temperature(temperature)
        self.temperature = float(temperature)
        self.chunk_rows = chunk_rows
        self.last_accuracy = None

    def forward(self, z_a: Tensor, z_b: Tensor) -> Tensor:
        """Return the NT-Xent loss of (N, d) views ``z_a``, ``z_b`` as a 0-dim tensor."""
        out = nt_xent(z_a, z_b, self.temperature, chunk_rows=self.chunk_rows)
        self.last_accuracy = out.accuracy
        return out.loss

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"
