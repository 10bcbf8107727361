"""``train(cfg, exp_dir)``: multi-exit CTC training with dynamic chunk masks.

AdamW with linear warm-up and inverse-square-root decay, gradient clipping and accumulation, mixed
precision on CUDA, DDP through ``torchrun`` (NCCL on GPUs, gloo on CPU; lhotse's sampler shards
the batches), TensorBoard logs, a progress bar with the loss per exit and throughput.

Checkpoints (every ``checkpoint_every_steps`` and at each epoch end) are written atomically and
hold the model, optimizer, scheduler, sampler position, chunk-size RNG and global RNG states, so
``resume=True`` continues a killed run on exactly the batches it had not yet trained on.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from asr_ee.checkpoint import atomic_save, list_checkpoints, load_checkpoint, load_weights, remove_partial_saves
from asr_ee.config import ConfigError, save_yaml, to_dict
from asr_ee.data.datamodule import DataConfig, batch_lengths, make_train_loader, make_valid_loader
from asr_ee.data.tokenizer import Tokenizer
from asr_ee.exits.loss import exit_distillation_loss, multi_exit_ctc_loss
from asr_ee.models import EncoderConfig, build_encoder
from asr_ee.models.config import weight_layout_differences
from asr_ee.models.masks import ChunkDraw, ChunkSampler, DynamicChunkConfig, random_chunk_exits
from asr_ee.models.subsampling import subsampled_lengths

__all__ = ["OptimConfig", "TrainConfig", "train"]

log = logging.getLogger("asr_ee.train")


@dataclass
class OptimConfig:
    peak_lr: float = 2e-3
    warmup_steps: int = 400
    weight_decay: float = 1e-2
    grad_clip: float = 5.0
    accum_grad: int = 1
    # Cool-down: from step cooldown_start on, the learning rate falls linearly to 0 over cooldown_steps
    # and the run ends there (set it on a resumed run to finish it; None: the inverse-square-root
    # decay goes on until num_epochs / max_steps).
    cooldown_start: int | None = None
    cooldown_steps: int = 1000

    def __post_init__(self) -> None:
        if self.warmup_steps < 1 or self.accum_grad < 1 or self.peak_lr <= 0:
            raise ConfigError(f"optim: warmup_steps ({self.warmup_steps}) and accum_grad ({self.accum_grad}) "
                              f"must be >= 1 and peak_lr ({self.peak_lr}) > 0")
        if self.cooldown_steps < 1 or (self.cooldown_start is not None and self.cooldown_start < 0):
            raise ConfigError(f"optim: cooldown_steps ({self.cooldown_steps}) must be >= 1 and cooldown_start "
                              f"({self.cooldown_start}) >= 0")


@dataclass
class TrainConfig:
    """Everything a training run needs; saved in every checkpoint."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    chunk: DynamicChunkConfig = field(default_factory=lambda: DynamicChunkConfig(
        chunk_frames_choices=[4, 8, 16, 32], full_context_prob=0.3, left_context_chunks_choices=[2, 4, 8]))
    exit_loss_weights: list[float] | None = None
    distill_weight: float = 0.0  # > 0 adds self-distillation of the earlier exits from the last (see exits.loss)
    # how distill_weight is shared among the earlier exits (one entry per exit but the last; default equal shares);
    # e.g. [0, 0, 0.2, 0.5, 0.3] aims it at the exits a per-chunk gate stops at
    distill_exit_weights: list[float] | None = None
    init_from: str | None = None  # start a new run from these weights (checkpoint or exported model): fine-tuning
    num_epochs: int = 30
    max_steps: int | None = None
    max_wall_minutes: float | None = None
    checkpoint_every_steps: int = 500
    keep_last_checkpoints: int = 5
    valid_max_batches: int = 20
    log_every_steps: int = 20
    seed: int = 42
    device: str = "auto"
    num_threads: int | None = None
    log_batch_ids: bool = False

    def __post_init__(self) -> None:
        if self.exit_loss_weights is not None and len(self.exit_loss_weights) != len(self.encoder.exit_layers):
            raise ConfigError(f"exit_loss_weights has {len(self.exit_loss_weights)} entries for "
                              f"{len(self.encoder.exit_layers)} exits")
        if self.distill_weight < 0 or (self.distill_weight > 0 and len(self.encoder.exit_layers) < 2):
            raise ConfigError(f"distill_weight ({self.distill_weight}) must be >= 0, and > 0 needs two or more exits")
        weights = self.distill_exit_weights
        if weights is not None and (len(weights) != len(self.encoder.exit_layers) - 1 or min(weights, default=0) < 0):
            raise ConfigError(f"distill_exit_weights needs one weight >= 0 per exit but the last "
                              f"({len(self.encoder.exit_layers) - 1}), got {weights}")


