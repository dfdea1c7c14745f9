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

from benchmark.results import db
from benchmark.scaling.engine import FitError, FitResult, FitSettings, fit


DEFAULT_TARGETS = {"pythia": "log_perplexity/lambada_openai"}  # a source's loss-like target when it has no val_loss


def source_target(source: str, target: str | None, per_source: dict[str, str]) -> str:
    return per_source.get(source) or target or DEFAULT_TARGETS.get(source, "val_loss/all")


def compare(db_path: str, sources: list[str], target: str | None, law: str, settings: FitSettings,
            drop_highest: int = 0, per_source: dict[str, str] | None = None) -> dict[str, FitResult | str]:
    """Fit `law` to each source's target (`per_source`, else `target`, else the source's loss-like
    target) over its completed runs with N, D, C > 0. A source the law cannot be fitted to maps to the
    reason (a one-line string), so one table still shows every source."""
    from benchmark.scaling import crossfit

    con = db.connect(db_path, read_only=True)
    try:
        known = set(db.sources(con))
        out: dict[str, FitResult | str] = {}
        for src in sources:
            if src not in known:
                raise FitError(f"no source {src!r} in {db_path} (have: {', '.join(sorted(known)) or 'none'})")
            t = source_target(src, target, per_source or {})
            if "/" not in t:
                raise FitError(f"target {t!r} of source {src!r} is not '<metric>/<task>'")
            metric, task = t.split("/", 1)
            min_tokens = crossfit.PYTHIA_MIN_STEP * 2_097_152 if src == "pythia" else 1.0
            try:
                pts = crossfit.points(con, src, metric, task, min_tokens=min_tokens)
                if drop_highest:
                    keep = np.ones(pts.n, dtype=bool)
                    keep[np.argsort(pts.y)[::-1][:drop_highest]] = False
                    pts = pts.subset(keep)
                out[src] = fit(law, pts, settings, target=t)
            except FitError as e:
                have = sorted({f"{m}/{k}" for m, k in con.execute(
                    "SELECT DISTINCT metric, task FROM metrics WHERE source = ?", [src]).fetchall()})
                out[src] = f"{e}" + ("" if t in have else f" (has {len(have)} targets, e.g. {', '.join(have[:3])})")
    finally:
        con.close()
    return out


def _overlap(a: list[float] | None, b: list[float] | None) -> bool | None:
    if not a or not b or None in a or None in b:
        return None
    return a[0] <= b[1] and b[0] <= a[1]


def table(results: dict[str, FitResult | str]) -> str:
    """Parameters (rows) by source (columns): estimate [95 % interval], held-out error, and which pairs differ."""
    fitted = {s: r for s, r in results.items() if not isinstance(r, str)}
    names = list(dict.fromkeys(k for r in fitted.values() for k in [*r.params, *(r.allocation or {})] if k != "flops"))
    srcs = list(results)
    rows = [["target", *("–" if isinstance(results[s], str) else results[s].target for s in srcs), ""]]
    for name in names:
        cells, cis = [], []
        for s in srcs:
            r = results[s]
            est = None if isinstance(r, str) else r.params.get(name, (r.allocation or {}).get(name))
            ci = None if isinstance(r, str) else r.ci95.get(name)
            cis.append(ci)
            cells.append("–" if est is None else f"{est:.4g}" + (f" [{ci[0]:.3g}, {ci[1]:.3g}]" if ci else ""))
        differ = [f"{srcs[i]} vs {srcs[j]}" for i in range(len(srcs)) for j in range(i + 1, len(srcs))
                  if _overlap(cis[i], cis[j]) is False]
        rows.append([name, *cells, ", ".join(differ) or "no"])
    held = []
    for s in srcs:
        r = results[s]
        e = None if isinstance(r, str) else r.extrapolation
        held.append("–" if not e or e.get("rel_err") is None else f"{100 * e['rel_err']:.2f} % ({e['n_heldout']} runs)")
    rows.append(["held-out |rel err|", *held, ""])
    rows.append(["n_points", *("0" if isinstance(results[s], str) else str(results[s].n_points) for s in srcs), ""])
    head = ["parameter", *srcs, "differs beyond 95 % intervals"]
    widths = [max(len(r[i]) for r in rows + [head]) + 2 for i in range(len(head))]
    lines = ["".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head, *rows]]
    lines += [f"{s}: not fitted: {r}" for s, r in results.items() if isinstance(r, str)]
    return "\n".join(lines)


def figure(results: dict[str, FitResult | str], path: Path) -> list[str]:
    from benchmark.reporting import figures

    results = {s: r for s, r in results.items() if not isinstance(r, str)}
    plt = figures._plt()
    names = [n for n in ("E", "alpha", "beta", "a") if any(n in r.params or n in (r.allocation or {}) for r in results.values())]
    names = names or list(dict.fromkeys(k for r in results.values() for k in r.params))[:6]  # other laws: their own parameters
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
    ap.add_argument("--target", action="append", default=[], metavar="[SOURCE=]METRIC/TASK",
                    help="what to fit, for every source or for one (repeatable); default: val_loss/all, "
                         "pythia: log_perplexity/lambada_openai")
    ap.add_argument("--law", default="chinchilla")
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--drop-highest-loss", type=int, default=0, help="drop each source's K highest targets (Epoch drop 5)")
    ap.add_argument("--plot", default="leaderboard/compare/compare", help="figure path stem (PNG and PDF)")
    args = ap.parse_args(argv)
    if not Path(args.db).exists():
        print(f"error: {args.db} not found: run `dvc repro` (local) or `python -m benchmark import/pull` first", file=sys.stderr)
        return 2
    target, per_source = None, {}
    for t in args.target:
        if "=" in t:
            per_source[t.split("=", 1)[0]] = t.split("=", 1)[1]
        else:
            target = t
    try:
        results = compare(args.db, args.sources, target, args.law, FitSettings(bootstrap=args.bootstrap, seed=args.seed),
                          args.drop_highest_loss, per_source)
    except FitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from benchmark.scaling.laws import LAWS

    loss = "summed Huber on log residuals" if args.law in LAWS and LAWS[args.law].space == "log" else "least squares"
    print(f"{args.law}, same method for every source ({loss}, L-BFGS, "
          f"{args.bootstrap} bootstrap resamples, seed {args.seed}; held-out: the largest-compute 20 %):\n")
    print(table(results))
    if all(isinstance(r, str) for r in results.values()):
        print(f"error: {args.law} could not be fitted to any of the sources", file=sys.stderr)
        return 2
    written = figure(results, Path(args.plot))
    print(f"\nfigure: {', '.join(written)}")
    return 0
