"""Bad input through the CLI: exit status 2, one line naming the problem, nothing written.

Each row of ``CASES`` is one bad file, config or command-line value. Every pretraining row
starts from a tiny valid command and appends the bad part, so a value that slips through
validation shows up as a (fast) successful run rather than a long one.
"""

from __future__ import annotations

import builtins
import importlib.util
import io
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_ARGS, make_image_folder
from PIL import Image

from simclr.cli.main import main
from simclr import checkpoint as ckpt


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-step run on a tiny folder, for the rows that evaluate or resume one."""
    root = tmp_path_factory.mktemp("bad-input")
    folder = make_image_folder(root / "images")
    assert main(["pretrain", "--output", str(root / "run"), "--data", str(folder), *TINY_ARGS, "--max-steps", "1"]) == 0
    return root / "run"


def _pretrain(*bad: str) -> Callable[[Path, Path], list[str]]:
    """A valid one-step command on the tiny folder with ``bad`` appended (later flags win)."""
    def argv(tmp: Path, run: Path) -> list[str]:
        base = ["pretrain", "--output", str(tmp / "r"), "--data", str(run.parent / "images"), *TINY_ARGS, "--max-steps", "1"]
        return base + [item.format(tmp=tmp, run=run) for item in bad]
    return argv


def _command(*words: str) -> Callable[[Path, Path], list[str]]:
    return lambda tmp, run: [item.format(tmp=tmp, run=run) for item in words]


# ---------------------------------------------------------------- bad files, made in tmp


def _write(tmp: Path, name: str, content: bytes | str) -> Path:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def _images_with(tmp: Path, name: str, content: bytes) -> None:
    """Unlabeled (one subfolder), so every file is a pretraining image and is read up front."""
    root = make_image_folder(tmp / "d", classes=1, per_class=10)
    _write(root / "class_0", name, content)


def _png_bytes(cut: bool = False) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()[:1200] if cut else buffer.getvalue()


class _OpensAFile:
    """Unpickling this calls open(marker, 'w'): a file appears if the pickle ever runs."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (builtins.open, (str(self.marker), "w"))


def _malicious_checkpoint(tmp: Path, run: Path) -> None:
    state = torch.load(next((run / "checkpoints").iterdir()), weights_only=True)
    state["config"]["payload"] = _OpensAFile(tmp / "pwned")
    torch.save(state, tmp / "evil.pt")


def _malicious_raw_pickle(tmp: Path, run: Path) -> None:
    _write(tmp, "evil.pt", pickle.dumps({"format": ckpt.FORMAT, "step": 1, "x": _OpensAFile(tmp / "pwned")}))


def _other_architecture(tmp: Path, run: Path) -> None:
    state = torch.load(next((run / "checkpoints").iterdir()), weights_only=True)
    state["config"]["model"]["arch"] = "resnet34"
    ckpt.atomic_save(state, tmp / "r34.pt")


def _foreign_zip(tmp: Path, run: Path) -> None:
    with zipfile.ZipFile(tmp / "photos.pt", "w") as archive:
        archive.writestr("holiday.txt", "not a checkpoint")


SETUP: dict[str, Callable[[Path, Path], object]] = {
    "empty folder": lambda t, r: (t / "empty").mkdir(),
    "folder of non-images": lambda t, r: [_write(t / "docs", n, "text") for n in ("a.txt", "b.csv", "c.pt")],
    "folder of fake images": lambda t, r: [_write(t / "fake", n, "text") for n in ("a.jpg", "b.png")],
    "corrupt image": lambda t, r: _images_with(t, "img_bad.png", b"\x89PNG not really an image"),
    "zero-byte image": lambda t, r: _images_with(t, "img_bad.jpg", b""),
    "truncated image": lambda t, r: _images_with(t, "img_bad.png", _png_bytes(cut=True)),
    "mixed layout": lambda t, r: [make_image_folder(t / "mixed", per_class=3), _write(t / "mixed", "loose.png", _png_bytes())],
    "one image per class": lambda t, r: make_image_folder(t / "single", classes=3, per_class=1),
    "data is a file": lambda t, r: _write(t, "afile", "x"),
    "output inside a file": lambda t, r: _write(t, "afile", "x"),
    "preset not YAML": lambda t, r: _write(t, "bad.yaml", "train: [unclosed\n"),
    "preset is a list": lambda t, r: _write(t, "list.yaml", "- a\n- b\n"),
    "preset is binary": lambda t, r: _write(t, "bin.yaml", b"\xff\xfe\x00\x81"),
    "preset unknown section": lambda t, r: _write(t, "sect.yaml", "trainer:\n  epochs: 3\n"),
    "preset unknown key": lambda t, r: _write(t, "key.yaml", "train:\n  epochz: 3\n"),
    "checkpoint truncated": lambda t, r: _write(t, "cut.pt", next((r / "checkpoints").iterdir()).read_bytes()[:3000]),
    "checkpoint is text": lambda t, r: _write(t, "junk.pt", "definitely not a checkpoint"),
    "checkpoint is another zip": _foreign_zip,
    "checkpoint of another program": lambda t, r: torch.save({"state_dict": {"w": torch.zeros(1)}}, t / "other.pt"),
    "checkpoint of another architecture": _other_architecture,
    "checkpoint pickle runs code": _malicious_checkpoint,
    "raw pickle runs code": _malicious_raw_pickle,
}


