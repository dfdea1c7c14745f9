"""`python -m benchmark compare SOURCE [SOURCE ...]`: fit every source with the same method, side by side.

A source is anything in the DuckDB `runs` table: `local` (this grid), an imported dataset
(`python -m benchmark import chinchilla ...`) or a pulled one (`python -m benchmark pull ORG/NAME`).
Prints each parameter with its 95 % bootstrap interval per source, flags pairs whose intervals do not
overlap, and draws the same comparison as a figure.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from benchmark import db
from benchmark.fit import load_targets
from benchmark.fitting import FitError, FitResult, FitSettings, fit


def compare(db_path: str, sources: list[str], target: str, law: str, settings: FitSettings,
            drop_highest: int = 0) -> dict[str, FitResult]:
    con = db.connect(db_path, read_only=True)
    try:
        known = set(db.sources(con))
        out = {}
        for src in sources:
            if src not in known:
                raise FitError(f"no source {src!r} in {db_path} (have: {', '.join(sorted(known)) or 'none'})")
            targets = load_targets(con, src)
            if target not in targets:
                raise FitError(f"source {src!r} has no {target!r} (has: {', '.join(sorted(targets))})")
            pts = targets[target]
            if drop_highest:
                keep = np.ones(pts.n, dtype=bool)
                keep[np.argsort(pts.y)[::-1][:drop_highest]] = False
                pts = pts.subset(keep)
            out[src] = fit(law, pts, settings, target=target)
    finally:
        con.close()
    return out


def _overlap(a: list[float] | None, b: list[float] | None) -> bool | None:
    if not a or not b or None in a or None in b:
        return None
    return a[0] <= b[1] and b[0] <= a[1]


def table(results: dict[str, FitResult]) -> str:
    """Parameters (rows) by source (columns): estimate [95 % interval], and which pairs differ."""
    names = list(dict.fromkeys(k for r in results.values() for k in [*r.params, *(r.allocation or {})] if k != "flops"))
    srcs = list(results)
    rows = []
    for name in names:
        cells, cis = [], []
        for s in srcs:
            r = results[s]
            est = r.params.get(name, (r.allocation or {}).get(name))
            ci = r.ci95.get(name)
            cis.append(ci)
            cells.append("–" if est is None else f"{est:.4g}" + (f" [{ci[0]:.3g}, {ci[1]:.3g}]" if ci else ""))
        differ = [f"{srcs[i]} vs {srcs[j]}" for i in range(len(srcs)) for j in range(i + 1, len(srcs))
                  if _overlap(cis[i], cis[j]) is False]
        rows.append([name, *cells, ", ".join(differ) or "no"])
    rows.append(["n_points", *(str(results[s].n_points) for s in srcs), ""])
    head = ["parameter", *srcs, "differs beyond 95 % intervals"]
    widths = [max(len(r[i]) for r in rows + [head]) + 2 for i in range(len(head))]
    return "\n".join("".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head, *rows])


def figure(results: dict[str, FitResult], path: Path) -> list[str]:
    from benchmark import figures

    plt = figures._plt()
    names = [n for n in ("E", "alpha", "beta", "a") if any(n in r.params or n in (r.allocation or {}) for r in results.values())]
    fig, axes = plt.subplots(1, len(names), figsize=(2.6 * len(names), 2.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        for i, (src, r) in enumerate(results.items()):
            est = r.params.get(name, (r.allocation or {}).get(name))
            ci = r.ci95.get(name)
            if est is None:
                continue
            err = [[est - ci[0]], [ci[1] - est]] if ci else None
            ax.errorbar([est], [i], xerr=err, fmt=figures.MARKERS[i % len(figures.MARKERS)], color="k", capsize=3)
        ax.set_yticks(range(len(results)))
        ax.set_yticklabels(list(results), fontsize=7)
        ax.set_xlabel(name)
    fig.suptitle("Fitted parameters with 95 % bootstrap intervals", fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    return figures.save(fig, path.with_suffix(""))


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmark compare", description=__doc__.splitlines()[0])
    ap.add_argument("sources", nargs="+", help="source names in the DuckDB runs table (e.g. local chinchilla)")
    ap.add_argument("--db", default="leaderboard/results.duckdb")
    ap.add_argument("--target", default="val_loss/all", help="'<metric>/<task>' to fit (default val_loss/all)")
    ap.add_argument("--law", default="chinchilla")
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--drop-highest-loss", type=int, default=0, help="drop each source's K highest targets (Epoch drop 5)")
    ap.add_argument("--plot", default="leaderboard/compare/compare", help="figure path stem (PNG and PDF)")
    args = ap.parse_args(argv)
    if not Path(args.db).exists():
        print(f"error: {args.db} not found: run `dvc repro` (local) or `python -m benchmark import/pull` first", file=sys.stderr)
        return 2
    try:
        results = compare(args.db, args.sources, args.target, args.law, FitSettings(bootstrap=args.bootstrap, seed=args.seed),
                          args.drop_highest_loss)
    except FitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{args.law} on {args.target}, same method for every source (summed Huber, L-BFGS, "
          f"{args.bootstrap} bootstrap resamples, seed {args.seed}):\n")
    print(table(results))
    written = figure(results, Path(args.plot))
    print(f"\nfigure: {', '.join(written)}")
    return 0
