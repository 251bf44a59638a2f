"""SimCLR trained by lightly 1.6.0's own pipeline on OUR network and hyper-parameters, probed by OUR evaluation.

    benchmarks/peers/.venv-lightly/bin/python benchmarks/peers/lightly_simclr.py \\
        --like runs/ours --output runs/lightly --time-budget 300

``--like`` is a run folder of ``simclr pretrain``: its ``config.yaml`` (the resolved config that
run trained with) gives the data, the network (built by ``simclr.runs.build_model``: same
architecture, width, stem, input normalisation and, with the same seed, the same initial
weights), the optimizer (``simclr.optim``: LARS, same base LR and scaling, weight decay,
momentum), batch size, temperature, augmentation strengths and the warm-up's share of the
schedule. Lightly supplies what it has of its own: ``SimCLRTransform`` (PIL/torchvision views
made per image in DataLoader workers), ``LightlyDataset`` + ``MultiViewCollate``, ``NTXentLoss``
and ``SimCLRProjectionHead`` (which also puts BatchNorm on its output layer, unlike ours).

The wall-clock budget counts from the start of the script, as ``simclr pretrain --time-budget``
does: after a few timed steps (taken at LR 0 and then undone) the warm-up + cosine schedule is
sized to end inside it, its length is corrected at every step by the loop's pace, and no step
starts that would end past the budget. The encoder is then
saved as a simclr run folder (``--output``; the head's output BatchNorm folded into its last
linear layer), so ``simclr linear-eval OUTPUT --json`` / ``simclr knn OUTPUT --json`` read it;
unless ``--no-eval``, the same two probes run here and the last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import importlib.metadata
import json
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from lightly.data import LightlyDataset, MultiViewCollate
from lightly.loss import NTXentLoss
from lightly.models.modules.heads import SimCLRProjectionHead
from lightly.transforms import SimCLRTransform
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.functional import to_pil_image

from simclr import checkpoint as ckpt
from simclr.config import Config, save_config
from simclr.data import DataSplits
from simclr.data.datasets import ImageFiles, TensorImages
from simclr.optim import build_optimizer, parameter_groups, scaled_lr, set_lr, warmup_cosine_lr
from simclr.runs import build_model, load_config_data, load_run_config, resolve_device, resolve_precision

TIMED_STEPS = (3, 8)  # at least / at most this many steps timed (after one untimed first step) to size the schedule
PREFETCH = 2  # batches each DataLoader worker keeps ready (torch's default)
CALIBRATION_SHARE = 0.05  # stop timing more steps once timing has used this share of the budget
MARGIN_SHARE, MARGIN_SECONDS = 0.03, 1.0  # of the budget kept free, as simclr's budget planner does
DEFAULT_WARMUP_SHARE = 0.1  # when the reference run's config does not say
RESOLVED = ("data.image_size", "augment.crop_scale", "augment.flip_p", "augment.gray_p", "augment.blur_p", "model.arch",
            "model.width", "optim.lr", "optim.lr_scaling", "train.batch_size", "train.temperature")  # must be set in --like


class _PilImages(Dataset):
    """An in-memory ``TensorImages`` (mnist5k, torchvision sets) as (PIL image, label) for lightly's transform."""

    def __init__(self, images: TensorImages) -> None:
        self.images = images
        self.transform: Any = None  # set by LightlyDataset.from_torch_dataset

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image, label = self.images[index]
        pil = to_pil_image(image)
        return (self.transform(pil) if self.transform is not None else pil), label


def lightly_dataset(pretrain: Dataset, transform: SimCLRTransform) -> LightlyDataset:
    """The images simclr pretrains on, read by lightly: its own folder reader for files, else a wrapped tensor set."""
    if isinstance(pretrain, ImageFiles):
        paths = [os.path.abspath(p) for p in pretrain.paths]
        # The class folders' parent (lightly reads it as an ImageFolder), or the one folder of a flat set;
        # lightly's labels are not used.
        root = os.path.commonpath([os.path.dirname(p) for p in paths])
        return LightlyDataset(root, transform=transform, filenames=[os.path.relpath(p, root) for p in paths])
    if isinstance(pretrain, TensorImages):
        return LightlyDataset.from_torch_dataset(_PilImages(pretrain), transform=transform)
    raise SystemExit(f"error: cannot hand {type(pretrain).__name__} to lightly")


