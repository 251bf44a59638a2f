"""The training pieces: sampler sharding and resume, worker-independent views, learning on mnist5k."""

import torch

from simclr.augment import TwoViewTransform, ViewTransform
from simclr.data import TensorImages
from simclr.evaluate.run import evaluate_run
from simclr.train.loader import EpochSampler, TwoViewDataset, make_loader
from simclr.train.trainer import pretrain
from simclr.config import Config, load_preset, set_value


def test_sampler_covers_whole_batches_once_and_starts_mid_epoch():
    full = list(EpochSampler(103, 10, seed=1, epoch=2))
    assert len(full) == 100 and len(set(full)) == 100
    assert list(EpochSampler(103, 10, seed=1, epoch=2, start_step=4)) == full[40:]
    assert full != list(EpochSampler(103, 10, seed=1, epoch=3))


def test_rank_shards_are_disjoint_and_rebuild_each_global_batch():
    single = list(EpochSampler(64, 16, seed=0, epoch=1))
    shards = [list(EpochSampler(64, 16, seed=0, epoch=1, num_replicas=2, rank=r)) for r in range(2)]
    assert not set(shards[0]) & set(shards[1])
    for step in range(4):
        local = [shard[step * 8:(step + 1) * 8] for shard in shards]
        assert sorted(local[0] + local[1]) == sorted(single[step * 16:(step + 1) * 16])


def test_views_do_not_depend_on_worker_count():
    images = torch.randint(0, 256, (24, 3, 20, 20), dtype=torch.uint8)
    dataset = TwoViewDataset(TensorImages(images, torch.zeros(24)), TwoViewTransform(ViewTransform(16)), seed=5)
    dataset.epoch = 3
    batches = []
    for workers in (0, 2):
        loader = make_loader(dataset, EpochSampler(24, 8, seed=5, epoch=3), workers, pin_memory=False)
        batches.append(list(loader))
    assert len(batches[0]) == len(batches[1]) == 3
    for a, b in zip(*batches):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and torch.equal(a[3], b[3])


def test_short_pretraining_on_mnist5k_beats_random_encoder(tmp_path):
    """~60 steps of the demo recipe: the linear probe must beat the same network at init."""
    config = Config()
    load_preset(config, "demo")
    for key, value in {"train.output": str(tmp_path / "run"), "train.epochs": "4", "train.batch_size": "128",
                       "train.knn_every": "0", "optim.warmup_epochs": "1", "data.workers": "1"}.items():
        set_value(config, key, value)
    pretrain(config)
    trained = evaluate_run(tmp_path / "run", ("linear",))["linear"]["top1"]
    random = evaluate_run(tmp_path / "run", ("linear",), random_init=True)["linear"]["top1"]
    assert trained > random + 0.03, (trained, random)
