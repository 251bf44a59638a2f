"""timm backbones (--arch timm/NAME) through pretrain -> resume -> linear-eval -> export -> load_encoder, on the CPU."""

import json
import sys
from pathlib import Path

import pytest
import torch
from conftest import TINY_ARGS, make_image_folder

import simclr
from simclr.checkpoint import list_checkpoints, load_file
from simclr.cli.main import main
from simclr.models import build_simclr
from simclr.optim import parameter_groups
from simclr.train.metrics import read_metrics

timm = pytest.importorskip("timm")

# A ResNet with a deep stem, a ConvNeXt (LayerNorm, no BatchNorm) and a ViT built for 32 px.
MODELS = ["resnet10t", "convnext_atto", "vit_tiny_patch16_224"]
SIZE = 32


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("timm") / "images", per_class=13, size=SIZE)


def _pretrain(images: Path, run: Path, name: str, *extra: str) -> None:
    argv = ["pretrain", "--data", str(images), "--output", str(run), *TINY_ARGS, "--arch", f"timm/{name}", "--checkpoint-every", "1", *extra]
    assert main(argv) == 0


@pytest.fixture(scope="module", params=MODELS)
def run(request, images, tmp_path_factory):
    """2 steps, then resumed to 3 (as a killed run would be)."""
    name, run = request.param, tmp_path_factory.mktemp(request.param) / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is faster on a shared machine
    _pretrain(images, run, name, "--max-steps", "2")
    assert main(["pretrain", "--output", str(run), "--resume", "--max-steps", "3"]) == 0
    yield name, run
    torch.set_num_threads(threads)