def _lr_lambda(cfg: OptimConfig):
    def f(step: int) -> float:
        step = max(step, 1)
        scale = step / cfg.warmup_steps if step < cfg.warmup_steps else math.sqrt(cfg.warmup_steps / step)
        if cfg.cooldown_start is not None and step > cfg.cooldown_start:
            scale *= max(0.0, 1.0 - (step - cfg.cooldown_start) / cfg.cooldown_steps)
        return scale
    return f


@dataclass
class _Run:
    """Mutable state of a run (what a checkpoint restores besides the modules)."""

    step: int = 0
    epoch: int = 1
    wall_seconds: float = 0.0
    audio_seconds: float = 0.0


def _setup_distributed(device_name: str) -> tuple[int, int, torch.device]:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if device_name == "auto":
        device_name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return world_size, rank, device


def _rng_state() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def _set_rng_state(state: dict) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def _checkpoint(path: Path, cfg: TrainConfig, model, optimizer, scheduler, sampler,
                rngs: tuple[ChunkSampler, random.Random], run: _Run) -> None:
    chunks, augment_rng = rngs
    atomic_save({"train_config": to_dict(cfg), "encoder_config": to_dict(cfg.encoder),
                 "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "scheduler": scheduler.state_dict(), "sampler": sampler.state_dict(),
                 "chunk_sampler": chunks.state_dict(),
                 "rng": {**_rng_state(), "augment": augment_rng.getstate()}, "run": vars(run).copy()}, path)


def _prune(ckpt_dir: Path, keep: int) -> None:
    steps = list_checkpoints(ckpt_dir, prefix="step-")
    for old in steps[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)


@torch.no_grad()
def _validate(model, loader, tokenizer: Tokenizer, device, max_batches: int, weights) -> list[float]:
    model.eval()
    totals, count = None, 0
    for i, batch in enumerate(loader):
        if i >= max_batches:
            break
        lengths, texts, _ = batch_lengths(batch)
        outs, out_lens = model(batch["inputs"].to(device), lengths.to(device))
        _, per_exit = multi_exit_ctc_loss(outs, out_lens, tokenizer.encode_batch(texts), weights)
        vals = [float(x) * len(texts) for x in per_exit]
        totals = vals if totals is None else [a + b for a, b in zip(totals, vals)]
        count += len(texts)
    model.train()
    return [t / max(count, 1) for t in (totals or [])]


def _micro_step(model, batch, cfg: TrainConfig, tokenizer: Tokenizer, device, chunk: ChunkDraw, scale: float):
    lengths, texts, cut_ids = batch_lengths(batch)
    targets = tokenizer.encode_batch(texts)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    feats = batch["inputs"].to(device)
    chunk_exits = None
    if chunk.exits_seed is not None:  # train this batch the way a copy stream runs it
        frames = int(subsampled_lengths(torch.tensor([feats.size(1)]))[0])
        chunk_exits = random_chunk_exits(feats.size(0), frames, chunk.chunk_frames,
                                         len(cfg.encoder.exit_layers), chunk.exits_seed, device)
    with autocast:
        outs, out_lens = model(feats, lengths.to(device), chunk_frames=chunk.chunk_frames,
                               left_context_chunks=chunk.left_context_chunks, chunk_exits=chunk_exits)
    loss, per_exit = multi_exit_ctc_loss(outs, out_lens, targets, cfg.exit_loss_weights)
    if cfg.distill_weight > 0:
        loss = loss + cfg.distill_weight * exit_distillation_loss(outs, out_lens, cfg.distill_exit_weights)[0]
    (loss * scale).backward()
    duration = float(sum(c.duration for c in batch["supervisions"]["cut"]))
    return float(loss.detach()), [float(x) for x in per_exit], duration, cut_ids


