"""`python -m benchmark plan`: the grid before any compute — run ids, N, D, FLOPs and estimated time here."""
from __future__ import annotations

from benchmark import cli
from benchmark.config import grid


def _si(x: float) -> str:
    for unit, scale in (("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def table(points: list[grid.Point], peak: float | None) -> str:
    head = ["run_id", "size", "d_model", "layers", "N", "N_nonemb", "D", "D/N", "batch", "lr", "FLOPs (6ND)", "FLOPs (+attn)"]
    if peak:
        head.append("est. time")
    rows = []
    for q in points:
        row = [q.run_id, q.size, str(q.d_model), str(q.n_layers), _si(q.n_params), _si(q.n_params_nonembedding),
               _si(q.tokens), f"{q.tokens_per_param:.1f}", str(q.batch_size), f"{q.lr:g}", f"{q.flops:.3g}",
               f"{q.flops_attention:.3g}"]
        if peak:
            row.append(f"{grid.estimated_seconds(q, peak):.0f} s")
        rows.append(row)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    fmt = lambda r: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


def main(argv: list[str]) -> int:
    ap = cli.parser("plan", __doc__, params=True)
    ap.add_argument("--no-time", action="store_true", help="skip the matmul measurement behind the time estimate")
    args, p = cli.parse(ap, argv)
    points = grid.points(p)
    peak = None
    if not args.no_time:
        from benchmark.training.trainer import measure_matmul_peak

        peak = measure_matmul_peak()
    print(table(points, peak))
    sizes = sorted({(q.n_params_nonembedding, q.size) for q in points})
    tokens = sorted({q.tokens for q in points})
    print(f"\n{len(points)} runs; {len(sizes)} sizes spanning {sizes[-1][0] / sizes[0][0]:.1f}x in non-embedding "
          f"parameters; {len(tokens)} token budgets spanning {tokens[-1] / tokens[0]:.1f}x; "
          f"total {sum(q.flops_attention for q in points):.3g} FLOPs")
    if peak:
        total = sum(grid.estimated_seconds(q, peak) for q in points)
        print(f"estimated wall time on this machine: {total / 60:.1f} min (measured matmul peak {peak / 1e9:.0f} GFLOP/s, "
              f"CPU fp32; N counts the tied embedding once; vocab_size from params)")
    return 0