def lightly_transform(config: Config) -> SimCLRTransform:
    """lightly's SimCLR views with our config's strengths; lightly normalises nothing (our network does)."""
    a = config.augment
    if tuple(a.crop_scale)[1] != 1.0 or tuple(round(r, 4) for r in a.crop_ratio) != (0.75, 1.3333):
        warnings.warn("lightly's SimCLRTransform crops with scale (min, 1) and ratio (3/4, 4/3) only; "
                      f"the reference run used scale {tuple(a.crop_scale)}, ratio {tuple(a.crop_ratio)}", stacklevel=2)
    if a.solarize_p:
        warnings.warn(f"lightly's SimCLRTransform has no solarization; the reference run used p = {a.solarize_p}", stacklevel=2)
    return SimCLRTransform(
        input_size=config.data.image_size, cj_prob=a.color_p, cj_strength=a.color_strength, min_scale=a.crop_scale[0],
        random_gray_scale=a.gray_p, gaussian_blur=a.blur_p, sigmas=tuple(a.blur_sigma), hf_prob=a.flip_p, normalize=None,
    )


def lightly_head(config: Config, feature_dim: int) -> SimCLRProjectionHead:
    m = config.model
    if m.head != "mlp":
        raise SystemExit(f"error: lightly's SimCLRProjectionHead is an MLP; the reference run used model.head={m.head}")
    return SimCLRProjectionHead(feature_dim, m.hidden_dim or feature_dim, m.out_dim, num_layers=m.proj_layers)


@torch.no_grad()
def copy_head(source: SimCLRProjectionHead, target: nn.Module) -> None:
    """Lightly's head into ours: linear layers and hidden BatchNorms as they are, the output BatchNorm folded (eval-mode exact)."""
    src_linear = [m for m in source.modules() if isinstance(m, nn.Linear)]
    src_norm = [m for m in source.modules() if isinstance(m, nn.BatchNorm1d)]
    dst_linear = [m for m in target.modules() if isinstance(m, nn.Linear)]
    dst_norm = [m for m in target.modules() if isinstance(m, nn.BatchNorm1d)]
    assert len(src_linear) == len(dst_linear) and len(src_norm) == len(dst_norm) + 1, "head layouts differ"
    for src, dst in zip(src_linear[:-1], dst_linear[:-1]):
        dst.weight.copy_(src.weight)
    for src, dst in zip(src_norm[:-1], dst_norm):
        dst.load_state_dict(src.state_dict())
    last, norm, out = src_linear[-1], src_norm[-1], dst_linear[-1]
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    out.weight.copy_(scale[:, None] * last.weight)
    out.bias.copy_(norm.bias - scale * norm.running_mean + (scale * last.bias if last.bias is not None else 0.0))


def warmup_share(config: Config, steps_per_epoch: int) -> float:
    """The reference run's warm-up as a share of its schedule (its total steps, else epochs x steps per epoch)."""
    total = getattr(config.train, "total_steps", None) or (config.train.epochs or 0) * steps_per_epoch
    if config.optim.warmup_epochs is None or not total:
        return DEFAULT_WARMUP_SHARE
    return min(1.0, config.optim.warmup_epochs * steps_per_epoch / total)


