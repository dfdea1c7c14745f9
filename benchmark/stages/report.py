"""DVC stage `report`: the leaderboard table, figures (PNG + PDF), a LaTeX table of fits, and the dataset card.

Reads the exported parquet files and fits.json; writes `leaderboard/README.md` (the Hugging Face
dataset card, with the leaderboard and figures embedded), `leaderboard/figures/*.{png,pdf}` (the
PNGs are also the `dvc plots`) and `leaderboard/tables/{leaderboard.md,fits.tex}`.
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


def _fmt(x, digits=3) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"
    return str(x)


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
            cells.append("–" if x is None else f"{x['value']:.3f} ± {x['stderr']:.3f}" if metric == LOSS
                         else f"{x['value']:.1f} ± {x['stderr']:.1f}")
        lines.append(f"| {r['run_id']} | {r['model_size']} | {r['n_params']:,} | {r['n_params_nonembedding'] or 0:,} | "
                     f"{r['tokens']:,} | {r['flops']:.3g} | " + " | ".join(cells) + f" | {r['status']} |")
    return "\n".join(lines) + "\n"


def fits_tex(fits: list[dict], literature: list[dict]) -> str:
    """booktabs LaTeX: chinchilla parameters per target with 95 % intervals, then published values."""
    names = ["E", "A", "B", "alpha", "beta", "a"]
    tex_names = {"alpha": r"$\alpha$", "beta": r"$\beta$", "a": r"$a$"}
    lines = [r"\begin{table}[t]", r"\centering", r"\small",
             r"\begin{tabular}{l" + "c" * len(names) + "r}", r"\toprule",
             "Fit & " + " & ".join(tex_names.get(n, f"${n}$") for n in names) + r" & $n$ \\", r"\midrule"]
    for f in fits:
        if f["law"] != "chinchilla":
            continue
        vals = {**f["params"], **{k: v for k, v in (f.get("allocation") or {}).items() if k in ("a", "b")}}
        cells = []
        for n in names:
            est, ci = vals.get(n), f["ci95"].get(n)
            cells.append("--" if est is None else f"{_fmt(est)}" + (f" [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else ""))
        target = f["target"].replace("_", r"\_")
        lines.append(f"This grid: {target} & " + " & ".join(cells) + f" & {f['n_points']} \\\\")
    pubs: dict[str, dict[str, float]] = {}
    for row in literature:
        if row["law"] == "chinchilla" or row["parameter"] in ("a",):
            pubs.setdefault(row["source"], {})[row["parameter"]] = row["estimate"]
    if pubs:
        lines.append(r"\midrule")
        for src, vals in sorted(pubs.items()):
            lines.append(f"{src} & " + " & ".join(_fmt(vals.get(n)) if n in vals else "--" for n in names) + r" & -- \\")
    lines += [r"\bottomrule", r"\end{tabular}",
              r"\caption{Fitted $L(N, D) = E + A/N^\alpha + B/D^\beta$ (Hoffmann et al.\ 2022, Approach 3; summed Huber, "
              r"$\delta=10^{-3}$, L-BFGS from 4500 starts) with 95\,\% bootstrap intervals, and published values. "
              r"$a = \beta/(\alpha+\beta)$ is the exponent of $N_\mathrm{opt} \propto C^a$.}",
              r"\label{tab:scaling-fits}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def _find(fits: list[dict], law: str, target: str) -> dict | None:
    return next((f for f in fits if f["law"] == law and f["target"] == target), None)


def make_figures(runs, metrics, fits, literature, draws, out: Path) -> list[str]:
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
    # IsoFLOP budgets straight from the runs (the approach2 fit may have found no interior minimum).
    from benchmark.scaling.laws import group_budgets

    a2 = _find(fits, "approach2", LOSS_TARGET)
    tol = (a2 or {}).get("method", {}).get("budget_tolerance", 0.15)
    scored = [r for r in done if r["run_id"] in loss]
    groups = group_budgets([r["flops"] for r in scored], tol) if scored else []
    budgets = [{"flops": float(sum(scored[i]["flops"] for i in g) / len(g)), "run_ids": [scored[i]["run_id"] for i in g]}
               for g in groups if len(g) >= 3]
    written += figures.save(figures.isoflop(done, loss, budgets), out / "isoflop")
    values = {(r["run_id"], r["task"], r["metric"]): r["value"] for r in metrics}
    curves = {}
    for m in figures.downstream_metrics():
        metric, task = m.name, m.headline_task
        target = f"{metric}/{task}"
        cs = []
        f = _find(fits, "sigmoid_compute", target)
        if f is not None:
            cs.append(("sigmoid of log C", lambda C, p=f["params"]: LAWS["sigmoid_compute"].predict(p, C=C)))
        curves[(metric, task)] = cs
    written += figures.save(figures.downstream(done, values, curves, cutoff), out / "downstream")
    ours = [(f"this grid ({f['target']})", f) for f in fits if f["law"] == "chinchilla" and f["target"] == LOSS_TARGET]
    ours += [("this grid (approach 2)", f) for f in fits if f["law"] == "approach2" and f["target"] == LOSS_TARGET]
    written += figures.save(figures.literature(ours, literature), out / "literature")
    return written


def report(data_dir: Path, fits_path: Path, out: Path, repo_id: str, draws_path: Path | None = None) -> list[str]:
    from benchmark.reporting import card
    from benchmark.results import provenance
    from benchmark.results.dataset import table_summaries

    runs, metrics = _read(data_dir, "runs"), _read(data_dir, "metrics")
    literature, fit_rows = _read(data_dir, "literature"), _read(data_dir, "fits")
    fits = io.read_json(fits_path) if fits_path.exists() else []
    draws = io.read_json(draws_path) if draws_path and draws_path.exists() else {}
    (out / "figures").mkdir(parents=True, exist_ok=True)
    written = make_figures(runs, metrics, fits, literature, draws, out / "figures")
    table = leaderboard_md(runs, metrics)
    io.write_text_atomic(out / "tables" / "leaderboard.md", table)
    io.write_text_atomic(out / "tables" / "fits.tex", fits_tex(fits, literature))
    sigs = {}
    for r in metrics:
        sigs.setdefault(r["metric"], r["signature"])
    figs = [Path(w).relative_to(out).as_posix() for w in written if w.endswith(".png")]
    blocks = [("Leaderboard", table),
              ("Figures", "\n\n".join(f"![{Path(f).stem}]({f})" for f in figs) + "\n\nPDF versions sit beside the PNGs; "
               "`tables/fits.tex` is the LaTeX (booktabs) table of the fitted parameters.")]
    method = ("Approach 3 of Hoffmann et al. 2022: L(N, D) = E + A/N^alpha + B/D^beta fitted by minimising the summed "
              "Huber loss (delta = 1e-3) of log-residuals with L-BFGS from Hoffmann's grid of 4500 starts; 95 % intervals "
              "and standard errors from a seeded bootstrap over runs; held-out extrapolation error on the largest-compute "
              "runs. Only completed runs enter a fit. Details per fit in the `method` column of `fits`.")
    text = card.render(tables=table_summaries(out), repo_id=repo_id, git_sha=provenance.git_sha() or "unknown",
                       fit_method=method, metric_signatures=sigs, fits=[r for r in fit_rows if r["law"] == "chinchilla"],
                       blocks=blocks)
    io.write_text_atomic(out / "README.md", text)
    return written + [str(out / "README.md")]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmark report", description=__doc__)
    ap.add_argument("--data-dir", default="leaderboard/data")
    ap.add_argument("--fits", default="leaderboard/fits.json")
    ap.add_argument("--draws", default="leaderboard/fit_draws.json")
    ap.add_argument("--out", default="leaderboard")
    ap.add_argument("--repo-id", default="scaling-benchmark/leaderboard", help="dataset id named in the card's examples")
    args = ap.parse_args(argv)
    written = report(Path(args.data_dir), Path(args.fits), Path(args.out), args.repo_id, Path(args.draws))
    print("wrote " + ", ".join(written))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