def train(cfg: TrainConfig, exp_dir: str | Path, *, resume: bool = False) -> Path:
    """Train (or resume) a run in ``exp_dir``; returns the path of the last checkpoint written."""
    exp_dir = Path(exp_dir)
    world_size, rank, device = _setup_distributed(cfg.device)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    tokenizer = Tokenizer(cfg.data.path(cfg.data.tokenizer))
    if tokenizer.vocab_size != cfg.encoder.vocab_size:
        raise ConfigError(f"encoder.vocab_size {cfg.encoder.vocab_size} != tokenizer vocabulary "
                          f"{tokenizer.vocab_size} ({cfg.data.path(cfg.data.tokenizer)})")
    ckpt_dir = exp_dir / "checkpoints"
    existing = list_checkpoints(ckpt_dir)
    if existing and not resume:
        raise ConfigError(f"{exp_dir} already holds checkpoints; pass --resume to continue that run, "
                          "or choose a new --exp-dir")
    if rank == 0:
        for partial in remove_partial_saves(ckpt_dir):
            print(f"removed {partial}, a checkpoint whose writing was interrupted", flush=True)
        if resume and not existing:
            print(f"--resume: {ckpt_dir} holds no checkpoint; starting the run from scratch", flush=True)
    random.seed(cfg.seed), np.random.seed(cfg.seed), torch.manual_seed(cfg.seed)
    model = build_encoder(cfg.encoder).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.optim.peak_lr, weight_decay=cfg.optim.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(cfg.optim))
    augment_rng = random.Random(cfg.seed + rank)
    loader, sampler = make_train_loader(cfg.data, seed=cfg.seed, world_size=world_size, rank=rank,
                                        augment_rng=augment_rng)
    chunks, run = ChunkSampler(cfg.chunk, seed=cfg.seed), _Run()
    if existing and resume:
        state = load_checkpoint(existing[-1])
        if state["encoder_config"] != to_dict(cfg.encoder):
            raise ConfigError(f"{existing[-1]} was trained with a different encoder config; resume with the "
                              f"run's own config ({exp_dir / 'train.yaml'})")
        model.load_state_dict(state["model"]), optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"]), sampler.load_state_dict(state["sampler"])
        chunks.load_state_dict(state["chunk_sampler"]), _set_rng_state(state["rng"])
        if "augment" in state["rng"]:
            aug = state["rng"]["augment"]
            augment_rng.setstate((aug[0], tuple(aug[1]), aug[2]))
        run = _Run(**state["run"])
        if rank == 0:
            print(f"resuming from {existing[-1]} (step {run.step}, epoch {run.epoch})", flush=True)
    else:
        if cfg.init_from:
            _init_weights(model, cfg)
            if rank == 0:
                print(f"initialised from {cfg.init_from}", flush=True)
        sampler.set_epoch(run.epoch)
    ddp_model = torch.nn.parallel.DistributedDataParallel(model) if world_size > 1 else model
    if rank == 0:
        exp_dir.mkdir(parents=True, exist_ok=True)
        save_yaml(cfg, exp_dir / "train.yaml")
    return _loop(cfg, exp_dir, model, ddp_model, optimizer, scheduler, loader, sampler, (chunks, augment_rng), run,
                 tokenizer, device, rank)


def _init_weights(model, cfg: TrainConfig) -> None:
    """Load the weights of ``cfg.init_from`` (same encoder config required, except the dropout rate, which
    no weight depends on: fine-tuning with more dropout is a regularization choice); optimizer and
    schedule start fresh."""
    encoder_config, weights = load_weights(cfg.init_from)
    differing = weight_layout_differences(encoder_config, to_dict(cfg.encoder))
    if differing:
        raise ConfigError(f"init_from {cfg.init_from} has a different encoder config than this run ({', '.join(differing)})")
    model.load_state_dict(weights)


