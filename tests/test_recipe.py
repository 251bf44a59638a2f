"""The recipe: given dataset shapes and devices -> given choices; explicit options always win."""

import dataclasses

import pytest
import torch

from simclr.cli.main import build_parser
from simclr.cli.options import config_from_args
from simclr.config import Config, load_preset, parse_duration, set_value
from simclr.data.datasets import TensorImages
from simclr.errors import SimCLRError
from simclr.recipe import DataFacts, describe, measure_data, mirror_distance
from simclr.runs import resolve_with_recipe

DIGITS_CPU = DataFacts(images=4000, image_size=28, grayscale=True, mirror_distance=1.9)
PHOTOS_GPU = DataFacts(images=1_281_167, image_size=224, grayscale=False, mirror_distance=1.05)


def _resolved(facts: DataFacts, accelerator: bool, config: Config | None = None):
    resolved, choices = resolve_with_recipe(config or Config(), facts, accelerator=accelerator)
    return resolved, {choice.key: choice.value for choice in choices}


def test_small_grayscale_digits_on_a_cpu():
    config, chosen = _resolved(DIGITS_CPU, accelerator=False)
    assert (config.model.arch, config.model.width, config.model.cifar_stem) == ("resnet18", 0.25, True)
    assert config.train.batch_size == 256 and config.train.temperature == 0.2
    assert (config.optim.lr_scaling, config.optim.lr) == ("sqrt", 0.25)
    assert tuple(config.augment.crop_scale) == (0.2, 1.0)
    assert config.augment.flip_p == 0.0 and config.augment.gray_p == 0.0 and config.augment.blur_p == 0.0
    # A CPU run's length is what fits a wall time; the warm-up follows once the schedule is known.
    assert config.train.time_budget == "10m" and config.train.epochs is None and config.optim.warmup_epochs is None
    assert set(chosen) >= {"model.arch", "train.batch_size", "augment.flip_p", "train.time_budget"}


def test_large_colour_photos_on_an_accelerator():
    config, _ = _resolved(PHOTOS_GPU, accelerator=True)
    assert (config.model.arch, config.model.width, config.model.cifar_stem) == ("resnet50", 1.0, False)
    assert config.train.batch_size == 1024 and config.train.temperature == 0.1
    assert (config.optim.lr_scaling, config.optim.lr) == ("sqrt", 0.075)
    assert tuple(config.augment.crop_scale) == (0.08, 1.0)
    assert config.augment.flip_p == 0.5 and config.augment.gray_p == 0.2 and config.augment.blur_p == 0.5
    assert config.train.epochs == 100 and config.optim.warmup_epochs == 10.0  # 1251 steps an epoch: 100 epochs


@pytest.mark.parametrize("images, batch", [(1347, 128), (4000, 256), (100, 8), (20, 2), (50_000, 256)])
def test_batch_is_a_power_of_two_at_most_an_eighth_of_the_data(images, batch):
    config, _ = _resolved(dataclasses.replace(DIGITS_CPU, images=images), accelerator=False)
    assert config.train.batch_size == batch


def test_small_accelerator_dataset_gets_enough_epochs_and_a_tenth_of_them_as_warm_up():
    config, _ = _resolved(DataFacts(images=50_000, image_size=32, grayscale=False, mirror_distance=1.0), accelerator=True)
    assert config.model.arch == "resnet18" and config.model.width == 1.0 and config.train.batch_size == 1024
    assert config.train.epochs == 417 and config.optim.warmup_epochs == 10.0  # 48 steps an epoch: 20k steps
    small, _ = _resolved(DataFacts(images=1_000_000, image_size=32), accelerator=True)
    assert small.train.epochs == 100 and small.train.temperature == 0.2


def test_unmeasured_mirror_statistic_keeps_flips_and_unknown_size_takes_the_largest_batch():
    config, _ = _resolved(DataFacts(images=None, image_size=96), accelerator=False)
    assert config.augment.flip_p == 0.5 and config.train.batch_size == 256 and config.augment.gray_p == 0.2


