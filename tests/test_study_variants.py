"""``simclr study``'s plan: each study expands to the right variant names and config deltas, and bad
command lines fail on one line before any work."""

from __future__ import annotations

from pathlib import Path

import pytest

from simclr.cli.main import main
from simclr.errors import SimCLRError
from simclr.study import STUDIES, expand, expand_all, parse_studies
from simclr.study.runner import DEFAULT_EPOCHS, Study, base_config
from simclr.study.variants import composition_delta

OFF = {"augment.crop": False, "augment.color_p": 0.0, "augment.gray_p": 0.0, "augment.blur_p": 0.0, "augment.flip_p": 0.0,
       "augment.solarize_p": 0.0}


def _table(study: str, **kwargs: int) -> dict[str, tuple[dict, str, str]]:
    return {v.name: (v.delta, v.kind, v.features) for v in expand(study, **kwargs)}


def test_head_study_trains_three_heads_and_probes_h() -> None:
    assert _table("head") == {name: ({"model.head": name}, "simclr", "h") for name in ("mlp", "linear", "none")}


@pytest.mark.parametrize(("proj_layers", "names"), [(2, ["h", "head1", "z"]), (3, ["h", "head1", "head2", "z"]), (1, ["h", "z"])])
def test_layer_study_probes_one_mlp_run_on_every_layer(proj_layers: int, names: list[str]) -> None:
    table = _table("layer", proj_layers=proj_layers)
    assert list(table) == names
    assert all(delta == {"model.head": "mlp"} and kind == "simclr" and features == name for name, (delta, kind, features) in table.items())


def test_composition_study_is_every_op_alone_and_every_pair() -> None:
    table = _table("composition")
    ops = ["crop", "color", "gray", "blur", "flip", "solarize"]
    assert list(table)[:6] == ops and len(table) == 6 + 15
    assert table["crop"][0] == {**OFF, "augment.crop": True}
    assert table["color"][0] == {**OFF, "augment.color_p": 0.8}
    assert table["crop+color"][0] == {**OFF, "augment.crop": True, "augment.color_p": 0.8}
    assert table["blur+solarize"][0] == {**OFF, "augment.blur_p": 0.5, "augment.solarize_p": 0.2}
    assert table["gray+flip"][0] == {**OFF, "augment.gray_p": 0.2, "augment.flip_p": 0.5}
    assert composition_delta(()) == OFF


def test_color_strength_study_pairs_simclr_with_the_supervised_baseline_on_its_views() -> None:
    variants = expand("color-strength")
    assert [v.name for v in variants] == ["simclr-s0.25", "simclr-s0.5", "simclr-s1", "supervised-s0.25", "supervised-s0.5", "supervised-s1"]
    assert [v.delta for v in variants[:3]] == [{"augment.color_strength": s} for s in (0.25, 0.5, 1.0)]
    assert [(v.kind, v.views) for v in variants[3:]] == [("supervised", "simclr")] * 3


def test_temperature_study_crosses_tau_with_normalisation() -> None:
    table = _table("temperature")
    assert list(table) == ["tau0.1", "tau0.5", "tau1", "tau0.1-raw", "tau0.5-raw", "tau1-raw"]
    assert table["tau0.5"][0] == {"train.temperature": 0.5, "train.loss_normalize": True}
    assert table["tau1-raw"][0] == {"train.temperature": 1.0, "train.loss_normalize": False}


@pytest.mark.parametrize(("epochs", "lengths"), [(15, (5, 15)), (30, (10, 30)), (2, (1, 2)), (1, (1,))])
def test_batch_epochs_study_sets_its_own_schedule(epochs: int, lengths: tuple[int, ...]) -> None:
    table = _table("batch-epochs", epochs=epochs)
    assert list(table) == [f"b{b}-e{e}" for b in (64, 256) for e in lengths]
    assert table[f"b64-e{lengths[0]}"][0] == {"train.batch_size": 64, "train.epochs": lengths[0], "train.time_budget": None}


def test_width_study_compares_simclr_with_crop_flip_supervised_training() -> None:
    variants = expand("width")
    assert [v.name for v in variants] == [f"{k}-x{w}" for k in ("simclr", "supervised") for w in ("0.125", "0.25", "0.5")]
    assert variants[4].delta == {"model.width": 0.25} and variants[4].views == "crop-flip"


def test_expand_all_keeps_the_order_and_every_name_is_unique_within_a_study() -> None:
    variants = expand_all(STUDIES)
    assert [v.study for v in variants] == sorted((v.study for v in variants), key=STUDIES.index)
    for study in STUDIES:
        names = [v.name for v in variants if v.study == study]
        assert len(names) == len(set(names)) > 0


def test_variant_configs_apply_the_delta_over_the_base(tmp_path: Path) -> None:
    base = base_config("mnist5k", sets=["model.proj_layers=3", "train.batch_size=128"])
    study = Study(tmp_path, base, expand("temperature") + expand("batch-epochs", epochs=9), (0, 1))
    raw = study.config(study.variants[3], 1)
    assert (raw.train.temperature, raw.train.loss_normalize, raw.train.seed, raw.model.proj_layers) == (0.1, False, 1, 3)
    assert raw.train.output == str(tmp_path / "temperature" / "tau0.1-raw" / "seed-1")
    short = study.config(study.variants[6], 0)
    assert (short.train.batch_size, short.train.epochs, short.train.time_budget) == (64, 3, None)
    assert base.train.knn_every == 0 and base.train.epochs == DEFAULT_EPOCHS == base.eval.finetune_epochs


def test_the_budget_is_epochs_or_a_time_budget() -> None:
    assert base_config("mnist5k", epochs=4).train.epochs == 4
    timed = base_config("mnist5k", time_budget="90s")
    assert (timed.train.epochs, timed.train.time_budget) == (None, "90s")
    with pytest.raises(SimCLRError, match="not both"):
        base_config("mnist5k", epochs=3, time_budget="1m")
    with pytest.raises(SimCLRError, match="time_budget must be a duration"):
        base_config("mnist5k", time_budget="soon")
    with pytest.raises(SimCLRError, match="train.epochs must be >= 1, got 0"):
        base_config("mnist5k", epochs=0)


@pytest.mark.parametrize(("text", "message"), [
    ("head,colour", "unknown study 'colour'; choose from head, layer, composition, color-strength, temperature, batch-epochs, width"),
    (",", "--studies must name at least one of head, layer"),
    ("head,head", "--studies names a study twice: 'head,head'"),
])  # fmt: skip
def test_bad_study_lists_are_one_line(text: str, message: str) -> None:
    with pytest.raises(SimCLRError) as error:
        parse_studies(text)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


@pytest.mark.parametrize(("args", "message"), [
    (["--studies", "head,heads"], "error: unknown study 'heads'; choose from head, layer, composition, color-strength, temperature, batch-epochs, width"),
    (["--studies", "head", "--seeds", "0"], "error: --seeds must be >= 1 and --seed >= 0, got 0 and 0"),
    (["--studies", "head", "--set", "train.temperature=0"], "error: train.temperature must be > 0, got 0.0"),
    (["--studies", "head", "--epochs", "2", "--time-budget", "1m"], "error: argument --time-budget: not allowed with argument --epochs"),
])  # fmt: skip
def test_the_cli_fails_on_one_line_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    try:
        status = main(["study", "--data", "mnist5k", "--output", str(tmp_path / "study"), *args])
    except SystemExit as stop:  # argparse's own errors
        status = stop.code
    err = capsys.readouterr().err.strip()
    assert status == 2 and err.startswith(message) and "\n" not in err
    assert not (tmp_path / "study").exists()
