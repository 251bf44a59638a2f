"""``simclr export`` and ``load_encoder``: every format gives the in-package h, and loads without simclr."""

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from simclr import ImageEncoder, SimCLRError, load_encoder
from simclr.augment import EvalTransform
from simclr.cli.main import main
from simclr.config import Config
from simclr.data import load_image
from simclr.runs import load_run_config
from simclr.export import encoder_from_model, export_encoder
from simclr.models import SimCLR, build_simclr

from conftest import TINY_ARGS, make_image_folder

EXTENSIONS = {"safetensors": ".safetensors", "torchscript": ".torchscript.pt", "onnx": ".onnx"}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export")
    folder = make_image_folder(root / "images")
    assert main(["pretrain", "--data", str(folder), "--output", str(root / "run"), *TINY_ARGS, "--max-steps", "2"]) == 0
    return root / "run"


def reference_model(run: Path) -> SimCLR:
    """The run's SimCLR network rebuilt by hand from config.yaml and the newest checkpoint."""
    m = load_run_config(run).model
    model = build_simclr(m.arch, m.width, m.cifar_stem, m.head, m.proj_layers, m.hidden_dim, m.out_dim)
    state = torch.load(sorted((run / "checkpoints").glob("step-*.pt"))[-1], weights_only=True)
    model.load_state_dict(state["model"])
    return model.eval()