def _h(encoder: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return encoder(images)


def test_pretrains_and_resumes_with_timm_names(run):
    name, path = run
    assert [r["step"] for r in read_metrics(path / "metrics.jsonl")] == [1, 2, 3]
    state = load_file(list_checkpoints(path / "checkpoints")[-1])
    reference = timm.create_model(name, num_classes=0, **({"img_size": SIZE} if name.startswith("vit") else {}))
    assert {f"encoder.{key}" for key in reference.state_dict()} == {k for k in state["model"] if k.startswith("encoder.")}
    # the head takes timm's pooled features: its first layer's input width is the model's feature width
    assert state["model"]["head.layers.0.weight"].shape[1] == reference.num_features


@pytest.mark.parametrize("run", ["resnet10t"], indirect=True)  # one model: resuming does not depend on the architecture
def test_resumed_run_equals_an_uninterrupted_one(run, images, tmp_path):
    name, path = run
    straight = tmp_path / "straight"
    _pretrain(images, straight, name, "--max-steps", "3")
    a, b = (load_file(list_checkpoints(p / "checkpoints")[-1])["model"] for p in (path, straight))
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_linear_eval_export_and_load_encoder_agree(run, tmp_path, capsys):
    name, path = run
    capsys.readouterr()
    assert main(["linear-eval", str(path), "--linear-epochs", "2", "--json"]) == 0
    assert 0.0 <= json.loads(capsys.readouterr().out.strip().splitlines()[-1])["top1"] <= 1.0
    images = torch.rand(5, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    reference = _h(simclr.load_encoder(path), images)
    out = tmp_path / "encoder.safetensors"
    assert main(["export", str(path), "--output", str(out)]) == 0
    loaded = simclr.load_encoder(out)
    assert loaded.info.arch == f"timm/{name}" and loaded.info.feature_dim == reference.shape[1]
    torch.testing.assert_close(_h(loaded, images), reference, rtol=0, atol=1e-5)
    from safetensors import safe_open

    with safe_open(str(out), framework="pt") as handle:
        assert handle.metadata()["timm_model"] == name
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    bare = timm.create_model(name, num_classes=0, **({"img_size": SIZE} if name.startswith("vit") else {}))
    bare.load_state_dict(tensors)  # timm's own names: the file loads into timm as it is
    normalized = (images - loaded.normalize.mean) / loaded.normalize.std
    torch.testing.assert_close(_h(bare.eval(), normalized), reference, rtol=0, atol=1e-5)


def test_onnx_export_matches(run, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    name, path = run
    assert main(["export", str(path), "--format", "onnx", "--output", str(tmp_path / "e.onnx"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["onnx_max_difference"] < 1e-4


@pytest.mark.parametrize("run", ["vit_tiny_patch16_224"], indirect=True)  # the least ResNet-like of the three
def test_embed_and_finetune_take_a_timm_encoder(run, tmp_path, capsys):
    name, path = run
    assert main(["embed", str(path), "--output", str(tmp_path / "h.npy"), "--split", "test"]) == 0
    import numpy as np

    assert np.load(tmp_path / "h.npy").shape[1] == 192
    assert main(["finetune", str(path), "--label-fraction", "0.5", "--epochs", "1", "--batch-size", "4", "--json"]) == 0


def test_vit_groups_exempt_position_embeddings_and_norms():
    model = build_simclr("timm/vit_tiny_patch16_224", image_size=SIZE)
    names = {id(p): n for n, p in model.named_parameters()}
    groups = parameter_groups(model, 0.05)
    decay, no_decay, exempt = ({names[id(p)] for p in g["params"]} for g in groups)
    assert exempt == {"encoder.pos_embed", "encoder.cls_token"} and groups[2] == {**groups[2], "weight_decay": 0.0, "adapt": False}
    assert "encoder.blocks.0.norm1.weight" in no_decay and "encoder.blocks.0.attn.qkv.bias" in no_decay
    assert "encoder.patch_embed.proj.weight" in decay and "encoder.blocks.0.attn.qkv.weight" in decay


@pytest.mark.parametrize("arch, words", [
    ("timm/resnet10", "did you mean timm/resnet10t"),
    ("timm/no_such_model_xyz", "unknown timm model 'no_such_model_xyz'"),
    ("timm/", "unknown timm model ''"),
])
def test_unknown_timm_names_end_in_one_line(arch, words, images, tmp_path, capsys):
    assert main(["pretrain", "--data", str(images), "--output", str(tmp_path / "r"), *TINY_ARGS, "--arch", arch]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and words in err and len(err.splitlines()) == 1


def test_missing_timm_is_named(images, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm now raises ImportError
    assert main(["pretrain", "--data", str(images), "--output", str(tmp_path / "r"), *TINY_ARGS, "--arch", "timm/resnet10t"]) == 2
    assert capsys.readouterr().err.strip() == "error: timm backbones need the timm package: pip install timm (or 'simclr-torch[timm]')"


def test_global_batchnorm_keeps_a_timm_norm_act_layer_whole():
    from timm.layers import BatchNormAct2d

    from simclr.distributed import _to_global_batchnorm

    layer = BatchNormAct2d(4, act_layer=torch.nn.ReLU)
    layer.bias.data.fill_(-0.3)  # so the activation visibly clips
    x = torch.randn(3, 4, 5, 5, generator=torch.Generator().manual_seed(0))
    expected = layer(x)
    swapped = _to_global_batchnorm(torch.nn.Sequential(layer))[0]
    assert type(swapped).__name__ == "GlobalBatchNorm" and set(dict(swapped.state_dict())) == set(dict(layer.state_dict()))
    torch.testing.assert_close(swapped(x), expected)
    assert (expected == 0).any()


def test_two_processes_match_one_with_a_timm_batchnorm_act_model(images, tmp_path):
    """regnetx uses timm's BatchNormAct2d: under DDP, global BatchNorm must keep its activations."""
    from test_distributed import WORLD, assert_same_weights, final_state, run_cli

    common = ["pretrain", "--data", str(images), *TINY_ARGS, "--arch", "timm/regnetx_002", "--device", "cpu", "--max-steps", "2"]
    run_cli([*common, "--output", str(tmp_path / "one")], 1)
    run_cli([*common, "--output", str(tmp_path / "two")], WORLD)
    one, two = read_metrics(tmp_path / "one" / "metrics.jsonl"), read_metrics(tmp_path / "two" / "metrics.jsonl")
    assert [r["loss"] for r in two] == pytest.approx([r["loss"] for r in one], rel=1e-5)
    assert_same_weights(final_state(tmp_path / "two"), final_state(tmp_path / "one"), rtol=1e-4, atol=1e-4)


def test_sync_batchnorm_for_gpus_keeps_timm_activations():
    """On GPUs nn.SyncBatchNorm replaces BatchNorm; timm's BatchNormAct2d becomes timm's SyncBatchNormAct, activation kept."""
    from timm.layers import BatchNormAct2d, SyncBatchNormAct

    from simclr.distributed import _to_sync_batchnorm

    plain = _to_sync_batchnorm(torch.nn.Sequential(torch.nn.BatchNorm2d(3)))
    assert type(plain[0]) is torch.nn.SyncBatchNorm
    converted = _to_sync_batchnorm(torch.nn.Sequential(BatchNormAct2d(3, act_layer=torch.nn.ReLU), torch.nn.BatchNorm2d(3)))
    assert isinstance(converted[0], SyncBatchNormAct) and isinstance(converted[0].act, torch.nn.ReLU)
    assert type(converted[1]) is torch.nn.SyncBatchNorm


def test_vit_preset_trains_with_adamw_and_no_decay_on_embeddings(images, tmp_path, one_thread):
    """The ViT preset, shrunk to the tiny folder: AdamW, and the embeddings in the no-decay, no-adaptation group."""
    run = tmp_path / "vit"
    assert main(["pretrain", "--preset", "imagenet-vit-small", "--data", str(images), "--output", str(run), "--image-size", str(SIZE),
                 "--batch-size", "8", "--max-steps", "1", "--workers", "0", "--knn-every", "0"]) == 0
    state = load_file(list_checkpoints(run / "checkpoints")[-1])
    groups = state["optimizer"]["param_groups"]
    assert [g["weight_decay"] for g in groups] == [0.1, 0.0, 0.0, 0.0] and groups[2]["adapt"] is False
    assert "exp_avg_sq" in next(iter(state["optimizer"]["state"].values()))  # Adam's moments: AdamW ran
    assert state["model"]["encoder.pos_embed"].shape == (1, 1 + (SIZE // 16) ** 2, 384)  # built for the run's image size
