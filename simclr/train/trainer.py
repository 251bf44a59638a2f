"""The pretraining loop: two views, f and g, NT-Xent, LARS, warm-up + cosine, checkpoints.

Read top to bottom: ``pretrain`` builds a run from a ``Config`` (``simclr.train.setup``), then
``_train`` runs ``train_step`` over seeded two-view batches, logging, checkpointing and
monitoring as it goes. Under ``torchrun`` every process runs this same loop on its shard of
each global batch; ``simclr.distributed`` holds what differs, and only rank 0 writes files.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import torch
from tqdm import tqdm

from simclr import checkpoint as ckpt
from simclr import distributed
from simclr.config import Config, save_config
from simclr.errors import SimCLRError
from simclr.evaluate.run import run_protocols
from simclr.optim import set_lr
from simclr.train.metrics import read_metrics
from simclr.train.plots import plot_metrics
from simclr.train.preemption import StopRequest
from simclr.train.setup import Run, build_run
from simclr.train.step import StepStats, train_step
from simclr.validation import validate_for_training

log = logging.getLogger("simclr")


def pretrain(config: Config, resume: bool = False) -> dict[str, Any]:
    """Run (or resume) SimCLR pretraining as ``config`` says; returns a summary of the run.

    Launched by ``torchrun``, every process calls this; ``train.batch_size`` is the global batch.
    """
    started = time.perf_counter()  # train.time_budget counts from here
    validate_for_training(config)
    with distributed.session(config.train.device) as process:
        if not process.is_main:
            logging.getLogger("simclr").setLevel(logging.WARNING)
        return _train(build_run(config, resume, process, started))


def _train(run: Run) -> dict[str, Any]:
    """The loop: one ``train_step`` per batch; rows, kNN monitor, stop requests and checkpoints at their steps."""
    state, t = run.state, run.config.train
    started, first_step, stopped_by = time.perf_counter(), state.step, None
    with StopRequest() as stop, _Outputs(run) as out:
        if run.pacer:
            run.pacer.start()
        for batch in run.batches.iterate(state.step, run.batch_limit):
            epoch, lr = state.step // run.steps_per_epoch, run.lr(state.step)
            set_lr(state.optimizer, lr)
            stats = train_step(state, batch)
            state.step += 1
            out.after_step(epoch, lr, stats)
            stopped_by = out.stop_reason(stop)
            if state.step % t.checkpoint_every == 0 or state.step == run.stop_step or stopped_by:
                out.save()
            if stopped_by or state.step >= run.stop_step:
                break
        out.flush()
    return _finish(run, time.perf_counter() - started, state.step - first_step, stopped_by)


class _Outputs:
    """What the loop reports: progress bar, metrics rows, kNN monitor, checkpoints (files on rank 0 only)."""

    def __init__(self, run: Run) -> None:
        self.run, self.pending = run, StepStats()
        c, s = run.config, run.state.settings
        log.info("pretraining %s (h: %d-d) on %s: %d images, %d steps/epoch, %d steps, global batch %d over %d process(es), "
                 "peak lr %.4g, device %s, precision %s, %s augmentation", c.model.arch, run.state.model.feature_dim, run.data.name,
                 len(run.data.pretrain), run.steps_per_epoch, run.stop_step, c.train.batch_size, run.process.world_size, run.lr_peak,
                 run.process.device, s.amp_dtype or "fp32", c.augment.pipeline.replace("_", "-"))
        self.progress = tqdm(total=run.stop_step, initial=run.state.step, desc="pretrain", unit="step", dynamic_ncols=True,
                             disable=not run.process.is_main)

    def __enter__(self) -> _Outputs:
        return self

    def __exit__(self, *error: object) -> None:
        self.progress.close()  # so an error message starts on its own line

    def after_step(self, epoch: int, lr: float, stats: dict[str, torch.Tensor]) -> None:
        """Queue the step's scalars; read them every ``log_every`` steps; run the kNN monitor at its epochs."""
        run, t, step = self.run, self.run.config.train, self.run.state.step
        self.progress.update(1)
        self.pending.add(step, epoch, lr, stats)
        if step % t.log_every == 0:
            self.flush()
            if run.pacer:
                t.total_steps = run.pacer.replan(step, t.total_steps)
                t.epochs = math.ceil(t.total_steps / run.steps_per_epoch)
                self.progress.total = run.stop_step
        if step % run.steps_per_epoch == 0 and t.knn_every and run.data.test is not None and (epoch + 1) % t.knn_every == 0:
            self.flush()  # before the checkpoint, so a run killed in between redoes it on resume
            knn_top1 = run_protocols(run.state.model, run.config, run.data, run.process.device, ("knn",), ())[0].top1
            if run.logger:
                run.logger.log({"step": step, "epoch": epoch, "knn_top1": knn_top1})
            log.info("epoch %d: kNN top-1 %.4f", epoch + 1, knn_top1)

    def stop_reason(self, stop: StopRequest) -> str | None:
        """Why to stop now, as every process agrees: a signal, or a budgeted run's deadline (a safety net: the
        schedule was sized to end before). One collective, polled by several processes only when they log."""
        run = self.run
        if run.process.world_size > 1 and run.state.step % run.config.train.log_every:
            return None
        late = run.deadline is not None and run.state.step < run.stop_step and time.perf_counter() > run.deadline
        if not distributed.any_rank(stop.requested or late, run.process.device):
            return None
        if stop.requested:
            return stop.signal_name
        return "the time budget" if late else "a stop on another process"

    def flush(self) -> None:
        rows = self.pending.drain()  # a collective: every process flushes at the same steps
        for row in rows if self.run.logger else []:
            self.run.logger.log(row)
        for row in rows:  # stop at the first non-finite loss, naming the step
            if not math.isfinite(row["loss"]):
                _stop_non_finite(f"loss became {row['loss']} at step {row['step']}", self.run)
        if rows:
            self.progress.set_postfix(loss=f"{rows[-1]['loss']:.4f}", lr=f"{rows[-1]['lr']:.3g}")

    def save(self) -> None:
        self.flush()  # also the finiteness checks: a checkpoint never holds weights after a NaN
        run = self.run
        # Step s's loss is computed before its update, so the update (or BatchNorm's statistics) can still overflow.
        if not torch.stack([t.isfinite().all() for t in run.state.model.state_dict().values() if t.is_floating_point()]).all():
            _stop_non_finite(f"weights became non-finite at step {run.state.step}", run)
        if run.logger:
            run.logger.flush()  # metrics.jsonl on disk up to the checkpoint's step, so a kill loses no row
            ckpt.save_checkpoint(run.state.state_dict(run.config), run.run_dir / "checkpoints", run.config.train.keep_checkpoints)