def _loop(cfg, exp_dir, model, ddp_model, optimizer, scheduler, loader, sampler, rngs, run, tokenizer,
          device, rank) -> Path:
    from torch.utils.tensorboard import SummaryWriter

    is_main = rank == 0
    writer = SummaryWriter(str(exp_dir / "tensorboard")) if is_main else None
    ckpt_dir = exp_dir / "checkpoints"
    last_path = ckpt_dir
    valid_loader = make_valid_loader(cfg.data) if is_main else None
    batch_log = open(exp_dir / f"batches.rank{rank}.log", "a") if cfg.log_batch_ids else None
    started, accum = time.time(), cfg.optim.accum_grad
    wall_at_start = run.wall_seconds
    model.train()
    done = False
    while run.epoch <= cfg.num_epochs and not done:
        bar = tqdm(desc=f"epoch {run.epoch}", disable=not is_main, unit="step", dynamic_ncols=True)
        micro, pending = 0, []
        optimizer.zero_grad(set_to_none=True)  # leftovers of an epoch that ended mid-accumulation
        for batch in loader:
            if micro == 0:
                chunk = rngs[0].draw()
            sync = micro == accum - 1
            ctx = ddp_model.no_sync() if (not sync and hasattr(ddp_model, "no_sync")) else contextlib.nullcontext()
            with ctx:
                pending.append(_micro_step(ddp_model, batch, cfg, tokenizer, device, chunk, 1.0 / accum))
            micro += 1
            if not sync:
                continue
            micro = 0
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
            optimizer.step(), optimizer.zero_grad(set_to_none=True), scheduler.step()
            run.step += 1
            run.audio_seconds += sum(p[2] for p in pending)
            run.wall_seconds = wall_at_start + time.time() - started
            if batch_log:
                batch_log.write(f"{run.step}\t{' '.join(i for p in pending for i in p[3])}\n"), batch_log.flush()
            if is_main:
                _log_step(cfg, run, pending, scheduler, writer, bar)
            pending = []
            if is_main and run.step % cfg.checkpoint_every_steps == 0:
                last_path = ckpt_dir / f"step-{run.step:08d}.pt"
                _checkpoint(last_path, cfg, model, optimizer, scheduler, sampler, rngs, run)
                _prune(ckpt_dir, cfg.keep_last_checkpoints)
                _log_valid(cfg, model, valid_loader, tokenizer, device, writer, run)
            cooled = cfg.optim.cooldown_start is not None and \
                run.step >= cfg.optim.cooldown_start + cfg.optim.cooldown_steps
            if (cfg.max_steps and run.step >= cfg.max_steps) or cooled or (
                    cfg.max_wall_minutes and (time.time() - started) / 60 >= cfg.max_wall_minutes):
                done = True
                break
        bar.close()
        if not done:
            run.epoch += 1
            sampler.set_epoch(run.epoch)
        if is_main:
            name = f"step-{run.step:08d}.pt" if done else f"epoch-{run.epoch - 1:04d}-step-{run.step:08d}.pt"
            last_path = ckpt_dir / name
            _checkpoint(last_path, cfg, model, optimizer, scheduler, sampler, rngs, run)
            _log_valid(cfg, model, valid_loader, tokenizer, device, writer, run)
    if writer:
        writer.close()
    if dist.is_initialized():
        dist.barrier()
    return last_path


def _log_step(cfg, run: _Run, pending, scheduler, writer, bar) -> None:
    per_exit = np.mean([p[1] for p in pending], axis=0)
    loss = float(np.mean([p[0] for p in pending]))
    speed = run.audio_seconds / max(run.wall_seconds, 1e-6)
    bar.update(1)
    bar.set_postfix_str(f"step {run.step} loss {loss:.2f} exits " + "/".join(f"{x:.1f}" for x in per_exit)
                        + f" {speed:.0f} audio-s/s lr {scheduler.get_last_lr()[0]:.1e}")
    if run.step % cfg.log_every_steps == 0:
        writer.add_scalar("train/loss", loss, run.step)
        writer.add_scalar("train/lr", scheduler.get_last_lr()[0], run.step)
        writer.add_scalar("train/audio_seconds_per_second", speed, run.step)
        for i, x in enumerate(per_exit):
            writer.add_scalar(f"train/loss_exit{cfg.encoder.exit_layers[i]}", x, run.step)
        log.info("step %d loss %.3f per-exit %s %.1f audio-s/s", run.step, loss,
                 " ".join(f"{x:.2f}" for x in per_exit), speed)


def _log_valid(cfg, model, loader, tokenizer, device, writer, run: _Run) -> None:
    losses = _validate(model, loader, tokenizer, device, cfg.valid_max_batches, cfg.exit_loss_weights)
    for i, x in enumerate(losses):
        writer.add_scalar(f"valid/loss_exit{cfg.encoder.exit_layers[i]}", x, run.step)
    tqdm.write(f"step {run.step} valid loss per exit " + " ".join(f"{x:.2f}" for x in losses))
