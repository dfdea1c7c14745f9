"""The pieces of the training loop that take values: schedule, optimizer, loss, divergence, peak FLOP/s."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from benchmark.training.data import IGNORE


def lr_at(fraction: float, *, peak: float, warmup_fraction: float, min_lr_ratio: float) -> float:
    """Linear warmup, then cosine decay to min_lr_ratio * peak at exactly the end of the run's token
    budget: the schedule length matches the run (Hoffmann et al. 2022, Sec. 3 and Fig. A1, show that
    a cosine cycle longer than the run biases the loss and the fitted law)."""
    fraction = min(max(fraction, 0.0), 1.0)
    if warmup_fraction > 0 and fraction < warmup_fraction:
        return peak * fraction / warmup_fraction
    progress = (fraction - warmup_fraction) / max(1e-12, 1.0 - warmup_fraction)
    return peak * (min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def build_optimizer(model, *, lr: float, weight_decay: float, betas: tuple[float, float]):
    """AdamW; weight decay on matrices only (not on norms); PyTorch's fused kernel (one pass over every
    tensor, on the CPU as on CUDA, as transformers.Trainer's default `adamw_torch_fused`)."""
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=1e-8, fused=True)


def _upcast(logits: torch.Tensor) -> torch.Tensor:
    """The softmax in float32 at least (bf16 logits under autocast), float64 stays float64."""
    return logits.to(torch.promote_types(logits.dtype, torch.float32))