def reference_h(run: Path, images: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return reference_model(run).encode(images)


def batch(run: Path) -> torch.Tensor:
    """Eight real images of the run's data, preprocessed as evaluation does, plus two noise images."""
    size = load_run_config(run).data.image_size
    paths = sorted((run.parent / "images").rglob("*.png"))[::3]
    real = torch.stack([EvalTransform(size)(load_image(p)) for p in paths])
    noise = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    return torch.cat([real, noise])


def exported_h(path: Path, fmt: str, images: torch.Tensor) -> torch.Tensor:
    if fmt == "onnx":
        onnxruntime = pytest.importorskip("onnxruntime")
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return torch.from_numpy(session.run(["h"], {"images": images.numpy()})[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # newer torch calls TorchScript deprecated
        module = load_encoder(path) if fmt == "safetensors" else torch.jit.load(str(path))
    with torch.no_grad():
        return module(images)


@pytest.mark.parametrize("fmt", list(EXTENSIONS))
def test_exported_encoder_gives_the_in_package_h(fmt, run, tmp_path, capsys):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    out = tmp_path / f"encoder{EXTENSIONS[fmt]}"
    assert main(["export", str(run), "--format", fmt, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "[B,3,16,16]" in printed
    images = batch(run)
    expected = reference_h(run, images)
    got = exported_h(out, fmt, images)
    assert got.shape == expected.shape == (10, 64)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    if fmt == "onnx":
        assert "checked with onnxruntime" in printed
        # Dynamic batch axis: a single image runs too.
        torch.testing.assert_close(exported_h(out, fmt, images[:1]), expected[:1], rtol=1e-5, atol=1e-5)


def test_default_output_path_and_safetensors_metadata(run):
    assert main(["export", str(run)]) == 0
    path = run / "export" / "encoder.safetensors"
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        meta, keys = handle.metadata(), set(handle.keys())
    config = load_run_config(run)
    assert meta["format"] == "simclr-encoder-v1"
    assert (json.loads(meta["arch"]), json.loads(meta["width"]), json.loads(meta["image_size"])) == ("resnet18", 0.125, config.data.image_size)
    assert json.loads(meta["cifar_stem"]) is True and json.loads(meta["feature_dim"]) == 64
    model = reference_model(run)
    assert json.loads(meta["mean"]) == pytest.approx(model.normalize.mean.flatten().tolist())
    # Exactly the encoder's state dict under torchvision's names: no head, no prefix, no fc.
    assert keys == set(model.encoder.state_dict())
    assert "conv1.weight" in keys and "layer4.1.bn2.running_var" in keys


def test_load_encoder_from_run_folder_and_checkpoint_has_preprocessing(run):
    images = batch(run)
    expected = reference_h(run, images)
    checkpoint = next((run / "checkpoints").iterdir())
    for source in (run, checkpoint, str(run)):
        encoder = load_encoder(source)
        assert isinstance(encoder, ImageEncoder) and not encoder.training
        with torch.no_grad():
            torch.testing.assert_close(encoder(images), expected, rtol=1e-5, atol=1e-5)
    # preprocess: any-size uint8 image -> the [3,S,S] input evaluation uses.
    image = torch.randint(0, 256, (3, 40, 30), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    assert encoder.info.image_size == 16
    torch.testing.assert_close(encoder.preprocess(image), EvalTransform(16)(image), rtol=0, atol=0)


def test_exports_load_without_simclr(run, tmp_path):
    """A fresh interpreter where `import simclr` fails: TorchScript, ONNX, and safetensors into torchvision."""
    # torchvision's ResNet has no width multiplier, so the safetensors recipe is shown at width 1.
    config = Config()
    config.model.arch, config.model.width, config.data.image_size = "resnet18", 1.0, 16
    torch.manual_seed(0)
    model = build_simclr("resnet18", 1.0, True, mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3))
    for module in model.modules():  # non-trivial BatchNorm statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    wide = encoder_from_model(model, config)
    export_encoder(wide, tmp_path / "wide.safetensors", "safetensors")
    export_encoder(wide, tmp_path / "wide.torchscript.pt", "torchscript")
    for fmt in ("torchscript", "onnx"):
        assert main(["export", str(run), "--format", fmt, "--out", str(tmp_path / f"tiny{EXTENSIONS[fmt]}")]) == 0
    images = batch(run)
    np.save(tmp_path / "images.npy", images.numpy())
    script = f"""
import json, sys
sys.modules["simclr"] = None  # any import of simclr now fails
import numpy as np, torch, torchvision
from torch import nn
from safetensors import safe_open
folder = {str(tmp_path)!r}
x = torch.from_numpy(np.load(folder + "/images.npy"))
with safe_open(folder + "/wide.safetensors", "pt") as f:
    meta, state = f.metadata(), {{k: f.get_tensor(k) for k in f.keys()}}
net = torchvision.models.resnet18()
net.fc = nn.Identity()
if json.loads(meta["cifar_stem"]):
    net.conv1, net.maxpool = nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.Identity()
net.load_state_dict(state)
mean, std = (torch.tensor(json.loads(meta[k])).view(1, 3, 1, 1) for k in ("mean", "std"))
with torch.no_grad():
    np.save(folder + "/h_torchvision.npy", net.eval()((x - mean) / std).numpy())
    np.save(folder + "/h_wide_ts.npy", torch.jit.load(folder + "/wide.torchscript.pt")(x).numpy())
    np.save(folder + "/h_tiny_ts.npy", torch.jit.load(folder + "/tiny.torchscript.pt")(x).numpy())
try:
    import onnxruntime
except ImportError:
    sys.exit(0)
session = onnxruntime.InferenceSession(folder + "/tiny.onnx", providers=["CPUExecutionProvider"])
np.save(folder + "/h_tiny_onnx.npy", session.run(["h"], {{"images": x.numpy()}})[0])
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    with torch.no_grad():
        expected_wide = model.eval().encode(images)
    expected_tiny = reference_h(run, images)
    for name, expected in [("torchvision", expected_wide), ("wide_ts", expected_wide), ("tiny_ts", expected_tiny), ("tiny_onnx", expected_tiny)]:
        path = tmp_path / f"h_{name}.npy"
        if name == "tiny_onnx" and not path.exists():
            continue  # onnxruntime is not installed
        torch.testing.assert_close(torch.from_numpy(np.load(path)), expected, rtol=1e-5, atol=1e-5, msg=name)


def test_bad_inputs_are_one_line_errors(run, tmp_path, capsys):
    assert main(["export", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.strip() == f"error: run folder '{tmp_path / 'missing'}' does not exist"
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(run), "--format", "pickle"])
    assert exit_info.value.code == 2
    with pytest.raises(SimCLRError, match="does not exist"):
        load_encoder(tmp_path / "nothing.safetensors")
    from safetensors.torch import save_file

    save_file({"weight": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(SimCLRError, match="not a simclr encoder file"):
        load_encoder(tmp_path / "other.safetensors")
    (tmp_path / "model.onnx").write_bytes(b"x")
    with pytest.raises(SimCLRError, match="onnxruntime"):
        load_encoder(tmp_path / "model.onnx")


@pytest.mark.parametrize("command", ["export", "embed", "report"])
def test_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: simclr " + command in capsys.readouterr().out
