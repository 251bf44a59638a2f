"""One training step: the online probe is a plain parameter group of the one optimizer and never reaches the encoder."""

import pytest
import torch
import torch.nn.functional as F

from simclr import distributed
from simclr.config import Config
from simclr.data import DataSplits
from simclr.optim import set_lr
from simclr.runs import resolve_config
from simclr.train.setup import build_train_state
from simclr.train.step import TrainState, probe_loss, train_step

LABELS = torch.tensor([0, 1, 2, -1, 0, 1, -1, 2])  # -1: unlabelled


def tiny_state(classes: int, weight_decay: float = 0.1) -> TrainState:
    """A quarter-width ResNet-18 on 16 px images with LARS; ``classes`` 0 means no probe."""
    config = Config()
    config.model.arch, config.model.width = "resnet18", 0.125
    config.optim.weight_decay, config.train.batch_size, config.data.workers = weight_decay, 8, 0
    data = DataSplits("tiny", None, None, None, classes, image_size=16)
    return build_train_state(resolve_config(config, 16), data, distributed.Process(0, 1, 0, 1, torch.device("cpu")), None)


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(8, 3, 16, 16, generator=generator), torch.rand(8, 3, 16, 16, generator=generator), LABELS


def test_the_probe_never_changes_the_encoder(one_thread):
    """The same steps with and without the probe leave bitwise the same network."""
    with_probe, without = tiny_state(3), tiny_state(0)
    assert without.probe is None and with_probe.probe is not None
    initial = {key: value.clone() for key, value in without.model.state_dict().items()}
    for state in (with_probe, without):
        for step in range(2):
            set_lr(state.optimizer, 0.5)
            train_step(state, batch(step))
    for key, value in without.model.state_dict().items():
        assert torch.equal(with_probe.model.state_dict()[key], value), key
    assert not torch.equal(initial["encoder.conv1.weight"], without.model.state_dict()["encoder.conv1.weight"])


def test_the_probe_loss_has_no_gradient_in_the_encoder():
    state = tiny_state(3)
    view_a, view_b, labels = batch()
    _, _, logits = state.network(torch.cat([view_a, view_b]))
    loss, _ = probe_loss(logits, labels.repeat(2))
    grads = torch.autograd.grad(loss, [*state.model.parameters(), *state.probe.parameters()], allow_unused=True)
    encoder, probe = grads[: len(list(state.model.parameters()))], grads[-2:]
    assert all(grad is None for grad in encoder)
    assert all(grad is not None and grad.abs().sum() > 0 for grad in probe)


def test_the_probe_group_is_plain_sgd_momentum_at_the_schedule_lr(one_thread):
    """No weight decay and no LARS trust ratio on the probe: buf = 0.9 buf + lr g; p -= buf."""
    state = tiny_state(3, weight_decay=0.1)
    group = state.optimizer.param_groups[-1]
    assert [id(p) for p in group["params"]] == [id(p) for p in state.probe.parameters()]
    assert group["weight_decay"] == 0.0 and group["adapt"] is False
    buffers = [torch.zeros_like(p) for p in state.probe.parameters()]
    for step, lr in enumerate((0.5, 0.2)):
        set_lr(state.optimizer, lr)  # the schedule sets every group, the probe's too
        before = [p.detach().clone() for p in state.probe.parameters()]
        train_step(state, batch(step))
        for p, old, buffer in zip(state.probe.parameters(), before, buffers):
            buffer.mul_(0.9).add_(lr * p.grad)
            torch.testing.assert_close(p.detach(), old - buffer, rtol=1e-6, atol=1e-7)


def test_probe_loss_is_the_mean_cross_entropy_over_labelled_rows():
    logits = torch.randn(8, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    loss, accuracy = probe_loss(logits, LABELS)
    known = LABELS >= 0
    torch.testing.assert_close(loss, F.cross_entropy(logits[known], LABELS[known]), rtol=1e-12, atol=0)
    assert accuracy.item() == pytest.approx((logits[known].argmax(1) == LABELS[known]).double().mean().item())
    none, accuracy = probe_loss(logits, torch.full((8,), -1))
    assert none.item() == 0.0 and accuracy.item() == 0.0
