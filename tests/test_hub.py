"""hubconf.py: torch.hub.load(checkout, ..., source="local") gives the trained encoder and untrained networks."""

import importlib.util
from pathlib import Path

import pytest
import torch
from conftest import TINY_ARGS, make_image_folder

import simclr
from simclr.cli.main import main
from simclr.models import ARCHITECTURES

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hub")
    folder = make_image_folder(root / "images")
    assert main(["pretrain", "--data", str(folder), "--output", str(root / "run"), *TINY_ARGS, "--max-steps", "2"]) == 0
    return root / "run"


def test_hub_encoder_is_the_trained_encoder(run, one_thread):
    hub = torch.hub.load(str(REPO), "simclr_encoder", source="local", path=str(run))
    reference = simclr.load_encoder(run)
    images = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(hub(images), reference(images), atol=1e-6)
    assert not hub.training and hub.info == reference.info
    assert hub.preprocess(torch.zeros(3, 40, 30, dtype=torch.uint8)).shape == (3, 16, 16)
    # the weights are the checkpoint's, not a fresh network of the same shape
    state = torch.load(sorted((run / "checkpoints").glob("step-*.pt"))[-1], weights_only=True)["model"]
    assert torch.equal(hub.encoder.conv1.weight, state["encoder.conv1.weight"])


def test_hub_builds_untrained_networks(one_thread):
    encoder = torch.hub.load(str(REPO), "resnet18", source="local", width=0.25, cifar_stem=True)
    assert encoder.feature_dim == 128 and encoder.conv1.kernel_size == (3, 3)
    assert encoder(torch.rand(2, 3, 32, 32)).shape == (2, 128)
    network = torch.hub.load(str(REPO), "simclr_network", source="local", arch="resnet18", width=0.125, out_dim=16)
    h, z = network(torch.rand(2, 3, 32, 32))
    assert h.shape == (2, 64) and z.shape == (2, 16)


def test_hub_lists_one_entry_per_architecture():
    spec = importlib.util.spec_from_file_location("hubconf_under_test", REPO / "hubconf.py")
    hubconf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hubconf)
    public = {name for name in dir(hubconf) if callable(getattr(hubconf, name)) and not name.startswith("_")}  # what torch.hub.list shows
    assert public >= {"simclr_encoder", "simclr_network", "timm_encoder", *ARCHITECTURES}
    assert all(getattr(hubconf, name).__doc__ for name in public)
    assert not public & {"Path", "build_encoder", "load_encoder"}  # no imported helpers posing as models


def test_hub_builds_a_timm_encoder(one_thread):
    pytest.importorskip("timm")
    vit = torch.hub.load(str(REPO), "timm_encoder", source="local", name="vit_tiny_patch16_224", image_size=32)
    assert vit.feature_dim == 192 and vit(torch.rand(2, 3, 32, 32)).shape == (2, 192)
