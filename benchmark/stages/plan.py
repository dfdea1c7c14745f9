"""`python -m benchmark plan`: the grid before any compute — run ids, seeds, N, D, FLOPs, IsoFLOP budgets and estimated time here."""
from __future__ import annotations

import sys
from dataclasses import dataclass

from benchmark import cli
from benchmark.config import grid


def _si(x: float) -> str:
    for unit, scale in (("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def _n(k: int, noun: str) -> str:
    return f"{k} {noun}{'s' * (k != 1)}"


@dataclass(frozen=True)
class Budget:
    """One IsoFLOP budget: the runs whose 6ND lie within fit.budget_tolerance of each other (Approach 2)."""

    name: str  # C1, C2, ... by compute
    flops: float  # mean 6ND of its runs
    points: tuple[grid.Point, ...]

    @property
    def sizes(self) -> list[str]:
        return list(dict.fromkeys(q.size for q in sorted(self.points, key=lambda q: (q.n_params, q.size))))


def budgets(points: list[grid.Point], tolerance: float) -> list[Budget]:
    """The grid's IsoFLOP budgets, grouped as the fit stage groups them (benchmark.scaling.laws.group_budgets)."""
    from benchmark.scaling.laws import group_budgets

    groups = group_budgets([q.flops for q in points], tolerance) if points else []
    out = []
    for i, g in enumerate(groups, 1):
        members = tuple(points[j] for j in g)
        out.append(Budget(f"C{i}", sum(q.flops for q in members) / len(members), members))
    return out


def table(points: list[grid.Point], peak: float | None, budget_of: dict[str, str] | None = None) -> str:
    budget_of = budget_of or {}
    head = ["run_id", "size", "seed", "d_model", "layers", "N", "N_nonemb", "D", "D/N", "batch", "lr", "FLOPs (6ND)",
            "FLOPs (+attn)", "budget"]
    if peak:
        head.append("est. time")
    rows = []
    for q in points:
        row = [q.run_id, q.size, str(q.seed), str(q.d_model), str(q.n_layers), _si(q.n_params), _si(q.n_params_nonembedding),
               _si(q.tokens), f"{q.tokens_per_param:.1f}", str(q.batch_size), f"{q.lr:g}", f"{q.flops:.3g}",
               f"{q.flops_attention:.3g}", budget_of.get(q.run_id, "")]
        if peak:
            row.append(f"{grid.estimated_seconds(q, peak):.0f} s")
        rows.append(row)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    fmt = lambda r: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


def design(points: list[grid.Point], bs: list[Budget]) -> tuple[list[str], list[str]]:
    """(lines, warnings): one line per budget (FLOPs, sizes, tokens-per-parameter range), one per point with seed
    replicates; a warning per point outside grid.TOKENS_PER_PARAM and per budget under grid.MIN_SIZES_PER_BUDGET sizes."""
    lo, hi = grid.TOKENS_PER_PARAM
    lines, warnings = [], []
    for b in bs:
        tpp = [q.tokens_per_param for q in b.points]
        sizes = b.sizes
        span = f"{min(tpp):.1f}" if f"{min(tpp):.1f}" == f"{max(tpp):.1f}" else f"{min(tpp):.1f}-{max(tpp):.1f}"
        lines.append(f"budget {b.name}: {b.flops:.3g} FLOPs (6ND), {_n(len(sizes), 'size')} ({', '.join(sizes)}), "
                     f"{span} tokens per parameter, {_n(len(b.points), 'run')}")
        if len(sizes) < grid.MIN_SIZES_PER_BUDGET:
            warnings.append(f"warning: budget {b.name} ({b.flops:.3g} FLOPs) has {_n(len(sizes), 'size')}, "
                            f"fewer than {grid.MIN_SIZES_PER_BUDGET}: Approach 2 may find no interior loss minimum there")
    for (size, tokens), qs in grid.replicates(points).items():
        if len(qs) > 1:
            lines.append(f"replicates of {size} at {_si(tokens)} tokens: {len(qs)} seeds "
                         f"({', '.join(str(q.seed) for q in qs)}; runs {', '.join(q.run_id for q in qs)})")
        tpp = qs[0].tokens_per_param
        if not lo <= tpp <= hi:
            warnings.append(f"warning: {size} at {_si(tokens)} tokens ({', '.join(q.run_id for q in qs)}) has {tpp:.3g} "
                            f"tokens per parameter, outside {lo:g}-{hi:g}")
    return lines, warnings


def heldout_line(points: list[grid.Point], bs: list[Budget], fraction: float, tolerance: float) -> str:
    """Which budgets the fit stage holds out of its fits to check their extrapolation (engine.holdout_split)."""
    from benchmark.scaling.engine import holdout_split

    held, _ = holdout_split([q.flops for q in points], fraction, tolerance)
    out = {q.run_id for q, h in zip(points, held) if h}
    names = [b.name for b in bs if all(q.run_id in out for q in b.points)]
    rest = [b.name for b in bs if b.name not in names]
    if not rest:
        return f"held out of the fits (fit.holdout={fraction:g}): every budget, so no law's extrapolation can be checked"
    return (f"held out of the fits (fit.holdout={fraction:g}): budget{'s' * (len(names) != 1)} "
            f"{', '.join(names)}, {len(out)} of {_n(len(points), 'run')}: the laws fitted on {', '.join(rest)} predict "
            f"{'it' if len(names) == 1 else 'them'}")


def main(argv: list[str]) -> int:
    ap = cli.parser("plan", __doc__, params=True)
    ap.add_argument("--no-time", action="store_true", help="skip the matmul measurement behind the time estimate")
    args, p = cli.parse(ap, argv)
    points = grid.points(p)
    peak = None
    if not args.no_time:
        from benchmark.training.trainer import measure_matmul_peak

        peak = measure_matmul_peak()
    bs = budgets(points, p.fit.budget_tolerance)
    print(table(points, peak, {q.run_id: b.name for b in bs for q in b.points}))
    sizes = sorted({(q.n_params_nonembedding, q.size) for q in points})
    tokens = sorted({q.tokens for q in points})
    n_points = len(grid.replicates(points))
    print(f"\n{_n(len(points), 'run')} at {_n(n_points, 'grid point')} (size x tokens; replicates differ in seed); "
          f"{len(sizes)} sizes spanning "
          f"{sizes[-1][0] / sizes[0][0]:.1f}x in non-embedding parameters; {len(tokens)} token budgets spanning "
          f"{tokens[-1] / tokens[0]:.1f}x; total {sum(q.flops_attention for q in points):.3g} FLOPs")
    lines, warnings = design(points, bs)
    print(f"IsoFLOP budgets (runs within fit.budget_tolerance={p.fit.budget_tolerance:g} of each other's 6ND):")
    print("\n".join(lines))
    print(heldout_line(points, bs, p.fit.holdout, p.fit.budget_tolerance))
    if peak:
        total = sum(grid.estimated_seconds(q, peak) for q in points)
        print(f"estimated wall time on this machine: {total / 60:.1f} min (measured matmul peak {peak / 1e9:.0f} GFLOP/s, "
              f"CPU fp32; N counts the tied embedding once; vocab_size from params)")
    for w in warnings:
        print(w, file=sys.stderr)
    return 0