CASES: list[tuple[str, Callable[[Path, Path], list[str]], str]] = [
    # data
    ("missing path", _pretrain("--data", "{tmp}/nope"), "does not exist"),
    ("data is a file", _pretrain("--data", "{tmp}/afile"), "is not a directory"),
    ("unknown dataset name", _pretrain("--data", "cifar-10"), "data 'cifar-10' is not a built-in dataset"),
    ("empty folder", _pretrain("--data", "{tmp}/empty"), "no images found"),
    ("folder of non-images", _pretrain("--data", "{tmp}/docs"), "no images found under"),
    ("folder of fake images", _pretrain("--data", "{tmp}/fake"), "a.jpg': not an image format"),
    ("corrupt image", _pretrain("--data", "{tmp}/d"), "img_bad.png': not an image format"),
    ("zero-byte image", _pretrain("--data", "{tmp}/d"), "img_bad.jpg': the file is empty (0 bytes) (use --skip-bad-images"),
    ("truncated image", _pretrain("--data", "{tmp}/d"), "img_bad.png': image file is truncated"),
    ("mixed layout", _pretrain("--data", "{tmp}/mixed"), "mixes 1 top-level images with class subfolders"),
    ("one image per class", _pretrain("--data", "{tmp}/single"), "need >= 2 per class"),
    ("batch larger than data", _pretrain("--batch-size", "500"), "larger than the dataset"),
    # presets and config keys
    ("unknown preset", _pretrain("--preset", "nope"), "unknown preset 'nope'"),
    ("preset not YAML", _pretrain("--preset", "{tmp}/bad.yaml"), "is not valid YAML"),
    ("preset is a list", _pretrain("--preset", "{tmp}/list.yaml"), "must be a mapping of sections, got list"),
    ("preset is binary", _pretrain("--preset", "{tmp}/bin.yaml"), "is not a text YAML file"),
    ("preset unknown section", _pretrain("--preset", "{tmp}/sect.yaml"), "unknown section 'trainer'"),
    ("preset unknown key", _pretrain("--preset", "{tmp}/key.yaml"), "unknown option 'train.epochz'"),
    ("unknown --set key", _pretrain("--set", "model.depth=3"), "unknown option 'model.depth'"),
    ("ambiguous --set key", _pretrain("--set", "batch_size=4"), "ambiguous option 'batch_size'"),
    ("--set without =", _pretrain("--set", "model.arch"), "--set expects KEY=VALUE, got 'model.arch'"),
    ("--set without key", _pretrain("--set", "=3"), "--set expects KEY=VALUE, got '=3'"),
    ("bad boolean", _pretrain("--set", "train.channels_last=maybe"), "train.channels_last expects bool, got 'maybe'"),
    ("unknown flag", _command("pretrain", "--frobnicate"), "unrecognized arguments: --frobnicate"),
    # values out of range, each naming the option and its valid range
    ("batch size 1", _pretrain("--batch-size", "1"), "train.batch_size must be >= 2"),
    ("non-numeric batch", _pretrain("--batch-size", "big"), "train.batch_size expects int, got 'big'"),
    ("temperature zero", _pretrain("--temperature", "0"), "train.temperature must be > 0, got 0.0"),
    ("negative temperature", _pretrain("--temperature", "-1"), "train.temperature must be > 0"),
    ("non-numeric temperature", _pretrain("--temperature", "warm"), "train.temperature expects float, got 'warm'"),
    ("crop scale reversed", _pretrain("--set", "augment.crop_scale=0.9,0.1"), "augment.crop_scale must satisfy 0 < lo <= hi <= 1"),
    ("crop scale one number", _pretrain("--set", "augment.crop_scale=0.5"), "augment.crop_scale expects tuple[float, float]"),
    ("probability above 1", _pretrain("--set", "augment.flip_p=1.5"), "augment.flip_p must be in [0, 1], got 1.5"),
    ("colour strength too high", _pretrain("--set", "augment.color_strength=3"), "augment.color_strength must be in [0, 2.5]"),
    ("blur sigma reversed", _pretrain("--set", "augment.blur_sigma=2,1"), "augment.blur_sigma must satisfy 0 < lo <= hi"),
    ("negative workers", _pretrain("--workers", "-1"), "data.workers must be >= 0, got -1"),
    ("fractional workers", _pretrain("--workers", "1.5"), "data.workers expects int, got '1.5'"),
    ("width zero", _pretrain("--width", "0"), "model.width must be > 0, got 0.0"),
    ("projection layers zero", _pretrain("--proj-layers", "0"), "model.proj_layers must be >= 1"),
    ("output dimension zero", _pretrain("--out-dim", "0"), "model.out_dim must be >= 1"),
    ("time budget not a duration", _pretrain("--time-budget", "5 minutes"), "train.time_budget must be a duration such as 90s"),
    ("time budget zero", _pretrain("--time-budget", "0s"), "train.time_budget must be longer than 0 s"),
    ("image size too small", _pretrain("--image-size", "4"), "data.image_size must be >= 8, got 4"),
    ("learning rate nan", _pretrain("--lr", "nan"), "optim.lr must be a finite number, got nan"),
    ("learning rate negative", _pretrain("--lr", "-1"), "optim.lr must be > 0"),
    ("momentum 1", _pretrain("--set", "optim.momentum=1"), "optim.momentum must be in [0, 1)"),
    ("negative weight decay", _pretrain("--weight-decay", "-1"), "optim.weight_decay must be >= 0"),
    ("gradient clip zero", _pretrain("--grad-clip", "0"), "optim.grad_clip must be > 0"),
    ("zero epochs", _pretrain("--epochs", "0"), "train.epochs must be >= 1, got 0"),
    ("checkpoint every 0", _pretrain("--checkpoint-every", "0"), "train.checkpoint_every must be >= 1"),
    ("keep no checkpoints", _pretrain("--set", "train.keep_checkpoints=0"), "train.keep_checkpoints must be >= 1"),
    ("negative seed", _pretrain("--seed", "-1"), "train.seed must be in [0, 2**32)"),
    ("valid size above 1", _pretrain("--valid-size", "1.5"), "data.valid_size must be in (0, 1), got 1.5"),
    ("empty output", _pretrain("--output", ""), "train.output must name a run folder"),
    ("unknown architecture", _pretrain("--arch", "resnet9"), "unknown architecture 'resnet9'"),
    ("unknown head", _pretrain("--head", "transformer"), "unknown projection head 'transformer'"),
    ("unknown optimizer", _pretrain("--optimizer", "adagrad"), "unknown optimizer 'adagrad'; choose one of"),
    ("unknown lr scaling", _pretrain("--lr-scaling", "cubic"), "optim.lr_scaling must be one of linear, sqrt, none"),
    ("unknown precision", _pretrain("--precision", "fp8"), "train.precision must be one of auto, fp32, bf16, fp16, got 'fp8'"),
    ("fp16 on the CPU", _pretrain("--precision", "fp16", "--device", "cpu"), "fp16 is not supported with train.device cpu"),
    ("unknown device", _pretrain("--device", "tpu"), "train.device must be auto, cpu, cuda, cuda:N or mps, got 'tpu'"),
    ("malformed cuda device", _pretrain("--device", "cuda:x"), "train.device must be auto, cpu, cuda, cuda:N or mps, got 'cuda:x'"),
    pytest.param("cuda without a GPU", _pretrain("--device", "cuda"), "CUDA is not available",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA"), id="cuda without a GPU"),
    pytest.param("wandb not installed", _pretrain("--wandb", "proj"), "train.wandb_project is 'proj' but the wandb package is not installed",
                 marks=pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed"), id="wandb not installed"),
    ("unknown eval protocol", _pretrain("--set", "eval.protocols=linear,foo"), "eval.protocols: unknown protocol 'foo'"),
    ("output inside a file", _pretrain("--output", "{tmp}/afile/r"), "afile/r"),
    # run folders and checkpoints
    ("resume without output", _command("pretrain", "--resume"), "--resume needs --output"),
    ("resume of a missing run", _command("pretrain", "--output", "{tmp}/none", "--resume"), "does not exist"),
    ("resume with another architecture", _command("pretrain", "--output", "{run}", "--resume", "--arch", "resnet34"),
     "model.arch: 'resnet18' in checkpoint vs 'resnet34' now"),
    ("resume with another batch size", _command("pretrain", "--output", "{run}", "--resume", "--batch-size", "4"),
     "train.batch_size: 8 in checkpoint vs 4 now"),
    ("fresh run over checkpoints", _pretrain("--output", "{run}"), "already holds checkpoints; pass --resume"),
    ("eval of missing run", _command("knn", "{tmp}/norun"), "does not exist"),
    ("eval of non-run folder", _command("linear-eval", "{tmp}"), "not a simclr run folder"),
    ("knn k zero", _command("knn", "{run}", "--k", "0"), "--k must be >= 1"),
    ("knn temperature zero", _command("knn", "{run}", "--temperature", "0"), "--temperature must be > 0"),
    ("checkpoint missing", _command("knn", "{run}", "--checkpoint", "{tmp}/gone.pt"), "gone.pt' does not exist"),
    ("checkpoint truncated", _command("knn", "{run}", "--checkpoint", "{tmp}/cut.pt"), "cut.pt' is unreadable"),
    ("checkpoint is text", _command("knn", "{run}", "--checkpoint", "{tmp}/junk.pt"), "unreadable, truncated or not a torch checkpoint"),
    ("checkpoint is another zip", _command("knn", "{run}", "--checkpoint", "{tmp}/photos.pt"), "photos.pt' is unreadable or truncated"),
    ("checkpoint of another program", _command("knn", "{run}", "--checkpoint", "{tmp}/other.pt"), "is not a simclr checkpoint"),
    ("checkpoint of another architecture", _command("linear-eval", "{run}", "--checkpoint", "{tmp}/r34.pt"),
     "model.arch: 'resnet34' in checkpoint vs 'resnet18' now"),
    ("checkpoint pickle runs code", _command("knn", "{run}", "--checkpoint", "{tmp}/evil.pt"), "was refused: it holds objects other than tensors"),
    ("raw pickle runs code", _command("knn", "{run}", "--checkpoint", "{tmp}/evil.pt"), "not a torch checkpoint"),
]


def _files(*roots: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for root in roots if root.exists()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name, argv, words", CASES, ids=[getattr(c, "id", None) or c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_nothing_written(name, argv, words, tmp_path, run, capsys):
    SETUP.get(name, lambda t, r: None)(tmp_path, run)
    command = argv(tmp_path, run)
    before = _files(tmp_path, run)
    try:
        status = main(command)
    except SystemExit as exit_info:  # argparse's own errors
        status = exit_info.code
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert status == 2, captured.err
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], lines
    assert "Traceback" not in captured.err + captured.out
    # Rejected before any work: no file created, changed or removed (a pickle that ran would have made 'pwned').
    assert _files(tmp_path, run) == before


def test_the_malicious_pickles_are_live(tmp_path, run):
    """The control for the two pickle rows: unpickled unsafely, each really does create its marker file."""
    _malicious_checkpoint(tmp_path, run)
    torch.load(tmp_path / "evil.pt", weights_only=False)
    assert (tmp_path / "pwned").exists()
    (tmp_path / "pwned").unlink()
    _malicious_raw_pickle(tmp_path, run)
    pickle.loads((tmp_path / "evil.pt").read_bytes())
    assert (tmp_path / "pwned").exists()


def test_the_table_covers_at_least_30_bad_inputs():
    assert len(CASES) >= 30
