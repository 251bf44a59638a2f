"""``simclr study`` end to end on a tiny folder: the --json schema, shared runs, a killed study that
resumes without rerunning finished variants, supervised baselines, diverged runs, ``simclr report``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import make_image_folder

import simclr.checkpoint
from simclr.cli.main import main
from simclr.errors import SimCLRError
from simclr.study import runner
from simclr.study.variants import Variant

TINY = ["--epochs", "1", "--set", "model.arch=resnet18", "--set", "model.width=0.125", "--set", "train.batch_size=8",
        "--set", "data.workers=0", "--set", "eval.linear_epochs=2", "--set", "train.log_every=1", "--set", "train.checkpoint_every=1"]
FINDING_KEYS = {"finding", "study", "paper", "holds", "margin", "spread", "seeds"}


def _study(images: Path, output: Path, studies: str, *extra: str) -> list[str]:
    return ["study", "--data", str(images), "--output", str(output), "--studies", studies, *TINY, *extra]


def _last_json(capsys: pytest.CaptureFixture[str]) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("study") / "images")


@pytest.fixture(scope="module")
def head_layer(images: Path) -> tuple[Path, dict]:
    """One head,layer study (three pretraining runs of 2 steps), its --json answer parsed."""
    import contextlib
    import io

    output = images.parent / "head-layer"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(_study(images, output, "head,layer", "--json")) == 0
    return output, json.loads(out.getvalue().strip().splitlines()[-1])


def test_json_schema_of_a_head_layer_study(head_layer: tuple[Path, dict]) -> None:
    output, answer = head_layer
    assert set(answer) == {"studies", "findings", "output"} and list(answer["studies"]) == ["head", "layer"]
    assert list(answer["studies"]["head"]) == ["mlp", "linear", "none"] and list(answer["studies"]["layer"]) == ["h", "head1", "z"]
    for variants in answer["studies"].values():
        for row in variants.values():
            assert 0 <= row["top1"] <= 1 and 0 <= row["knn_top1"] <= 1 and 0 <= row["contrastive_acc"] <= 1
            assert row["seconds"] >= 0 and row["error"] is None and isinstance(row["delta"], dict)
    assert [f["study"] for f in answer["findings"]] == ["head", "head", "layer"]
    for finding in answer["findings"]:
        assert set(finding) == FINDING_KEYS and isinstance(finding["holds"], bool) and isinstance(finding["margin"], float)
        assert finding["spread"] is None and finding["seeds"] == 1
    assert json.loads((output / "study.json").read_text())["findings"] == answer["findings"]
    for name in ("study.md", "plots/head.png", "plots/layer.png"):
        assert (output / name).is_file()


def test_the_layer_study_probes_the_head_studys_mlp_run(head_layer: tuple[Path, dict]) -> None:
    output, answer = head_layer
    results = {name: json.loads((output / "layer" / name / "result.json").read_text()) for name in ("h", "head1", "z")}
    assert {r["run"] for r in results.values()} == {"head/mlp"} and not (output / "layer" / "h" / "checkpoints").exists()
    assert answer["studies"]["layer"]["h"]["top1"] == answer["studies"]["head"]["mlp"]["top1"]
    assert results["z"]["contrastive_acc"] == answer["studies"]["head"]["mlp"]["contrastive_acc"]
    assert sorted(path.name for path in (output / "head" / "mlp").glob("probe-*.json")) == ["probe-h.json", "probe-head1.json", "probe-z.json"]


def test_a_finished_study_reruns_nothing(head_layer: tuple[Path, dict], images: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    output, answer = head_layer

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a finished variant ran again")

    monkeypatch.setattr(runner, "pretrain", refuse)
    monkeypatch.setattr(runner, "evaluate_run", refuse)
    assert main(_study(images, output, "layer,head", "--json")) == 0
    again = _last_json(capsys)
    assert again["studies"]["head"] == answer["studies"]["head"] and again["findings"] == answer["findings"]


def test_simclr_report_shows_a_studys_tables_and_figures(head_layer: tuple[Path, dict], capsys: pytest.CaptureFixture[str]) -> None:
    output, _ = head_layer
    assert main(["report", str(output), "--json"]) == 0
    answer = _last_json(capsys)
    page = (output / "report.html").read_text()
    assert answer["report"] == str(output / "report.html") and "non-linear projection head" in page and page.count("<img") == 2
    assert sorted(Path(f).name for f in answer["figures"]) == ["head.png", "layer.png"]


class Killed(Exception):
    """Stands for SIGKILL: raised right after a checkpoint is written."""


def test_a_killed_study_resumes_without_rerunning_finished_variants(images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    output, calls = tmp_path / "study", []
    real_pretrain, real_save = runner.pretrain, simclr.checkpoint.save_checkpoint

    def pretrain(config, resume=False):  # type: ignore[no-untyped-def]
        calls.append((Path(config.train.output).name, resume))
        return real_pretrain(config, resume)

    def save_then_die(*args, **kwargs):  # type: ignore[no-untyped-def]
        path = real_save(*args, **kwargs)
        if "linear" in str(args[1]):
            raise Killed
        return path

    monkeypatch.setattr(runner, "pretrain", pretrain)
    monkeypatch.setattr(simclr.checkpoint, "save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        main(_study(images, output, "head"))
    assert calls == [("mlp", False), ("linear", False)]
    assert not (output / "head" / "linear" / "result.json").exists()
    finished = (output / "head" / "mlp" / "result.json").stat().st_mtime_ns

    monkeypatch.setattr(simclr.checkpoint, "save_checkpoint", real_save)
    calls.clear()
    assert main(_study(images, output, "head")) == 0
    assert calls == [("linear", True), ("none", False)]  # mlp was not run again; linear went on from its checkpoint
    assert (output / "head" / "mlp" / "result.json").stat().st_mtime_ns == finished
    steps = [json.loads(line)["step"] for line in (output / "head" / "linear" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2]
    assert json.loads((output / "head" / "linear" / "result.json").read_text())["steps"] == 2


def test_a_study_folder_refuses_another_base_config(images: Path, tmp_path: Path) -> None:
    runner.plan_study(tmp_path, runner.base_config(str(images), epochs=1, sets=["train.batch_size=8"]), ("head",))
    runner.plan_study(tmp_path, runner.base_config(str(images), epochs=1, sets=["train.batch_size=8", "train.device=cpu"]), ("head",))
    with pytest.raises(SimCLRError, match=r"holds a study of another base config \(train.epochs: 1 before vs 2 now; eval.finetune_epochs"):
        runner.plan_study(tmp_path, runner.base_config(str(images), epochs=2, sets=["train.batch_size=8"]), ("head",))


def test_a_supervised_baseline_trains_on_the_variants_simclr_views(images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    real = runner.supervised_row
    monkeypatch.setattr(runner, "supervised_row", lambda *args: seen.append(args[-1]) or real(*args))
    base = runner.base_config(str(images), epochs=1, sets=[item for item in TINY[2:] if item != "--set"] + ["eval.finetune_batch_size=8"])
    study = runner.Study(tmp_path, base, [Variant("color-strength", "supervised-s0.5", {"augment.color_strength": 0.5}, "supervised")], (0,))
    result = runner.run_unit(study, study.variants[0], 0)
    assert seen[0].color_strength == 0.5 and seen[0].color_p == 0.8
    assert result["kind"] == "supervised" and 0 <= result["top1"] <= 1 and result["steps"] == 2 and result["run"] is None
    assert json.loads((tmp_path / "color-strength" / "supervised-s0.5" / "result.json").read_text()) == result


def test_a_diverged_run_is_a_result_and_other_errors_stop_the_study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def diverge(config, resume=False):  # type: ignore[no-untyped-def]
        raise SimCLRError("loss became nan at step 3: the learning rate may be too high (peak 4)")

    monkeypatch.setattr(runner, "pretrain", diverge)
    study = runner.Study(tmp_path, runner.base_config("mnist5k"), [Variant("temperature", "tau0.1-raw", {"train.loss_normalize": False})], (0,))
    result = runner.run_unit(study, study.variants[0], 0)
    assert result["error"] == "loss became nan at step 3" and result["top1"] is None
    monkeypatch.setattr(runner, "pretrain", lambda *a, **k: (_ for _ in ()).throw(SimCLRError("train.batch_size 256 is larger than the dataset")))
    with pytest.raises(SimCLRError, match="larger than the dataset"):
        runner.run_unit(study, Variant("head", "mlp", {"model.head": "mlp"}), 0)
