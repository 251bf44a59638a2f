"""Checkpoints: atomic writes, safe loading, fallback past a damaged newest file."""

import os

import pytest
import torch
from torch import nn

from simclr import checkpoint as ckpt
from simclr import load_encoder
from simclr.cli.main import main
from simclr.errors import SimCLRError

from conftest import TINY_ARGS


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


def test_a_checkpoint_carries_its_format_version(tmp_path):
    path = ckpt.save_checkpoint(_state(1), tmp_path, keep=1)
    raw = torch.load(path, weights_only=True)
    assert (raw["format"], raw["version"]) == ("simclr-checkpoint", ckpt.VERSION) == ("simclr-checkpoint", 2)
    assert ckpt.load_file(path)["version"] == 2


@pytest.mark.parametrize("version", [0, 3])  # too old to convert, newer than this code
def test_an_unreadable_version_is_one_clear_error_and_never_set_aside(tmp_path, version):
    path = ckpt.checkpoint_path(tmp_path, 1)
    ckpt.atomic_save({"format": ckpt.FORMAT, "version": version, **_state(1)}, path)
    with pytest.raises(SimCLRError) as error:
        ckpt.load_file(path)
    message = str(error.value)
    assert f"checkpoint '{path}' has format version {version}; this simclr reads versions 1, 2" in message and "\n" not in message
    with pytest.raises(SimCLRError, match=f"format version {version}"):
        ckpt.load_latest(tmp_path)
    assert path.exists()  # not renamed *.damaged: the file is fine, this code is too old for it


def as_version_1(state: dict) -> dict:
    """A current checkpoint in the layout of version 1: marker ``-v1``, the probe's Adam state apart."""
    old = {key: value for key, value in state.items() if key != "version"}
    groups = state["optimizer"]["param_groups"]
    probe = set(groups[-1]["params"])
    old["format"] = "simclr-checkpoint-v1"
    old["optimizer"] = {"state": {i: s for i, s in state["optimizer"]["state"].items() if i not in probe},
                        "param_groups": [{k: v for k, v in g.items() if k != "adapt"} for g in groups[:-1]]}
    out_features, in_features = state["probe"]["weight"].shape
    old["probe_optimizer"] = torch.optim.Adam(nn.Linear(in_features, out_features).parameters(), lr=1e-3).state_dict()
    old["config"] = {**state["config"], "train": {**state["config"]["train"], "probe_lr": 1e-3}}
    return old


def test_a_version_1_run_still_evaluates_and_exports_but_does_not_resume(tiny_folder, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["pretrain", "--data", str(tiny_folder), "--output", str(run), *TINY_ARGS, "--max-steps", "2"]) == 0
    path = run / "checkpoints" / "step-00000002.pt"
    current = torch.load(path, weights_only=True)
    torch.save(as_version_1(current), path)
    (run / "config.yaml").write_text((run / "config.yaml").read_text().replace("train:\n", "train:\n  probe_lr: 0.001\n"))
    state = ckpt.load_file(path)
    assert state["version"] == 1 and "probe_lr" not in state["config"]["train"]
    capsys.readouterr()

    assert main(["knn", str(run), "--k", "5"]) == 0
    assert "step 2" in capsys.readouterr().out
    encoder = load_encoder(run)
    for key, value in encoder.encoder.state_dict().items():
        assert torch.equal(value, current["model"][f"encoder.{key}"]), key
    assert main(["pretrain", "--output", str(run), "--resume"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"cannot resume from checkpoint '{path}': its format version 1" in errors[0], errors
    assert "evaluate or export it" in errors[0]

