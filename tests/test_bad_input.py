"""Bad input through the CLI: exit status 2 and one line naming the problem, before any work."""

from pathlib import Path

import pytest

from simclr.cli.main import main

from conftest import TINY_ARGS, make_image_folder


def _empty(tmp: Path) -> str:
    (tmp / "empty").mkdir()
    return str(tmp / "empty")


def _corrupt(tmp: Path) -> str:
    root = make_image_folder(tmp / "bad", classes=2, per_class=4)
    (root / "class_0" / "img_0.png").write_bytes(b"\x89PNG not really an image")
    return str(root)


CASES = [
    ("missing path", lambda t: ["pretrain", "--data", str(t / "nope"), "--output", str(t / "r")], "does not exist"),
    ("empty folder", lambda t: ["pretrain", "--data", _empty(t), "--output", str(t / "r")], "no images found"),
    ("unreadable image", lambda t: ["pretrain", "--data", _corrupt(t), "--output", str(t / "r"), *TINY_ARGS, "--max-steps", "2"], "img_0.png"),
    ("batch size 1", lambda t: ["pretrain", "--output", str(t / "r"), "--batch-size", "1"], "batch_size must be >= 2"),
    ("batch larger than data", lambda t: ["pretrain", "--data", str(make_image_folder(t / "i")), "--output", str(t / "r"), "--batch-size", "500"], "larger than the dataset"),
    ("temperature zero", lambda t: ["pretrain", "--output", str(t / "r"), "--temperature", "0"], "temperature must be > 0"),
    ("negative temperature", lambda t: ["pretrain", "--output", str(t / "r"), "--temperature", "-1"], "temperature must be > 0"),
    ("unknown architecture", lambda t: ["pretrain", "--output", str(t / "r"), "--arch", "resnet9"], "unknown architecture 'resnet9'"),
    ("unknown preset", lambda t: ["pretrain", "--output", str(t / "r"), "--preset", "nope"], "unknown preset 'nope'"),
    ("non-numeric batch", lambda t: ["pretrain", "--output", str(t / "r"), "--batch-size", "big"], "expects int"),
    ("unknown --set key", lambda t: ["pretrain", "--output", str(t / "r"), "--set", "model.depth=3"], "unknown option 'model.depth'"),
    ("--set without =", lambda t: ["pretrain", "--output", str(t / "r"), "--set", "model.arch"], "KEY=VALUE"),
    ("unknown flag", lambda t: ["pretrain", "--frobnicate"], "unrecognized arguments"),
    ("eval of missing run", lambda t: ["knn", str(t / "norun")], "does not exist"),
    ("eval of non-run folder", lambda t: ["linear-eval", _empty(t)], "not a simclr run folder"),
    ("resume without checkpoints", lambda t: ["pretrain", "--output", str(t / "none"), "--resume"], "does not exist"),
    ("knn k zero", lambda t: ["knn", str(t), "--k", "0"], "--k must be >= 1"),
]


@pytest.mark.parametrize("name, argv, words", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(name, argv, words, tmp_path, capsys):
    try:
        status = main(argv(tmp_path))
    except SystemExit as exit_info:  # argparse's own errors
        status = exit_info.code
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert len(err) == 1 and err[0].startswith("error: ") and words in err[0], err


def test_checkpoint_of_another_architecture_is_refused(tiny_folder, tmp_path, capsys):
    r18, r34 = tmp_path / "r18", tmp_path / "r34"
    common = ["--data", str(tiny_folder), *TINY_ARGS, "--max-steps", "1"]
    assert main(["pretrain", "--output", str(r18), *common]) == 0
    assert main(["pretrain", "--output", str(r34), *common, "--arch", "resnet34"]) == 0
    capsys.readouterr()
    foreign = next((r34 / "checkpoints").iterdir())
    assert main(["linear-eval", str(r18), "--checkpoint", str(foreign)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.arch: 'resnet34' in checkpoint vs 'resnet18' now" in err[0]


def test_foreign_file_as_checkpoint_is_refused(tiny_folder, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["pretrain", "--output", str(run), "--data", str(tiny_folder), *TINY_ARGS, "--max-steps", "1"]) == 0
    capsys.readouterr()
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"definitely not a checkpoint")
    assert main(["knn", str(run), "--checkpoint", str(junk)]) == 2
    err = capsys.readouterr().err
    assert "unreadable, truncated or not a torch checkpoint" in err and "weights_only" not in err
