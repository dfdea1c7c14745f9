"""The pieces of the training loop that take values: schedule, optimizer, loss, divergence, peak FLOP/s."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from benchmark.data import IGNORE


def lr_at(fraction: float, *, peak: float, warmup_fraction: float, min_lr_ratio: float) -> float:
    """Linear warmup, then cosine decay to min_lr_ratio * peak at exactly the end of the run's token
    budget: the schedule length matches the run (Hoffmann et al. 2022, Sec. 3 and Fig. A1, show that
    a cosine cycle longer than the run biases the loss and the fitted law)."""
    fraction = min(max(fraction, 0.0), 1.0)
    if warmup_fraction > 0 and fraction < warmup_fraction:
        return peak * fraction / warmup_fraction
    progress = (fraction - warmup_fraction) / max(1e-12, 1.0 - warmup_fraction)
    return peak * (min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def build_optimizer(model, *, lr: float, weight_decay: float, betas: tuple[float, float], device: str):
    """AdamW; weight decay on matrices only (not on norms), fused kernels on CUDA."""
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    extra = {"fused": True} if device == "cuda" else {"foreach": True}
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=1e-8, **extra)


def loss_sum(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed next-token cross-entropy (nats) over target positions; labels are aligned with inputs."""
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)).float(), labels[:, 1:].reshape(-1),
                           ignore_index=IGNORE, reduction="sum")


class TargetLoss(torch.nn.Module):
    """A causal LM that returns the summed next-token cross-entropy over target positions only.

    The LM head and the softmax run only on positions whose next token is a target (about a quarter
    of a packed row of the default tasks) instead of on every position: the same loss and gradients
    as projecting every position and ignoring the rest, for less compute. DDP wraps this module;
    with `compile`, the decoder (fixed shapes) goes through torch.compile and the head stays eager
    (its row count changes with every batch).
    """

    def __init__(self, lm, compile: bool = False):
        super().__init__()
        self.lm = lm
        # kept out of the module tree, so that parameter names and the checkpoint stay those of `lm`
        self.__dict__["decoder"] = torch.compile(lm.model) if compile else lm.model

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # use_cache=False: with a cache, transformers ignores the packed-row (block-diagonal) mask
        hidden = self.decoder(input_ids=input_ids, position_ids=position_ids, use_cache=False).last_hidden_state
        target = labels[:, 1:]
        keep = target != IGNORE
        logits = self.lm.lm_head(hidden[:, :-1][keep])
        return F.cross_entropy(logits.float(), target[keep], reduction="sum")


def n_targets(labels) -> int:
    return int((labels[:, 1:] != IGNORE).sum())


def autocast_for(device: str):
    """bf16 autocast on CUDA; plain fp32 on the CPU (bit-reproducible)."""
    if device == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def train_step(model, opt, batch, *, lr: float, grad_clip: float, device: str, rank: int = 0, world: int = 1,
               clip_params=None) -> tuple[float, float]:
    """One optimizer step on a global batch (numpy input_ids, labels, position_ids, n_real_tokens).

    `model` is a `TargetLoss` (or DDP around one): called on (input_ids, position_ids, labels) it
    returns the summed loss.

    Each of `world` processes takes rows rank, rank + world, ...; the loss is the global mean over
    target tokens, so any process count gives the same update (DDP averages the gradients).
    Returns (loss, gradient norm before clipping).
    """
    import numpy as np

    ids, labels, positions, _ = batch
    for g in opt.param_groups:
        g["lr"] = lr
    n_t = max(1, n_targets(labels))
    x, y, pos = (torch.from_numpy(np.ascontiguousarray(a[rank::world])).to(device, non_blocking=True)
                 for a in (ids, labels, positions))
    with autocast_for(device):
        total = model(x, pos, y)
    (total * (world / n_t)).backward()
    params = clip_params if clip_params is not None else [p for p in model.parameters()]
    gnorm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip > 0 else float("inf"))
    opt.step()
    opt.zero_grad(set_to_none=True)
    total = total.detach()
    if world > 1:
        torch.distributed.all_reduce(total)
    return float(total) / n_t, float(gnorm)


@dataclass
class DivergenceMonitor:
    """Flags NaN/inf, or an exponential moving average of the loss above `factor` x its minimum."""

    factor: float
    decay: float = 0.9
    ema: float | None = None
    best: float | None = None
    steps: int = 0

    def update(self, loss: float) -> str | None:
        """Returns a reason string if the run diverged at this step, else None."""
        if not math.isfinite(loss):
            return f"loss is {loss}"
        self.ema = loss if self.ema is None else self.decay * self.ema + (1 - self.decay) * loss
        self.steps += 1
        self.best = self.ema if self.best is None else min(self.best, self.ema)
        if self.steps > 10 and self.ema > self.factor * self.best:
            return f"smoothed loss {self.ema:.3g} > {self.factor:g} x its minimum {self.best:.3g}"
        return None

    def state_dict(self) -> dict:
        return {"ema": self.ema, "best": self.best, "steps": self.steps}

    def load_state_dict(self, d: dict) -> None:
        self.ema, self.best, self.steps = d["ema"], d["best"], d["steps"]


# Dense bf16 tensor-core peaks from the vendors' data sheets (FLOP/s, without sparsity).
GPU_BF16_PEAK = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12,
                 "L4": 121e12, "RTX 4090": 165e12, "A6000": 155e12, "V100": 125e12, "T4": 65e12}


def gpu_peak_flops(name: str) -> float | None:
    for key, peak in GPU_BF16_PEAK.items():
        if key.lower() in name.lower():
            return peak
    return None


def measure_matmul_peak(seconds: float = 0.6, n: int = 1024, dtype=torch.float32) -> float:
    """FLOP/s of a square matmul on the CPU, measured now: the best of several short windows after a
    warm-up (the CPU has no data-sheet peak we trust, and its clock ramps up under load)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    flops = 2 * n**3
    end = time.perf_counter() + max(0.5, seconds / 3)
    while time.perf_counter() < end:  # warm-up: thread pool start and clock ramp
        a @ b
    best = 0.0
    for _ in range(5):
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 7.5:
            a @ b
            reps += 1
        best = max(best, flops * reps / (time.perf_counter() - t0))
    return best