def _finish(run: Run, seconds: float, steps: int, stopped_by: str | None) -> dict[str, Any]:
    """Close the outputs, plot the curves and return the run's summary."""
    summary = {"run_dir": str(run.run_dir), "steps": run.state.step, "seconds": round(seconds, 1),
               "images_per_second": round(steps * run.config.train.batch_size / max(seconds, 1e-9), 1),
               "processes": run.process.world_size, "stopped_by": stopped_by, "skipped_images": len(run.data.skipped)}
    if run.logger:
        save_config(run.config, run.run_dir / "config.yaml")  # a budgeted run's schedule as it ended
        run.logger.close()
        plot_metrics(read_metrics(run.run_dir / "metrics.jsonl"), run.run_dir / "plots")
    distributed.barrier()  # nobody leaves (and tears the group down) before rank 0 has finished writing
    if stopped_by:
        log.warning("stopped by %s at step %d; checkpoint saved. Resume with: simclr pretrain --output %s --resume",
                    stopped_by, run.state.step, run.run_dir)
    else:
        log.info("finished: %s", summary)
    return summary


def _stop_non_finite(what: str, run: Run) -> None:
    causes = f"the learning rate may be too high (peak {run.lr_peak:.4g}; try a lower --lr or --grad-clip)"
    if run.state.settings.amp_dtype == torch.float16:
        causes += ", or fp16 overflowed (try --precision bf16 or fp32)"
    raise SimCLRError(f"{what}: {causes}; the checkpoints in '{run.run_dir / 'checkpoints'}' from before it are kept")
