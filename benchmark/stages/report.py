"""DVC stage `report`: the leaderboard table, figures (PNG + PDF), a LaTeX table of fits, and the dataset card.

Reads the exported parquet files and fits.json (and every imported source in the DuckDB file);
writes `leaderboard/README.md` (the Hugging Face dataset card, with the leaderboard and figures
embedded), `leaderboard/index.html` (the browsable page), `leaderboard/figures/*.{png,pdf}` (the
PNGs are also the `dvc plots`; `law_<law>` compares sources) and `leaderboard/tables/*.tex`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmark.results import io

LOSS_TARGET = "val_loss/all"


def _read(data_dir: Path, table: str) -> list[dict]:
    import pyarrow.parquet as pq

    path = data_dir / f"{table}.parquet"
    return pq.read_table(path).to_pylist() if path.exists() else []


def leaderboard_md(runs: list[dict], metrics: list[dict]) -> str:
    """Markdown table: one row per run, ordered by compute."""
    from benchmark.evaluation.metrics import LOSS, headline

    m = {(r["run_id"], r["task"], r["metric"]): r for r in metrics}
    cols = [(h.name, h.headline_task, h.label) for h in headline()]
    head = "| run | size | N | N non-emb. | D | C (FLOP) | " + " | ".join(c[2] for c in cols) + " | status |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in sorted(runs, key=lambda r: (r["flops"], r["run_id"])):
        cells = []
        for metric, task, _ in cols:
            x = m.get((r["run_id"], task, metric))
            d = 3 if metric == LOSS else 1
            cells.append("–" if x is None else f"{x['value']:.{d}f}" + ("" if x["stderr"] is None else f" ± {x['stderr']:.{d}f}"))
        lines.append(f"| {r['run_id']} | {r['model_size']} | {r['n_params']:,} | {r['n_params_nonembedding'] or 0:,} | "
                     f"{r['tokens']:,} | {r['flops']:.3g} | " + " | ".join(cells) + f" | {r['status']} |")
    return "\n".join(lines) + "\n"


def fits_tex(fits: list[dict], literature: list[dict]) -> str:
    """booktabs LaTeX: chinchilla parameters per target with 95 % intervals (math mode, digits from the
    interval, bounds and unidentified parameters marked; benchmark.reporting.latex), then published values."""
    from benchmark.reporting import latex

    names = ["E", "A", "B", "alpha", "beta", "a"]
    rows = []
    for f in fits:
        if f["law"] != "chinchilla":
            continue
        if f.get("identified") is False:  # a text across the parameter columns instead of numbers
            rows.append((f"This grid: {f['target']}", f"not identified ({f.get('identification') or ''})", str(f["n_points"])))
            continue
        vals = {**f["params"], **{k: v for k, v in (f.get("allocation") or {}).items() if k in ("a", "b")}}
        rows.append((f"This grid: {f['target']}", {n: (vals.get(n), f["ci95"].get(n)) for n in names}, str(f["n_points"])))
    pubs: dict[str, dict[str, float]] = {}
    for row in literature:
        if row["law"] == "chinchilla" or row["parameter"] in ("a",):
            pubs.setdefault(row["source"], {})[row["parameter"]] = row["estimate"]
    published = [f"{latex.escape(src)} & " + " & ".join(latex.number(vals[n]) if n in vals else "--" for n in names) + r" & -- \\"
                 for src, vals in sorted(pubs.items())]
    caption = (r"Fitted $L(N, D) = E + A/N^\alpha + B/D^\beta$ (Hoffmann et al.\ 2022, Approach 3; summed Huber, "
               r"$\delta=10^{-3}$, L-BFGS from 4500 starts) with 95\,\% bootstrap intervals, and published values (below the rule). "
               r"$a = \beta/(\alpha+\beta)$ is the exponent of $N_\mathrm{opt} \propto C^a$.")
    text = latex.table(names, rows, caption, "tab:scaling-fits")
    if published:
        text = text.replace("\\bottomrule", "\\midrule\n" + "\n".join(published) + "\n\\bottomrule", 1)
    return text


def _find(fits: list[dict], law: str, target: str) -> dict | None:
    return next((f for f in fits if f["law"] == law and f["target"] == target), None)


def make_figures(runs, metrics, fits, literature, draws, out: Path, learning: list[dict] | None = None) -> list[str]:
    from benchmark.reporting import figures
    from benchmark.scaling.laws import LAWS

    done = [r for r in runs if r["status"] == "completed"]
    loss = {r["run_id"]: r["value"] for r in metrics if r["metric"] == "val_loss" and r["task"] == "all"}
    chin = _find(fits, "chinchilla", LOSS_TARGET)
    cutoff = (chin or {}).get("extrapolation", {}) or {}
    cutoff = cutoff.get("cutoff_flops")
    written = []
    fig = figures.loss_vs_compute(done, loss, chin, draws.get(f"chinchilla|{LOSS_TARGET}"), cutoff,
                                  LAWS["chinchilla"].predict)
    written += figures.save(fig, out / "loss_vs_compute")
    loss_laws = [f for f in (_find(fits, law, LOSS_TARGET) for law in ("chinchilla", "kaplan_nd")) if f is not None]
    if loss_laws:
        written += figures.save(figures.residuals(done, loss, loss_laws, {f["law"]: LAWS[f["law"]].predict for f in loss_laws}),
                                out / "residuals")
    checks = [f for f in loss_laws + [f for f in fits if f["law"] == "two_step"]
              if (f.get("extrapolation") or {}).get("observed")]
    if checks:
        written += figures.save(figures.heldout(checks), out / "heldout")
    # IsoFLOP budgets straight from the runs (the approach2 fit may have found no interior minimum).
    from benchmark.scaling.laws import group_budgets

    a2 = _find(fits, "approach2", LOSS_TARGET)
    tol = _tolerance(fits)
    scored = [r for r in done if r["run_id"] in loss]
    groups = group_budgets([r["flops"] for r in scored], tol) if scored else []
    budgets = [{"flops": float(sum(scored[i]["flops"] for i in g) / len(g)), "run_ids": [scored[i]["run_id"] for i in g]}
               for g in groups if len(g) >= 3]
    for b in budgets:  # the fit's 95 % interval of each budget's N_opt, drawn as a bar through the minimum
        match = [x for x in (a2 or {}).get("method", {}).get("budgets", []) if abs(x["flops"] / b["flops"] - 1) <= tol]
        b["N_opt_ci95"] = match[0].get("N_opt_ci95") if match else None
    written += figures.save(figures.isoflop(done, loss, budgets), out / "isoflop")
    values = {(r["run_id"], r["task"], r["metric"]): r["value"] for r in metrics}
    curves, marks = {}, {}
    for m in figures.downstream_metrics():
        metric, task = m.name, m.headline_task
        target = f"{metric}/{task}"
        cs, ms = [], []
        f = _find(fits, "sigmoid_compute", target)
        if f is not None:
            ok = f.get("identified", True)
            cs.append(("sigmoid of log C" + ("" if ok else " (not identified)"),
                       lambda C, p=f["params"]: LAWS["sigmoid_compute"].predict({k: p[k] for k in LAWS["sigmoid_compute"].params}, C=C)))
            if ok:  # the phases (crossfit.phases) with their 95 % intervals
                ms = [(label, f["params"][k], f["ci95"].get(k)) for k, label in
                      (("C_mid", "inflection C_mid"), ("C_slowdown", "growth slows (C_slowdown)")) if f["params"].get(k)]
        curves[(metric, task)] = cs
        marks[(metric, task)] = ms
    written += figures.save(figures.downstream(done, values, curves, cutoff, marks), out / "downstream")
    ours = [(f"this grid ({f['target']})", f) for f in fits if f["law"] == "chinchilla" and f["target"] == LOSS_TARGET]
    ours += [("this grid (approach 2)", f) for f in fits if f["law"] == "approach2" and f["target"] == LOSS_TARGET]
    written += figures.save(figures.literature(ours, literature), out / "literature")
    written += figures.save(figures.learning_curves(runs, learning or []), out / "learning_curves")
    return written


def _tolerance(fits) -> float:
    """The IsoFLOP budget tolerance the approach2 fit used (fit.budget_tolerance's default where there is none)."""
    a2 = _find(fits, "approach2", LOSS_TARGET)
    return (a2 or {}).get("method", {}).get("budget_tolerance", 0.15)


def report(data_dir: Path, fits_path: Path, out: Path, repo_id: str, draws_path: Path | None = None,
           db_path: Path | None = None) -> list[str]:
    from benchmark.reporting import card
    from benchmark.results import provenance
    from benchmark.results.dataset import table_summaries

    runs, metrics = _read(data_dir, "runs"), _read(data_dir, "metrics")
    literature, fit_rows = _read(data_dir, "literature"), _read(data_dir, "fits")
    fits = io.read_json(fits_path) if fits_path.exists() else []
    draws = io.read_json(draws_path) if draws_path and draws_path.exists() else {}
    (out / "figures").mkdir(parents=True, exist_ok=True)
    written = make_figures(runs, metrics, fits, literature, draws, out / "figures", _read(data_dir, "curves"))
    table = leaderboard_md(runs, metrics)
    io.write_text_atomic(out / "tables" / "leaderboard.md", table)
    io.write_text_atomic(out / "tables" / "fits.tex", fits_tex(fits, literature))
    sigs = {}
    for r in metrics:
        if r["signature"]:
            sigs.setdefault(r["metric"], r["signature"])
    figs = [Path(w).relative_to(out).as_posix() for w in written if w.endswith(".png")]
    from benchmark.evaluation.metrics import bounded

    points = _read(data_dir, "points")
    blocks = [("Leaderboard", table),
              ("Seed spread per grid point", card.seed_spread_section(points)),
              ("Standard errors at the largest point", card.precision_section(runs, metrics, _tolerance(fits))),
              ("IsoFLOP budgets (Approach 2)", card.isoflop_section(_find(fits, "approach2", LOSS_TARGET))),
              ("Held-out errors beside the noise", card.heldout_section(fits, bounded)),
              ("Growth and saturation of the downstream metrics", card.phases_section(fits, points, _tolerance(fits))),
              ("Figures", "\n\n".join(f"![{Path(f).stem}]({f})" for f in figs) + "\n\nPDF versions sit beside the PNGs; "
               "`tables/fits.tex` is the LaTeX (booktabs) table of the fitted parameters.")]
    method = ("Approach 3 of Hoffmann et al. 2022: L(N, D) = E + A/N^alpha + B/D^beta fitted by minimising the summed "
              "Huber loss (delta = 1e-3) of log-residuals with L-BFGS from Hoffmann's grid of 4500 starts; 95 % intervals "
              "and standard errors from a seeded bootstrap over runs; held-out extrapolation error on the largest-compute "
              "runs. Only completed runs enter a fit. Details per fit in the `method` column of `fits`.")
    from benchmark.reporting import sources as rs

    imported = rs.load(db_path)  # every other source in the database (python -m benchmark import ...)
    groups = rs.group_fits(fit_rows + imported["fits"])
    written += rs.law_figures(groups, out / "figures") + rs.write_tables(groups, out / "tables")
    blocks += rs.card_blocks(imported, groups)
    text = card.render(tables=table_summaries(out), repo_id=repo_id, git_sha=provenance.git_sha() or "unknown",
                       fit_method=method, metric_signatures=sigs, fits=[r for r in fit_rows if r["law"] == "chinchilla"],
                       blocks=blocks)
    io.write_text_atomic(out / "README.md", text)
    written.append(str(out / "index.html"))
    io.write_text_atomic(out / "index.html", page_html(runs + imported["runs"], metrics + imported["metrics"], groups,
                                                       imported, [Path(w) for w in written if w.endswith(".png")]))
    return written + [str(out / "README.md")]


def page_html(runs: list[dict], metrics: list[dict], groups: list[dict], imported: dict, pngs: list[Path]) -> str:
    """leaderboard/index.html (benchmark.reporting.page) with the card's key numbers."""
    from benchmark.reporting import page, sources as rs
    from benchmark.results import provenance

    keys = [(f"runs: {s}", str(sum(r["source"] == s for r in runs))) for s in dict.fromkeys(r["source"] for r in runs)]
    for g in groups:
        if g["law"] == "chinchilla" and g["target"] in (LOSS_TARGET, "log_perplexity/lambada_openai"):
            p = g["params"]
            rel = "" if g["rel_err"] is None else f", held-out {100 * g['rel_err']:.1f} %"
            keys.append((f"chinchilla on {g['source']}", f"E={page.fmt(p.get('E'))} α={page.fmt(p.get('alpha'))} "
                         f"β={page.fmt(p.get('beta'))} a={page.fmt(p.get('a'))}{rel}"))
    figs = [(p.stem.replace("_", " "), p) for p in pngs]
    return page.render(runs=runs, metrics=metrics, groups=groups, sources=imported["sources"], models=imported["models"],
                       figures=figs, keys=keys, headline=rs.HEADLINE, git_sha=provenance.git_sha() or "unknown")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmark report", description=__doc__)
    ap.add_argument("--data-dir", default="leaderboard/data")
    ap.add_argument("--fits", default="leaderboard/fits.json")
    ap.add_argument("--draws", default="leaderboard/fit_draws.json")
    ap.add_argument("--out", default="leaderboard")
    ap.add_argument("--repo-id", default="scaling-benchmark/leaderboard", help="dataset id named in the card's examples")
    ap.add_argument("--db", default="leaderboard/results.duckdb", help="imported sources are read from here (if it exists)")
    args = ap.parse_args(argv)
    written = report(Path(args.data_dir), Path(args.fits), Path(args.out), args.repo_id, Path(args.draws), Path(args.db))
    print("wrote " + ", ".join(written))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
