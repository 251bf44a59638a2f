"""Config resolution order, presets, coercion and the up-front validation messages."""

import pytest
import yaml

from simclr.config import RENAMED, Config, available_presets, config_from_dict, load_preset, set_value
from simclr.errors import SimCLRError
from simclr.runs import load_run_config
from simclr.validation import validate


def test_every_preset_loads_and_validates():
    assert {"demo", "cifar10-resnet18", "stl10-resnet18", "imagenet-resnet50"} <= set(available_presets())
    for name in available_presets():
        config = Config()
        load_preset(config, name)
        validate(config)


def test_stl10_preset_is_seed_002():
    config = Config()
    load_preset(config, "stl10-resnet18")
    assert (config.data.image_size, config.model.arch, config.model.hidden_dim, config.model.out_dim) == (96, "resnet18", 512, 64)


def test_imagenet_preset_is_the_papers_recipe():
    config = Config()
    load_preset(config, "imagenet-resnet50")
    o, t = config.optim, config.train
    assert (o.optimizer, o.lr, o.lr_scaling, o.weight_decay, o.warmup_epochs) == ("lars", 0.3, "linear", 1e-6, 10)
    assert (t.batch_size, t.temperature, t.epochs, config.model.arch) == (4096, 0.1, 100, "resnet50")


def test_set_value_coerces_types_and_accepts_short_names():
    config = Config()
    set_value(config, "epochs", "64")
    set_value(config, "augment.crop_scale", "0.2,1.0")
    set_value(config, "model.cifar_stem", "false")
    set_value(config, "train.max_steps", "none")
    set_value(config, "optim.lr_scaling", "none")  # a string option whose value is the word none
    assert config.train.epochs == 64 and config.augment.crop_scale == (0.2, 1.0)
    assert config.model.cifar_stem is False and config.train.max_steps is None and config.optim.lr_scaling == "none"


def test_round_trip_through_dict():
    config = Config()
    set_value(config, "augment.blur_sigma", "0.2,1.5")
    assert config_from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    "key, value, words",
    [
        ("train.batch_size", "1", "batch_size must be >= 2"),
        ("train.temperature", "0", "temperature must be > 0"),
        ("train.temperature", "-0.5", "temperature must be > 0"),
        ("model.arch", "vgg", "unknown architecture 'vgg'"),
        ("optim.optimizer", "rmsprop", "unknown optimizer"),
        ("optim.lr_scaling", "cubic", "lr_scaling must be one of"),
        ("augment.crop_scale", "0.5,0.2", "crop_scale"),
        ("augment.gray_p", "1.5", "gray_p must be in [0, 1]"),
        ("data.valid_size", "1.0", "valid_size must be in (0, 1)"),
        ("train.precision", "fp8", "precision must be one of"),
        ("train.epochs", "0", "epochs must be >= 1"),
        ("optim.momentum", "1.0", "momentum must be in [0, 1)"),
        ("train.device", "tpu", "device must be"),
        ("eval.knn_k", "0", "knn_k must be >= 1"),
    ],
)
def test_invalid_values_are_named(key, value, words):
    config = Config()
    set_value(config, key, value)
    with pytest.raises(SimCLRError, match=None) as error:
        validate(config)
    assert words in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("key, value, words", [
    ("train.batch_size", "many", "expects int"),
    ("train.batch_size", "2.5", "expects int"),
    ("nosuch.key", "1", "unknown option"),
    ("colour", "1", "unknown option"),
    ("augment.crop_scale", "0.5", "expects tuple"),
])
def test_uncoercible_values_are_named(key, value, words):
    with pytest.raises(SimCLRError) as error:
        set_value(Config(), key, value)
    assert words in str(error.value)


def test_unknown_preset_lists_the_choices():
    with pytest.raises(SimCLRError, match="unknown preset 'nope'.*demo"):
        load_preset(Config(), "nope")


def test_a_run_folder_saved_with_a_removed_key_still_loads(tmp_path, caplog):
    saved = Config().to_dict()
    saved["train"]["probe_lr"] = 0.001  # removed with the probe's own optimizer
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved))
    assert load_run_config(tmp_path) == Config()
    assert "ignoring 'train.probe_lr'" in caplog.text


def test_a_renamed_key_of_a_saved_config_takes_its_new_name(monkeypatch):
    monkeypatch.setitem(RENAMED, "train.n_epochs", "train.epochs")
    assert config_from_dict({"train": {"n_epochs": 7}}).train.epochs == 7
    assert config_from_dict({"train": {"n_epochs": 7, "epochs": 9}}).train.epochs == 9  # the new name wins


def test_presets_and_set_still_refuse_a_removed_key(tmp_path):
    with pytest.raises(SimCLRError, match="unknown option 'train.probe_lr'"):
        set_value(Config(), "train.probe_lr", "0.1")
    preset = tmp_path / "old.yaml"
    preset.write_text("train:\n  probe_lr: 0.001\n")
    with pytest.raises(SimCLRError, match="unknown option 'train.probe_lr'"):
        load_preset(Config(), str(preset))
