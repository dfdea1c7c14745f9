"""The grid: every run's model, N, D and FLOPs, derived from params before any compute."""
from __future__ import annotations

from dataclasses import dataclass

from benchmark.training import model
from benchmark.config.params import Params, Run

# Fraction of the matmul peak a training step reaches on a 2-core CPU, by non-embedding size
# (measured with bench/train_speed.py; small models are bound by elementwise ops, not matmuls).
_CPU_EFFICIENCY = ((1e5, 0.22), (3e5, 0.35), (1e6, 0.5), (3e6, 0.6))
RUN_OVERHEAD_S = 12.0  # python start, model build, evaluation generation and scoring, per run
# A grid designed like a scaling study (Hoffmann et al. 2022, Approach 2): every point between 2 and 100 tokens per
# parameter (D/N; ~20 is compute-optimal), and at least 4 sizes per IsoFLOP budget for an interior loss minimum.
TOKENS_PER_PARAM = (2.0, 100.0)
MIN_SIZES_PER_BUDGET = 4


@dataclass(frozen=True)
class Point:
    run_id: str
    size: str
    seed: int
    tokens: int
    d_model: int
    n_layers: int
    n_heads: int
    seq_len: int
    batch_size: int
    lr: float
    vocab_size: int
    n_params: int
    n_params_embedding: int
    n_params_nonembedding: int
    flops: float  # 6 N D
    flops_attention: float  # 6 N D + attention

    @property
    def tokens_per_param(self) -> float:
        return self.tokens / self.n_params


def point(p: Params, run: Run, vocab_size: int | None = None) -> Point:
    size = p.model.sizes[run.size]
    vocab = vocab_size or p.tokenizer.vocab_size
    counts = model.count_params(d_model=size.d_model, n_layers=size.n_layers, vocab_size=vocab)
    return Point(
        run_id=run.run_id, size=run.size, seed=run.seed, tokens=run.tokens,
        d_model=size.d_model, n_layers=size.n_layers, n_heads=size.n_heads, seq_len=p.model.seq_len,
        batch_size=size.batch_size, lr=size.lr, vocab_size=vocab,
        n_params=counts.total, n_params_embedding=counts.embedding, n_params_nonembedding=counts.nonembedding,
        flops=model.flops_6nd(counts.total, run.tokens),
        flops_attention=model.flops_with_attention(n_params=counts.total, tokens=run.tokens, n_layers=size.n_layers,
                                                   d_model=size.d_model, seq_len=p.model.seq_len),
    )


def points(p: Params, vocab_size: int | None = None) -> list[Point]:
    """All grid points, ordered by compute."""
    return sorted((point(p, r, vocab_size) for r in p.runs.values()), key=lambda q: (q.flops, q.run_id))


def replicates(pts: list[Point]) -> dict[tuple[str, int], list[Point]]:
    """Grid points (size, tokens) -> their runs, one per seed (replicates of one point), in seed order."""
    out: dict[tuple[str, int], list[Point]] = {}
    for q in sorted(pts, key=lambda q: (q.flops, q.size, q.tokens, q.seed, q.run_id)):
        out.setdefault((q.size, q.tokens), []).append(q)
    return out


def cpu_efficiency(n_params_nonembedding: int) -> float:
    """Interpolated (log-linear) fraction of matmul peak for a model size on CPU."""
    import math

    xs = _CPU_EFFICIENCY
    if n_params_nonembedding <= xs[0][0]:
        return xs[0][1]
    for (x0, y0), (x1, y1) in zip(xs, xs[1:]):
        if n_params_nonembedding <= x1:
            t = (math.log(n_params_nonembedding) - math.log(x0)) / (math.log(x1) - math.log(x0))
            return y0 + t * (y1 - y0)
    return xs[-1][1]


def estimated_seconds(q: Point, peak_flops_per_s: float) -> float:
    """Wall time of train + evaluate for one point, from the measured matmul peak."""
    return q.flops_attention / (cpu_efficiency(q.n_params_nonembedding) * peak_flops_per_s) + RUN_OVERHEAD_S
