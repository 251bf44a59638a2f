"""``MetricsLogger``: TensorBoard always, Weights & Biases only when asked, and never a hard dependency."""

import sys
import types

import pytest

from simclr.cli.main import build_parser
from simclr.cli.options import config_from_args
from simclr.errors import SimCLRError
from simclr.train.metrics import MetricsLogger, read_metrics


class FakeRun:
    def __init__(self, **init) -> None:
        self.init, self.id, self.logged, self.finished = init, init.get("id") or "run-1", [], False

    def log(self, values: dict, step: int) -> None:
        self.logged.append((step, dict(values)))

    def finish(self) -> None:
        self.finished = True


@pytest.fixture
def fake_wandb(monkeypatch) -> list[FakeRun]:
    runs: list[FakeRun] = []

    def init(**kwargs) -> FakeRun:
        runs.append(FakeRun(**kwargs))
        return runs[-1]

    monkeypatch.setitem(sys.modules, "wandb", types.SimpleNamespace(init=init))
    return runs


def test_wandb_project_without_the_package_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb raises ImportError
    with pytest.raises(SimCLRError) as error:
        MetricsLogger(tmp_path, wandb_project="my-project")
    message = str(error.value)
    assert "\n" not in message and "wandb" in message and "my-project" in message and "pip install wandb" in message


def test_without_a_project_wandb_is_never_imported(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)
    logger = MetricsLogger(tmp_path)
    logger.log({"step": 1, "loss": 2.0})
    logger.close()
    assert read_metrics(tmp_path / "metrics.jsonl") == [{"step": 1, "loss": 2.0}]
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_scalars_are_mirrored_to_wandb_and_the_run_resumes(tmp_path, fake_wandb):
    logger = MetricsLogger(tmp_path, wandb_project="proj", wandb_config={"train": {"seed": 3}})
    logger.log({"step": 1, "epoch": 0, "lr": 0.1, "loss": 2.5, "contrastive_acc": 0.25})
    logger.flush()
    logger.log({"step": 1, "epoch": 0, "knn_top1": 0.5, "note": "text", "flag": True})
    logger.close()
    run = fake_wandb[0]
    assert run.init["project"] == "proj" and run.init["config"] == {"train": {"seed": 3}} and run.init["name"] == tmp_path.name
    assert run.logged == [(1, {"epoch": 0, "lr": 0.1, "loss": 2.5, "contrastive_acc": 0.25}), (1, {"epoch": 0, "knn_top1": 0.5})]
    assert run.finished and (tmp_path / "wandb_run_id").read_text() == "run-1"
    # The same W&B run continues after a resume; a fresh run starts a new one.
    MetricsLogger(tmp_path, resume_step=1, wandb_project="proj").close()
    assert fake_wandb[1].init["id"] == "run-1" and fake_wandb[1].init["resume"] == "allow"
    MetricsLogger(tmp_path, wandb_project="proj").close()
    assert fake_wandb[2].init["id"] is None


def test_wandb_option_sets_the_config_key():
    args = build_parser().parse_args(["pretrain", "--wandb", "my-project"])
    assert config_from_args(args).train.wandb_project == "my-project"
    assert config_from_args(build_parser().parse_args(["pretrain"])).train.wandb_project is None
