"""Checkpoints: atomic writes, safe loading, fallback past a damaged newest file."""

import os

import pytest
import torch

from simclr.errors import SimCLRError
from simclr.train import checkpoint as ckpt


def _state(step: int) -> dict:
    return {"step": step, "model": {"w": torch.full((3,), float(step))}, "rng": ckpt.rng_state(), "config": {"a": [1, 2]}}


def test_save_keeps_last_k_and_leaves_no_temp_files(tmp_path):
    for step in (10, 20, 30, 40):
        ckpt.save_checkpoint(_state(step), tmp_path, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000030.pt", "step-00000040.pt"]
    state, path = ckpt.load_latest(tmp_path)
    assert state["step"] == 40 and torch.equal(state["model"]["w"], torch.full((3,), 40.0))


def test_truncated_newest_checkpoint_falls_back_to_previous(tmp_path, caplog):
    ckpt.save_checkpoint(_state(1), tmp_path, keep=3)
    newest = ckpt.save_checkpoint(_state(2), tmp_path, keep=3)
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    state, path = ckpt.load_latest(tmp_path)
    assert "skipping damaged checkpoint (kept as step-00000002.pt.damaged)" in caplog.text
    assert state["step"] == 1 and path.name == "step-00000001.pt"
    # The damaged file is set aside, so saving step 3 with keep=1 keeps step 3, not the damaged one.
    assert (tmp_path / "step-00000002.pt.damaged").exists()
    ckpt.save_checkpoint(_state(3), tmp_path, keep=1)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["step-00000003.pt"]


def test_all_damaged_is_an_error(tmp_path):
    (tmp_path / "step-00000001.pt").write_bytes(b"")
    with pytest.raises(SimCLRError, match="every checkpoint"):
        ckpt.load_latest(tmp_path)


class _RunsCode:
    """Unpickling this calls os.system: the classic malicious checkpoint."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_runs_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "step-00000005.pt"
    torch.save({"format": ckpt.FORMAT, "step": 5, "payload": _RunsCode(marker)}, path)
    with pytest.raises(SimCLRError, match="could run code"):
        ckpt.load_file(path)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the control: loaded unsafely, the payload does run
    assert marker.exists()


def test_foreign_torch_file_is_not_a_simclr_checkpoint(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, path)
    with pytest.raises(SimCLRError, match="not a simclr checkpoint"):
        ckpt.load_file(path)


def test_rng_state_round_trip_through_weights_only_load(tmp_path):
    import random

    import numpy as np

    state = ckpt.rng_state()
    ckpt.atomic_save(state, tmp_path / "rng.pt")
    expected = (torch.rand(3), np.random.rand(3), random.random())
    ckpt.restore_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1]) and expected[2] == again[2]


def test_a_temp_file_left_by_a_killed_write_is_cleared_by_the_next_save(tmp_path):
    ckpt.save_checkpoint(_state(1), tmp_path, keep=3)
    stale = tmp_path / ".step-00000002.pt.tmp-99999"
    stale.write_bytes(b"half a checkpoint")
    ckpt.save_checkpoint(_state(2), tmp_path, keep=3)
    assert not stale.exists()
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["step-00000001.pt", "step-00000002.pt"]