def loss_sum(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed next-token cross-entropy (nats) over target positions; labels are aligned with inputs."""
    return F.cross_entropy(_upcast(logits[:, :-1].reshape(-1, logits.size(-1))), labels[:, 1:].reshape(-1),
                           ignore_index=IGNORE, reduction="sum")


def packed_segments(position_ids: torch.Tensor) -> torch.Tensor:
    """[B, T] example number of each position within its packed row (0, 1, ...).

    A new example starts wherever the position id does not grow by one, the rule transformers uses
    for packed rows (`find_packed_sequence_indices`).
    """
    first = position_ids[:, :1] - 1
    return (torch.diff(position_ids, prepend=first, dim=-1) != 1).cumsum(-1)


def packed_causal_mask(position_ids: torch.Tensor) -> torch.Tensor:
    """Block-diagonal causal mask (True = may attend) of packed rows, [B, 1, T, T]: the mask
    transformers' LlamaModel builds for packed rows."""
    segment = packed_segments(position_ids)
    same = segment[:, :, None] == segment[:, None, :]
    t = position_ids.size(1)
    causal = torch.ones(t, t, dtype=torch.bool, device=position_ids.device).tril()
    return (same & causal)[:, None]


def predicts_target(labels: torch.Tensor) -> torch.Tensor:
    """[B, T] bool: the positions whose next token is a target (where the loss reads the logits)."""
    out = torch.zeros_like(labels, dtype=torch.bool)
    out[:, :-1] = labels[:, 1:] != IGNORE
    return out


def needed_positions(labels: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
    """[B, T] bool: the positions the loss depends on, in a causal LM over packed rows.

    Position j of an example matters only if some position i >= j of the same example predicts a
    target: under the block-diagonal causal mask nothing else ever reads j's hidden states. So each
    example's tail after its last target-predicting position is dead: the padding after a row's
    last example, and each example's final token (the EOS it is trained to emit predicts nothing).
    Within an example the needed positions are a prefix.
    """
    b, t = labels.shape
    uses = predicts_target(labels)
    segment = packed_segments(position_ids) + torch.arange(b, device=labels.device)[:, None] * t  # unique ids
    where = torch.arange(t, device=labels.device).expand(b, t)
    last = torch.full((b * t,), -1, dtype=where.dtype, device=labels.device)
    last = last.scatter_reduce(0, segment.reshape(-1), torch.where(uses, where, -1).reshape(-1), "amax")
    return where <= last[segment]


def unpadded_decoder(decoder, input_ids: torch.Tensor, position_ids: torch.Tensor, idx: torch.Tensor,
                     out: torch.Tensor | None = None) -> torch.Tensor:
    """Final hidden states of the tokens at flat positions `idx[out]` of the [B, T] rows (all of
    `idx` when `out` is None), as [len, d_model], computed without touching the other positions
    except inside attention.

    The same arithmetic as transformers' LlamaModel.forward on packed rows, with its own modules and
    weights: embeddings, norms, projections and MLPs run on the kept tokens only (padding-free
    training); attention scatters q, k, v back into the padded rows and uses the packed
    block-diagonal causal mask (Krell et al. 2021, "Efficient sequence packing without
    cross-contamination"), so a kept token sees exactly what it sees in the padded model. The caller
    keeps, with each token, every earlier token of its example (`needed_positions`); the positions
    left out are then never attended to, so their zeros change nothing.
    In the last layer only the keys and values of every kept token are read by anything; the
    query, attention output, o_proj and MLP run on the `out` tokens alone (dead-code elimination:
    the other tokens' last-layer outputs reach no loss term).
    """
    from transformers.models.llama.modeling_llama import rotate_half

    def rope(z, cos, sin):  # apply_rotary_pos_emb's arithmetic on one tensor
        return z * cos.unsqueeze(1) + rotate_half(z) * sin.unsqueeze(1)

    b, t = input_ids.shape
    x = decoder.embed_tokens(input_ids.reshape(-1).index_select(0, idx))
    cos, sin = decoder.rotary_emb(x, position_ids.reshape(-1).index_select(0, idx))
    mask = packed_causal_mask(position_ids)
    n = idx.numel()

    def rows(z: torch.Tensor, at: torch.Tensor) -> torch.Tensor:  # [len(at), h, hd] -> [b, h, t, hd], zeros elsewhere
        full = z.new_zeros(b * t, *z.shape[1:]).index_copy(0, at, z)
        return full.view(b, t, *z.shape[1:]).transpose(1, 2)

    last = len(decoder.layers) - 1
    for i, layer in enumerate(decoder.layers):
        attn = layer.self_attn
        h = layer.input_layernorm(x)
        k = attn.k_proj(h).view(n, -1, attn.head_dim)
        v = attn.v_proj(h).view(n, -1, attn.head_dim)
        at, q_cos, q_sin = idx, cos, sin
        if i == last and out is not None:  # queries of the `out` tokens only
            at, q_cos, q_sin = idx.index_select(0, out), cos.index_select(0, out), sin.index_select(0, out)
            x, h = x.index_select(0, out), h.index_select(0, out)
        q = attn.q_proj(h).view(h.size(0), -1, attn.head_dim)
        q, k = rope(q, q_cos, q_sin), rope(k, cos, sin)
        o = F.scaled_dot_product_attention(rows(q, at), rows(k, idx), rows(v, idx), attn_mask=mask, scale=attn.scaling,
                                           enable_gqa=attn.num_key_value_groups > 1)
        o = o.transpose(1, 2).reshape(b * t, -1).index_select(0, at)
        x = x + attn.o_proj(o)
        x = x + layer.mlp(layer.post_attention_layernorm(x))
    return decoder.norm(x)


def target_loss(lm, input_ids: torch.Tensor, position_ids: torch.Tensor, idx: torch.Tensor, out: torch.Tensor,
                tgt: torch.Tensor) -> torch.Tensor:
    """Summed cross-entropy of the targets `tgt` predicted at entries `out` of the kept positions `idx`
    (entries whose target is IGNORE count nothing: the static-shape padding of loader._pad)."""
    hidden = unpadded_decoder(lm.model, input_ids, position_ids, idx, out)  # [len(out), d]
    return F.cross_entropy(_upcast(lm.lm_head(hidden)), tgt, ignore_index=IGNORE, reduction="sum")


def host_positions(labels: torch.Tensor, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(idx, out, tgt) of padded rows: the kept positions (`needed_positions`), the entries of idx that
    predict a target, and those targets in row-major order (what the loader builds from the shards)."""
    keep = needed_positions(labels, position_ids)
    uses = predicts_target(labels)  # a subset of keep
    idx = keep.reshape(-1).nonzero().squeeze(1)
    out = uses.reshape(-1)[idx].nonzero().squeeze(1)  # rows of idx (kept tokens, row-major) that predict a target
    return idx, out, labels[:, 1:][labels[:, 1:] != IGNORE]


class TargetLoss(torch.nn.Module):
    """A causal LM that returns the summed next-token cross-entropy over target positions only.

    It computes only what the loss depends on, so neither the loss nor the gradients change
    (tests/test_data.py checks both in float64 against the transformers model on the padded rows):
    - the decoder runs only on the positions some target depends on (`needed_positions`,
      `unpadded_decoder`): not on the padding after a row's last example (about a fifth of a
      packed row of the default tasks) nor on each example's final token;
    - its last layer, the final norm, the LM head and the softmax run only on positions whose next
      token is a target (about a quarter of a row); the other tokens give that layer keys and
      values and nothing else.
    Called with `labels`, it finds those positions itself; the train stage's loader gives them
    (`idx`, `out`, `tgt`), computed on the host. DDP wraps this module. With `compile`, inputs marked
    `static` (padded to fixed counts by the loader) go through torch.compile with static shapes, so it
    compiles once; other inputs run eagerly (never a recompile).
    """

    def __init__(self, lm, compile: bool = False):
        super().__init__()
        self.lm = lm
        run = torch.compile(target_loss, dynamic=False) if compile else target_loss
        # kept out of the module tree, so that parameter names and the checkpoint stay those of `lm`
        self.__dict__["static_loss"] = lambda *a: run(lm, *a)

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor, labels: torch.Tensor | None = None, *,
                idx: torch.Tensor | None = None, out: torch.Tensor | None = None, tgt: torch.Tensor | None = None,
                static: bool = False) -> torch.Tensor:
        if idx is None:  # outside the compiled part: their lengths depend on the data
            idx, out, tgt = host_positions(labels, position_ids)
        if static:
            return self.static_loss(input_ids, position_ids, idx, out, tgt)
        return target_loss(self.lm, input_ids, position_ids, idx, out, tgt)


def n_targets(labels) -> int:
    return int((labels[:, 1:] != IGNORE).sum())


def autocast_for(device: str):
    """bf16 autocast on CUDA; plain fp32 on the CPU (bit-reproducible)."""
    if device == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def accumulate_step(model, opt, micros: list[dict], *, n_targets: int, lr: float, grad_clip: float, device: str,
                    world: int = 1, clip_params=None) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step over this process's micro-batches (dicts of input_ids, position_ids, idx, out,
    tgt, static): gradient accumulation, each micro-batch's summed loss scaled by world / n_targets (the
    global batch's target count), so any split and any process count give the update of one pass over the
    global batch (DDP averages over processes; it communicates on the last micro-batch only).
    Returns (this process's summed loss, gradient norm before clipping) as device tensors: no host sync."""
    from contextlib import nullcontext

    for g in opt.param_groups:
        g["lr"] = lr
    total = None
    for i, mb in enumerate(micros):
        sync = world == 1 or i == len(micros) - 1 or not hasattr(model, "no_sync")
        with nullcontext() if sync else model.no_sync():
            x, pos, idx, out, tgt = (mb[k].to(device, non_blocking=True) for k in ("input_ids", "position_ids", "idx", "out", "tgt"))
            with autocast_for(device):
                part = model(x, pos, idx=idx, out=out, tgt=tgt, static=bool(mb["static"]))
            (part * (world / max(1, n_targets))).backward()
        total = part.detach() if total is None else total + part.detach()
    params = clip_params if clip_params is not None else [p for p in model.parameters()]
    gnorm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip > 0 else float("inf"))
    opt.step()
    opt.zero_grad(set_to_none=True)
    return total, gnorm


def micro_of(batch, rank: int = 0, world: int = 1, capacity: tuple[int, int] | None = None) -> dict:
    """A numpy batch (input_ids, labels, position_ids, n_real) as one micro-batch of this process's rows;
    with `capacity`, padded to static counts (loader._pad) where it fits."""
    import numpy as np

    from benchmark.training.loader import _pad

    ids, labels, positions = (torch.from_numpy(np.ascontiguousarray(a[rank::world])) for a in batch[:3])
    idx, out, tgt = host_positions(labels, positions)
    static = capacity is not None and len(idx) <= capacity[0] and len(out) <= capacity[1]
    if static:
        idx, out, tgt = (torch.from_numpy(a) for a in _pad(idx.numpy(), out.numpy(), tgt.numpy(), ids.numel(), *capacity))
    return {"input_ids": ids, "position_ids": positions, "idx": idx, "out": out, "tgt": tgt, "static": static}


def train_step(model, opt, batch, *, lr: float, grad_clip: float, device: str, rank: int = 0, world: int = 1,
               clip_params=None, capacity: tuple[int, int] | None = None) -> tuple[float, float]:
    """One optimizer step on a global numpy batch (input_ids, labels, position_ids, n_real_tokens), in
    one micro-batch per process (rows rank, rank + world, ...); the loss is the global mean over target
    tokens. Returns (loss, gradient norm before clipping) as floats (a host sync: benchmarks only; the
    train stage uses `accumulate_step`)."""
    total, gnorm = accumulate_step(model, opt, [micro_of(batch, rank, world, capacity)], n_targets=n_targets(batch[1]),
                                   lr=lr, grad_clip=grad_clip, device=device, world=world, clip_params=clip_params)
    if world > 1:
        torch.distributed.all_reduce(total)
    return float(total) / max(1, n_targets(batch[1])), float(gnorm)


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


# Dense bf16 tensor-core peaks from the vendors' data sheets (FLOP/s, without sparsity), by the name torch
# reports; the first pattern the name contains wins, so variants come before their family: an H100 PCIe
# (756 TFLOP/s) or NVL (835) is not an H100 SXM (989), whose name has no form factor ("NVIDIA H100 80GB HBM3").
GPU_BF16_PEAK = (
    ("GH200", 989e12), ("H200 NVL", 835e12), ("H200", 989e12),
    ("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H100", 989e12), ("H800 PCIe", 756e12), ("H800", 989e12),
    ("A100", 312e12), ("A800", 312e12), ("L40S", 362e12), ("L40", 181e12), ("A10G", 70e12), ("A10", 125e12),
    ("L4", 121e12), ("RTX 4090", 165e12), ("A6000", 155e12), ("V100", 125e12), ("T4", 65e12),
)


def gpu_peak_flops(name: str) -> float | None:
    """The card's dense bf16 peak, or None for a card not in the table (MFU is then left out)."""
    for key, peak in GPU_BF16_PEAK:
        if key.lower() in name.lower():
            return peak
    return None


def measure_matmul_peak(seconds: float = 0.6, n: int = 1024, dtype=torch.float32) -> float:
    """FLOP/s of a square matmul on the CPU, measured now: the best of several short windows after a
    warm-up (the CPU has no data-sheet peak we trust, and its clock ramps up under load). Its operands come
    from a generator of its own: measuring never moves torch's global random state."""
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, dtype=dtype, generator=gen), torch.randn(n, n, dtype=dtype, generator=gen)
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
