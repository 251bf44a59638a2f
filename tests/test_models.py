"""Encoders of every registered depth and both stems, heads, and the (h, z) contract."""

import pytest
import torch
import torchvision

from simclr.errors import SimCLRError
from simclr.models import ARCHITECTURES, ProjectionHead, build_encoder, build_simclr, use_cifar_stem

FEATURE_DIMS = {"resnet18": 512, "resnet34": 512, "resnet50": 2048, "resnet101": 2048, "resnet152": 2048}


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("cifar_stem", [False, True])
def test_feature_size_of_every_encoder_and_stem(arch, cifar_stem):
    # Width 1/8 keeps the deep models fast; the feature size scales exactly with it.
    encoder = build_encoder(arch, width=0.125, cifar_stem=cifar_stem).eval()
    size = 32 if cifar_stem else 64
    with torch.no_grad():
        h = encoder(torch.rand(2, 3, size, size))
    assert h.shape == (2, FEATURE_DIMS[arch] // 8) == (2, encoder.feature_dim)


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_width_one_matches_torchvision_parameters(arch):
    ours = build_encoder(arch)
    reference = getattr(torchvision.models, arch)().state_dict()
    reference = {k: v for k, v in reference.items() if not k.startswith("fc.")}
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in reference.items()}
    ours.load_state_dict(reference)  # torchvision weights load unchanged


def test_cifar_stem_keeps_resolution():
    standard, cifar = build_encoder("resnet18", 0.25, False), build_encoder("resnet18", 0.25, True)
    assert cifar.conv1.kernel_size == (3, 3) and cifar.conv1.stride == (1, 1)
    assert isinstance(cifar.maxpool, torch.nn.Identity)
    assert standard.conv1.kernel_size == (7, 7) and isinstance(standard.maxpool, torch.nn.MaxPool2d)
    assert use_cifar_stem(32) and use_cifar_stem(64) and not use_cifar_stem(96)
    assert use_cifar_stem(224, True) and not use_cifar_stem(32, False)


def test_width_multiplier_doubles_channels():
    assert build_encoder("resnet50", width=2.0).feature_dim == 4096
    assert build_encoder("resnet18", width=0.5).feature_dim == 256


def test_mlp_head_layers():
    head = ProjectionHead(64, "mlp", num_layers=3, out_dim=16)
    kinds = [type(m).__name__ for m in head.layers]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert head.layers[0].out_features == 64  # hidden width = feature width by default
    z = head(torch.randn(8, 64))
    assert z.shape == (8, 16) and (z < 0).any()  # no ReLU on the output


def test_linear_and_none_heads():
    linear = ProjectionHead(64, "linear", out_dim=16)
    assert [type(m).__name__ for m in linear.layers] == ["Linear"]
    none = ProjectionHead(64, "none")
    h = torch.randn(4, 64)
    assert torch.equal(none(h), h) and none.out_dim == 64


def test_simclr_forward_returns_h_and_z_with_normalisation_inside():
    model = build_simclr("resnet18", 0.125, True, out_dim=32, mean=(0.1, 0.2, 0.3), std=(0.5, 0.5, 0.5)).eval()
    x = torch.rand(3, 3, 32, 32)
    h, z = model(x)
    assert h.shape == (3, 64) and z.shape == (3, 32)
    manual = model.encoder((x - torch.tensor([0.1, 0.2, 0.3]).view(1, 3, 1, 1)) / 0.5)
    torch.testing.assert_close(h, manual)
    torch.testing.assert_close(z, model.head(h))


@pytest.mark.parametrize("kwargs, word", [({"arch": "vgg16"}, "architecture"), ({"width": 0}, "width"), ({"head": "deep"}, "head"), ({"proj_layers": 0}, "proj_layers")])
def test_bad_model_arguments(kwargs, word):
    with pytest.raises(SimCLRError, match=word):
        build_simclr(**{"arch": "resnet18", **kwargs})
