"""``simclr report``: a self-contained page whose images decode and which a real browser renders."""

import base64
import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from simclr.cli.main import main
from simclr.report import html
from simclr.report.figures import cosine_neighbours, tsne_2d

from conftest import TINY_ARGS, make_image_folder

RESULTS_MD = "| encoder | linear top-1 | kNN top-1 |\n|---|---:|---:|\n| SimCLR | 81.25% | 75.00% |\n| random init | 43.75% | 50.00% |\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """3 classes x 15 images: 9 test images (enough for a t-SNE map), kNN monitor on."""
    root = tmp_path_factory.mktemp("report")
    folder = make_image_folder(root / "images", classes=3, per_class=15)
    assert main(["pretrain", "--data", str(folder), "--output", str(root / "run"), *TINY_ARGS, "--max-steps", "6", "--knn-every", "1"]) == 0
    (root / "run" / "results.md").write_text(RESULTS_MD)
    return root / "run"


@pytest.fixture(scope="module")
def report(run) -> Path:
    assert main(["report", str(run), "--queries", "3", "--k", "4"]) == 0
    return run / "report.html"


@pytest.fixture(scope="module")
def chromium() -> str:
    """The chromium binary, installed with apt-get when missing (as root); skip only if that fails."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for step in (["apt-get", "install", "-y", "chromium"], ["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
            subprocess.run(step, capture_output=True, timeout=900, env=env)
            found = shutil.which("chromium")
            if found:
                break
    if found is None:
        pytest.skip("chromium is not installed and could not be installed with 'apt-get install -y chromium'")
    return found


def decode_png(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    image.load()
    return np.asarray(image.convert("RGB"))


def test_report_is_self_contained_and_every_png_decodes(run, report, capsys):
    text = report.read_text(encoding="utf-8")
    pngs = sorted(p.name for p in (run / "report").glob("*.png"))
    assert pngs == ["accuracy.png", "embedding_map.png", "loss.png", "lr.png", "retrieval.png"]
    for name in pngs:
        pixels = decode_png((run / "report" / name).read_bytes())
        assert pixels.shape[0] > 100 and pixels.shape[1] > 100 and pixels.std() > 5, name
    # Every resource is inline: no URL anywhere, each <img> a base64 PNG that decodes.
    assert not re.search(r"(?:src|href)\s*=\s*[\"']?(?:https?:|//|file:)", text)
    assert "<link" not in text and "<script" not in text and "url(" not in text
    sources = re.findall(r'<img src="([^"]*)"', text)
    assert len(sources) == 6  # loss, lr, accuracy, augmentations, embedding map, neighbours
    assert len(sources) == text.count("<img")
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        decode_png(base64.b64decode(source.split(",", 1)[1], validate=True))
    for heading in ("Run", "Evaluation", "Training curves", "Augmentations", "Embedding map", "Nearest neighbours", "Configuration"):
        assert f"<h2>{heading}</h2>" in text
    # results.md is embedded as a table with its own cells.
    assert "<th>linear top-1</th>" in text and '<td>81.25%</td>' in text and "<td>random init</td>" in text


def test_report_renders_in_headless_chromium(report, chromium, tmp_path):
    shot = tmp_path / "shot.png"
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}",
               f"--screenshot={shot}", "--window-size=1200,2000", report.resolve().as_uri()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    pixels = decode_png(shot.read_bytes()).astype(np.float64)
    assert pixels.shape[:2] == (2000, 1200)
    not_white = (pixels < 245).any(axis=2)
    assert pixels.std() > 20 and not_white.mean() > 0.05  # text, tables and plots, not a blank page
    # Coloured pixels (curves, augmented images) prove the inlined PNGs were drawn, not just text.
    saturation = pixels.max(axis=2) - pixels.min(axis=2)
    assert (saturation > 80).mean() > 0.01


def test_report_of_unlabeled_data_maps_pretraining_images(run, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    rng = np.random.default_rng(0)
    for k in range(8):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(flat / f"{k}.png")
    (run / "report.html").unlink(missing_ok=True)
    assert main(["report", str(run), "--data", str(flat), "--queries", "2", "--k", "3"]) == 0
    text = (run / "report.html").read_text()
    assert "8 pretraining images" in text and "the other 7 images" in text


def test_report_errors_are_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"error: '{tmp_path}' is not a simclr run folder (no config.yaml)"
    assert main(["report", str(tmp_path), "--k", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --k must be >= 1, got 0"


def test_cosine_neighbours_match_brute_force():
    g = torch.Generator().manual_seed(0)
    queries, gallery = torch.randn(5, 7, generator=g), torch.randn(12, 7, generator=g)
    sims, index = cosine_neighbours(queries, gallery, 3)
    for q in range(5):
        cosines = [float(queries[q] @ gallery[j] / (queries[q].norm() * gallery[j].norm())) for j in range(12)]
        best = sorted(range(12), key=lambda j: -cosines[j])[:3]
        assert index[q].tolist() == best
        assert sims[q].tolist() == pytest.approx([cosines[j] for j in best], abs=1e-6)
    # A set against itself, leaving each query out: its own row is never returned.
    sims, index = cosine_neighbours(gallery[:4], gallery, 11, exclude=torch.arange(4))
    assert index.shape == (4, 11) and all(q not in index[q].tolist() for q in range(4))


def test_tsne_is_seeded_and_separates_clusters():
    g = torch.Generator().manual_seed(0)
    centres = torch.eye(3, 16) * 10
    features = torch.cat([c + torch.randn(10, 16, generator=g) for c in centres])
    a, b = tsne_2d(features, seed=1), tsne_2d(features, seed=1)
    assert a.shape == (30, 2) and np.array_equal(a, b)
    # Each point's nearest neighbour in the map belongs to its own cluster.
    distances = np.linalg.norm(a[:, None] - a[None], axis=2) + np.eye(30) * 1e9
    assert (distances.argmin(axis=1) // 10 == np.arange(30) // 10).all()


def test_markdown_tables_and_text():
    out = html.markdown("# Results\nsome <text>\n\n" + RESULTS_MD)
    assert out.startswith("<h3>Results</h3>\n<pre>some &lt;text&gt;</pre>")
    assert "<tr><th>encoder</th><th>linear top-1</th><th>kNN top-1</th></tr>" in out
    assert out.count("<tr>") == 3  # header + 2 rows; the |---| line is not a row
