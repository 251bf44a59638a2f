"""Each augmentation op switched off alone (the cells of the paper's Figure 5): crop off gives the
centred square, every other op keeps its draws, and both pipelines still render the same views."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _images import assert_params_equal, keys_for, natural_images

from simclr.augment import BatchedTwoViewTransform, TwoViewTransform, ViewTransform
from simclr.config import Config, set_value
from simclr.errors import SimCLRError
from simclr.runs import build_augmentation

pytestmark = pytest.mark.usefixtures("one_thread")

# Each op on (as the paper's views have it, solarize as BYOL's) and its off switch.
ON = {"crop": True, "flip_p": 0.5, "color_p": 0.8, "gray_p": 0.2, "blur_p": 0.5, "solarize_p": 0.2}
OFF = {"crop": False, "flip_p": 0.0, "color_p": 0.0, "gray_p": 0.0, "blur_p": 0.0, "solarize_p": 0.0}
# The ViewParams fields each op decides; the others must not move when it is switched off.
FIELDS = {"crop": ("crop",), "flip_p": ("flip",), "gray_p": ("grayscale",), "blur_p": ("blur_applied", "blur_sigma"),
          "solarize_p": ("solarize",),
          "color_p": ("color_applied", "color_order", "brightness", "contrast", "saturation", "hue")}


def test_no_crop_is_the_centred_square_and_the_whole_square_image() -> None:
    view = ViewTransform(16, crop=False)
    keys = keys_for(5)
    np.testing.assert_array_equal(view.sample_crops(keys, 0, 20, 20), np.tile([0, 0, 20, 20], (5, 1)))
    np.testing.assert_array_equal(view.sample_crops(keys, 1, 30, 20), np.tile([5, 0, 20, 20], (5, 1)))
    np.testing.assert_array_equal(view.sample_crops(keys[:2], 0, [9, 40], [13, 30]), [[0, 2, 9, 9], [5, 0, 30, 30]])
    assert "crop=False" in repr(view)


@pytest.mark.parametrize("op", list(OFF))
def test_switching_one_op_off_leaves_every_other_draw_unchanged(op: str) -> None:
    keys = keys_for(64, seed=7)
    on = ViewTransform(24, **ON)
    off = ViewTransform(24, **{**ON, op: OFF[op]})
    for view in (0, 1):
        a, b = on.sample(keys, view, 40, 30), off.sample(keys, view, 40, 30)
        assert_params_equal(a, b, skip=FIELDS[op])
        decided = getattr(b, FIELDS[op][0])
        assert (decided == np.tile([5, 0, 30, 30], (64, 1))).all() if op == "crop" else not decided.any()


@pytest.mark.parametrize("on", [("crop",), ("color_p",), ("crop", "color_p"), ("blur_p", "solarize_p"), ("flip_p", "gray_p"), ()])
def test_batched_and_per_image_pipelines_agree_for_any_set_of_ops(on: tuple[str, ...]) -> None:
    settings = {op: ON[op] if op in on else OFF[op] for op in ON}
    view = ViewTransform(24, **{**settings, **{op: 1.0 for op in on if op != "crop"}})
    n = 12
    images, keys = natural_images(n, 30, 26, seed=len(on)), keys_for(n, seed=3)
    a, b = BatchedTwoViewTransform(view)(images, keys)
    per_image = TwoViewTransform(view)
    for i, key in enumerate(keys.tolist()):
        for ours, theirs in zip((a[i], b[i]), per_image(images[i], key)):
            bad = (ours - theirs).abs() > 1e-5  # a pixel on the solarize threshold may land on either side
            assert int(bad.sum()) <= 2
    if not on:  # nothing on: both views are the centred square, resized
        assert torch.equal(a, b)


def test_the_config_switches_each_op_from_the_command_line() -> None:
    config = Config()
    config.data.image_size = 28
    for key, value in {"crop": "false", "flip_p": "0", "color_p": "0", "gray_p": "0", "blur_p": "0", "solarize_p": "0"}.items():
        set_value(config, f"augment.{key}", value)
    config.augment.crop_scale = (0.2, 1.0)
    view = build_augmentation(config).view_a
    assert view.crop is False and view.flip_p == view.color_p == view.gray_p == view.blur_p == view.solarize_p == 0.0
    with pytest.raises(SimCLRError, match="augment.crop expects bool"):
        set_value(config, "augment.crop", "maybe")
    with pytest.raises(SimCLRError, match="crop must be True or False"):
        ViewTransform(16, crop=1)  # type: ignore[arg-type]