RECIPE_KEYS = {
    "model.arch": "resnet34", "model.width": 0.5, "train.batch_size": 64, "optim.lr_scaling": "linear", "optim.lr": 1.5,
    "train.temperature": 0.7, "augment.crop_scale": (0.3, 0.9), "augment.flip_p": 0.25, "augment.gray_p": 0.4,
    "train.epochs": 3, "optim.warmup_epochs": 1.5,
}


@pytest.mark.parametrize("key", sorted(RECIPE_KEYS))
@pytest.mark.parametrize("accelerator", [False, True])
def test_an_explicit_option_beats_the_recipe(key, accelerator):
    config = Config()
    set_value(config, key, RECIPE_KEYS[key])
    resolved, chosen = _resolved(DIGITS_CPU, accelerator, config)
    section, name = key.split(".")
    assert getattr(getattr(resolved, section), name) == RECIPE_KEYS[key] and key not in chosen


def test_command_line_preset_and_set_beat_the_recipe():
    args = build_parser().parse_args(["pretrain", "--preset", "demo", "--temperature", "0.3", "--set", "augment.gray_p=0.2"])
    resolved, chosen = _resolved(DIGITS_CPU, False, config_from_args(args))
    assert resolved.train.temperature == 0.3 and resolved.augment.gray_p == 0.2  # command line
    preset = Config()
    load_preset(preset, "demo")
    assert resolved.optim.lr == 4.0 and resolved.optim.lr_scaling == "none"  # the preset's (not the recipe's sqrt rule)
    assert resolved.train.epochs == preset.train.epochs and resolved.train.time_budget is None  # not the recipe's 10m
    assert chosen == {}  # the demo preset sets all the rest


def test_every_choice_is_explained_in_the_log_block():
    _, choices = resolve_with_recipe(Config(), DIGITS_CPU)
    block = describe(choices)
    assert block.count("\n") == len(choices) and all(choice.key in block and choice.reason in block for choice in choices)
    assert describe([]) == "recipe: every option was set explicitly"


def _images(pixels: torch.Tensor) -> TensorImages:
    return TensorImages(pixels.to(torch.uint8), torch.zeros(len(pixels), dtype=torch.int64))


def test_mirror_statistic_tells_mirror_foreign_data_from_mirror_symmetric_data():
    noise = torch.rand(128, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 60
    ramp = torch.linspace(255, 0, 16).expand(16, 16)  # every image bright on the left: a mirrored one is bright on the right
    lopsided = (noise * 0.5 + ramp * 0.75).clamp(0, 255)
    symmetric = (noise + noise.flip(-1)) / 2
    assert mirror_distance(lopsided) > 3.0
    assert mirror_distance(symmetric) < 0.1  # each image is its own mirror
    # Independent noise: a mirror is as far from the data as any image is from another.
    assert 0.7 < mirror_distance(noise) < 1.3


def test_measure_data_sees_grayscale_and_counts_images():
    gray = torch.randint(0, 256, (40, 1, 20, 20)).expand(40, 3, 20, 20)
    facts = measure_data(_images(gray.clone()), 20)
    assert facts.grayscale and facts.images == 40 and facts.image_size == 20 and facts.mirror_distance is not None
    colour = measure_data(_images(torch.randint(0, 256, (40, 3, 20, 20))), 20)
    assert not colour.grayscale


@pytest.mark.parametrize("text, seconds", [("90", 90), ("90s", 90), ("5m", 300), ("2h", 7200), ("1h30m", 5400), ("0.5m", 30)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5 minutes", "m", "-5s", "0", "1h30", "5x"])
def test_bad_durations_are_refused(text):
    with pytest.raises(SimCLRError, match="train.time_budget"):
        parse_duration(text)


def test_adam_keeps_its_own_learning_rate_and_timm_models_their_width():
    config = Config()
    set_value(config, "optim.optimizer", "adamw")
    set_value(config, "model.arch", "timm/resnet10t")
    resolved, chosen = _resolved(DIGITS_CPU, False, config)
    assert resolved.optim.lr == pytest.approx(1e-3 / 16) and "optim.lr" not in chosen  # 1e-3 at batch 256 (square-root rule)
    assert resolved.model.width == 1.0