class Trainer:
    """One SimCLR step with lightly's loss on (our encoder, lightly's head)."""

    def __init__(self, encoder_net: nn.Module, head: nn.Module, config: Config, device: torch.device, peak_lr: float) -> None:
        self.model, self.head, self.device, self.peak_lr = encoder_net, head, device, peak_lr
        o = config.optim
        self.optimizer = build_optimizer(o.optimizer, parameter_groups(nn.ModuleList([encoder_net, head]), o.weight_decay),
                                         peak_lr, o.weight_decay, o.momentum)
        self.criterion = NTXentLoss(temperature=config.train.temperature)
        self.amp = resolve_precision(config.train.precision, device)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp == torch.float16)
        self.grad_clip = o.grad_clip

    def step(self, views: list[Tensor], lr: float) -> float:
        set_lr(self.optimizer, lr)
        x0, x1 = (v.to(self.device, non_blocking=True) for v in views)
        with torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None):
            z0 = self.head(self.model.encode(x0))
            z1 = self.head(self.model.encode(x1))
        loss = self.criterion(z0.float(), z1.float())
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.grad_clip:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_([*self.model.parameters(), *self.head.parameters()], self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return float(loss.detach())

    def snapshot(self) -> dict[str, Any]:
        return copy.deepcopy({"model": self.model.state_dict(), "head": self.head.state_dict(),
                              "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict()})

    def restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.head.load_state_dict(state["head"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])


def batches(loader: DataLoader):  # noqa: ANN201 (an endless generator of view lists)
    while True:
        for views, _, _ in loader:
            yield views


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train(config: Config, data: DataSplits, budget: float, started: float, device: torch.device) -> tuple[nn.Module, dict[str, Any]]:
    """Train under the budget; returns our SimCLR network (trained encoder, head copied in) and the run's numbers."""
    t = config.train
    torch.manual_seed(t.seed)  # as simclr pretrain: the same seed gives the same initial network
    model = build_model(config, data.mean, data.std).to(device)
    head = lightly_head(config, model.feature_dim).to(device)
    dataset = lightly_dataset(data.pretrain, lightly_transform(config))
    workers = config.data.workers or 0
    loader = DataLoader(dataset, batch_size=t.batch_size, shuffle=True, drop_last=True, num_workers=workers,
                        collate_fn=MultiViewCollate(), persistent_workers=workers > 0, pin_memory=device.type == "cuda",
                        prefetch_factor=PREFETCH if workers else None,
                        generator=torch.Generator().manual_seed(t.seed))
    steps_per_epoch = len(loader)
    peak = scaled_lr(config.optim.lr, t.batch_size, config.optim.lr_scaling)
    trainer = Trainer(model, head, config, device, peak)
    model.train()
    head.train()
    stream = batches(loader)

    # Size the schedule: time a few steps at LR 0, then undo them. The first step and the batches the
    # workers had prefetched meanwhile are not timed: they would hide a loader slower than the model.
    saved = trainer.snapshot()
    untimed = 1 + workers * PREFETCH
    times: list[float] = []
    low, high = TIMED_STEPS
    timed = times[untimed:]
    while len(timed) < high and not (len(timed) >= low and sum(times) > CALIBRATION_SHARE * budget):
        begin = time.perf_counter()
        trainer.step(next(stream), 0.0)
        _sync(device)
        times.append(time.perf_counter() - begin)
        timed = times[untimed:]
    trainer.restore(saved)
    step_seconds = sorted(timed)[len(timed) // 2]
    deadline = started + budget - MARGIN_SHARE * budget - MARGIN_SECONDS
    planned = math.floor((deadline - time.perf_counter()) / step_seconds)
    if planned < 1:
        raise SystemExit(f"error: a budget of {budget:g} s is too short: {time.perf_counter() - started:.1f} s went to loading "
                         f"and timing, and a step takes {step_seconds:.2f} s")
    share = warmup_share(config, steps_per_epoch)

    # The schedule's length is the plan, corrected at every step by the pace of the loop so far (a loader
    # that falls behind shows only after the prefetched batches are used up): it always ends at the budget.
    loop_start, done, loss, total, warmup, last = time.perf_counter(), 0, float("nan"), planned, round(share * planned), 0.0
    while True:
        now = time.perf_counter()
        pace = (now - loop_start) / done if done else step_seconds
        total = done + math.floor((deadline - now) / pace)
        if total <= done or now + last > deadline:  # no step that would end past the budget
            break
        warmup = min(total, round(share * total))
        loss = trainer.step(next(stream), warmup_cosine_lr(done, total, warmup, peak))
        if not math.isfinite(loss):
            raise SystemExit(f"error: loss became {loss} at step {done}")
        done += 1
        last = time.perf_counter() - now
    if not done:
        raise SystemExit(f"error: the budget of {budget:g} s was spent before the first training step")
    _sync(device)
    seconds = time.perf_counter() - loop_start
    model.eval()
    head.eval()
    copy_head(head, model.head)
    stats = {"steps": done, "planned_steps": planned, "timed_steps_s": [round(x, 3) for x in times], "warmup_steps": warmup,
             "steps_per_epoch": steps_per_epoch, "epochs": round(done / steps_per_epoch, 2), "step_s": round(step_seconds, 4),
             "loop_step_s": round(seconds / done, 4), "train_loop_s": round(seconds, 1),
             "images_per_s": round(done * t.batch_size / seconds, 1) if seconds > 0 else None, "final_loss": round(loss, 4),
             "peak_lr": peak, "batch_size": t.batch_size, "workers": workers}
    return model, stats


def save_run(model: nn.Module, config: Config, output: Path, stats: dict[str, Any], budget: float) -> Path:
    """A simclr run folder: ``config.yaml`` and ``checkpoints/step-N.pt`` (model weights, step, config)."""
    config = copy.deepcopy(config)
    t = config.train
    t.output, t.max_steps = str(output), None
    # The schedule that ran (it ends at the last step), in the config's terms (``train.total_steps`` where this simclr has it).
    t.epochs = max(1, math.ceil(stats["steps"] / stats["steps_per_epoch"]))
    config.optim.warmup_epochs = round(stats["warmup_steps"] / stats["steps_per_epoch"], 4)
    for key, value in (("total_steps", stats["steps"]), ("time_budget", f"{budget:g}s")):
        if key in {f.name for f in dataclasses.fields(t)}:
            setattr(t, key, value)
    output.mkdir(parents=True, exist_ok=True)
    save_config(config, output / "config.yaml")
    state = {"step": stats["steps"], "model": {k: v.cpu() for k, v in model.state_dict().items()}, "config": config.to_dict(),
             "peer": {"trainer": f"lightly {importlib.metadata.version('lightly')}", **stats}}
    return ckpt.save_checkpoint(state, output / "checkpoints", keep=1)


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--like", required=True, type=Path, help="a simclr run folder whose config.yaml to train with")
    parser.add_argument("--output", required=True, type=Path, help="run folder to write (config.yaml + checkpoints/)")
    parser.add_argument("--time-budget", required=True, type=float, help="wall-clock seconds for loading + training")
    parser.add_argument("--data", help="train on this data instead of the reference run's")
    parser.add_argument("--device", help="cpu, cuda, ... (default: the reference run's train.device)")
    parser.add_argument("--workers", type=int, help="DataLoader workers (default: the reference run's data.workers)")
    parser.add_argument("--in-memory", action="store_true",
                        help="hand lightly the folder decoded in memory (as simclr holds a small folder) instead of "
                             "its files read by LightlyDataset, as a lightly user would")
    parser.add_argument("--no-eval", action="store_true", help="only train and save")
    args = parser.parse_args(argv)
    if args.output.exists() and any(args.output.iterdir()):
        parser.error(f"--output '{args.output}' exists and is not empty")

    config = load_run_config(args.like)
    if args.data:
        config.data.name = args.data
    if args.workers is not None:
        config.data.workers = args.workers
    device = resolve_device(args.device or config.train.device)
    config.data.in_memory = args.in_memory
    data = load_config_data(config)
    unset = [key for key in RESOLVED if getattr(getattr(config, key.split(".")[0]), key.split(".")[1]) is None]
    if unset:
        raise SystemExit(f"error: '{args.like}/config.yaml' is not the resolved config of a run ({', '.join(unset)} unset)")

    model, stats = train(config, data, args.time_budget, started, device)
    wall = time.perf_counter() - started
    path = save_run(model, config, args.output, stats, args.time_budget)
    print(f"saved {path}", file=sys.stderr)
    result: dict[str, Any] = {"peer": f"lightly {importlib.metadata.version('lightly')}", "data": data.name,
                              "run": str(args.output), "wall_s": round(wall, 1), "budget_s": args.time_budget, **stats}
    if not args.no_eval:
        from simclr.evaluate.run import evaluate_run  # what `simclr linear-eval` / `simclr knn` run

        begin = time.perf_counter()
        evaluated = evaluate_run(args.output, ("linear", "knn"), device=str(device))
        result.update(linear_top1=evaluated["linear"]["top1"], knn_top1=evaluated["knn"]["top1"],
                      eval_s=round(time.perf_counter() - begin, 1))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
