"""``simclr embed``: rows in dataset order, with the right labels, paths and features."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from simclr.augment import EvalTransform
from simclr.cli.main import main
from simclr.data import load_data, load_image
from simclr.runs import load_run_config
from simclr.models import build_simclr

from conftest import TINY_ARGS, make_image_folder


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("embed")
    folder = make_image_folder(root / "images", classes=3, per_class=6)
    assert main(["pretrain", "--data", str(folder), "--output", str(root / "run"), *TINY_ARGS, "--batch-size", "4", "--max-steps", "1"]) == 0
    return root / "run"


def expected_h(run: Path, paths: list[str]) -> torch.Tensor:
    """h of each file, read and preprocessed one by one, through a network rebuilt by hand from the checkpoint."""
    config = load_run_config(run)
    m = config.model
    model = build_simclr(m.arch, m.width, m.cifar_stem, m.head, m.proj_layers, m.hidden_dim, m.out_dim)
    model.load_state_dict(torch.load(next((run / "checkpoints").glob("step-*.pt")), weights_only=True)["model"])
    with torch.no_grad():
        return model.eval().encode(torch.stack([EvalTransform(config.data.image_size)(load_image(p)) for p in paths]))


def read_table(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_npy_rows_are_train_then_test_in_dataset_order(run, tmp_path):
    out = tmp_path / "features.npy"
    assert main(["embed", str(run), "--out", str(out)]) == 0
    features = np.load(out)
    labels = np.load(tmp_path / "features.labels.npy")
    table = read_table(tmp_path / "features.csv")

    data = load_data(str(run.parent / "images"), valid_size=0.2, seed=3)
    expected_paths = data.train.paths + data.test.paths
    assert [row["path"] for row in table] == expected_paths
    assert [row["split"] for row in table] == ["train"] * len(data.train) + ["test"] * len(data.test)
    assert [int(row["index"]) for row in table] == list(range(len(data.train))) + list(range(len(data.test)))
    assert [int(row["row"]) for row in table] == list(range(18))
    # Every image exactly once, and each label is the class folder the file sits in.
    assert sorted(expected_paths) == sorted(str(p) for p in (run.parent / "images").rglob("*.png"))
    folder_labels = [int(Path(p).parent.name.split("_")[1]) for p in expected_paths]
    assert labels.tolist() == folder_labels and labels.dtype == np.int64
    assert [row["class"] for row in table] == [Path(p).parent.name for p in expected_paths]
    assert features.dtype == np.float32 and features.shape == (18, 64)
    torch.testing.assert_close(torch.from_numpy(features), expected_h(run, expected_paths), rtol=1e-5, atol=1e-5)


def test_safetensors_holds_features_labels_and_paths(run, tmp_path, capsys):
    from safetensors import safe_open

    assert main(["embed", str(run), "--out", str(tmp_path / "all.npy")]) == 0
    out = tmp_path / "test.safetensors"
    assert main(["embed", str(run), "--split", "test", "--out", str(out), "--batch-size", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["rows"] == 3 and result["dim"] == 64
    with safe_open(str(out), framework="pt") as handle:
        meta = handle.metadata()
        features, labels = handle.get_tensor("features"), handle.get_tensor("labels")
    table = read_table(tmp_path / "all.csv")
    test_rows = [i for i, row in enumerate(table) if row["split"] == "test"]
    assert json.loads(meta["paths"]) == [table[i]["path"] for i in test_rows]
    assert json.loads(meta["splits"]) == ["test"] * 3 and json.loads(meta["indices"]) == [0, 1, 2]
    assert json.loads(meta["classes"]) == ["class_0", "class_1", "class_2"]
    assert labels.tolist() == [int(table[i]["label"]) for i in test_rows]
    # Batching does not change the rows: same as the full run's test rows (batch 256).
    torch.testing.assert_close(features, torch.from_numpy(np.load(tmp_path / "all.npy")[test_rows]), rtol=1e-5, atol=1e-5)
    assert meta["format"] == "simclr-embeddings-v1" and json.loads(meta["image_size"]) == 16


def test_unlabeled_folder_gives_pretraining_rows_with_label_minus_one(run, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    rng = np.random.default_rng(1)
    for k in (3, 1, 2):  # written out of order; the dataset lists them sorted
        Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(flat / f"photo_{k}.png")
    out = tmp_path / "flat.npy"
    assert main(["embed", str(run), "--data", str(flat), "--out", str(out)]) == 0
    table = read_table(tmp_path / "flat.csv")
    paths = [str(flat / f"photo_{k}.png") for k in (1, 2, 3)]
    assert [row["path"] for row in table] == paths
    assert {row["split"] for row in table} == {"pretrain"} and np.load(tmp_path / "flat.labels.npy").tolist() == [-1, -1, -1]
    torch.testing.assert_close(torch.from_numpy(np.load(out)), expected_h(run, paths), rtol=1e-5, atol=1e-5)
    assert main(["embed", str(run), "--data", str(flat), "--split", "test", "--out", str(out)]) == 2


def test_bad_output_name_is_refused_before_any_work(run, tmp_path, capsys):
    assert main(["embed", str(run), "--out", str(tmp_path / "features.txt")]) == 2
    assert capsys.readouterr().err.strip() == "error: --output must end in .npy or .safetensors, got 'features.txt'"
    assert main(["embed", str(run), "--out", str(tmp_path / "f.npy"), "--batch-size", "0"]) == 2
    assert "--batch-size must be >= 1" in capsys.readouterr().err
