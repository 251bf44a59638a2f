"""Pretraining learns: a short run on mnist5k beats the same network at random init."""

from simclr.evaluate.run import evaluate_run
from simclr.train.trainer import pretrain
from simclr.config import Config, load_preset, set_value


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
