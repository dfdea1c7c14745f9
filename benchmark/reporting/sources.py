"""The report's cross-source part: every source's runs and fits from the database, one figure per law
comparing sources, LaTeX tables of parameters by source, and the card's sources and cross-source fits."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from benchmark.reporting import latex

# (metric, task, column label) shown for every run in the page's table, when a source has them
HEADLINE = [("val_loss", "all", "val loss"), ("log_perplexity", "lambada_openai", "LAMBADA ln ppl"),
            ("bleu", "translation", "BLEU"), ("rougeL", "summarization", "ROUGE-L"),
            ("accuracy", "classification", "classif. acc %"), ("accuracy", "lambada_openai", "LAMBADA acc %"),
            ("accuracy", "piqa", "PIQA %"), ("accuracy", "arc_easy", "ARC-e %"), ("accuracy", "arc_challenge", "ARC-c %"),
            ("accuracy", "mmlu", "MMLU %"), ("accuracy", "hellaswag", "HellaSwag %"), ("accuracy", "winogrande", "WinoGrande %")]
LAW_PARAMS = {"chinchilla": ["E", "A", "B", "alpha", "beta", "a"], "kaplan_nd": ["N_c", "D_c", "alpha_N", "alpha_D"],
              "sigmoid_compute": ["lo", "hi", "k", "C_mid", "C_growth", "C_saturation"],
              "two_step": ["lo", "hi", "k", "L_mid"], "seed_law": ["a", "b", "c", "gamma", "delta", "epsilon"]}
LAW_TITLES = {"chinchilla": r"$L = E + A/N^\alpha + B/D^\beta$ (Hoffmann et al.\ 2022, Approach 3)",
              "kaplan_nd": r"$L = [(N_c/N)^{\alpha_N/\alpha_D} + D_c/D]^{\alpha_D}$ (Kaplan et al.\ 2020, eq.\ 1.5)",
              "sigmoid_compute": r"$P = \mathrm{lo} + (\mathrm{hi}-\mathrm{lo})/(1 + (C_\mathrm{mid}/C)^k)$ (Owen 2024)",
              "two_step": r"two-step: $L(N, D)$, then $P = \mathrm{lo} + (\mathrm{hi}-\mathrm{lo})/(1+e^{k(L - L_\mathrm{mid})})$ (Dubey et al.\ 2024)",
              "seed_law": r"$P = a N^{1-\gamma} + b D^\delta + c C^\epsilon$ (project hypothesis)"}


def load(db_path: Path | None) -> dict[str, list[dict[str, Any]]]:
    """Rows of every source but `local` (runs, headline metrics, fits, sources, models); empty without a database."""
    out: dict[str, list[dict[str, Any]]] = {t: [] for t in ("runs", "metrics", "fits", "sources", "models")}
    if db_path is None or not Path(db_path).exists():
        return out
    from benchmark.results import db

    con = db.connect(str(db_path), read_only=True)
    try:
        for t in ("runs", "fits", "sources", "models"):
            out[t] = db.read_rows(con, t, "source <> 'local'")
        pairs = " OR ".join(f"(metric = '{m}' AND task = '{t}')" for m, t, _ in HEADLINE)
        out["metrics"] = db.read_rows(con, "metrics", f"source <> 'local' AND ({pairs})")
    finally:
        con.close()
    return out


def group_fits(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flat `fits` rows -> one dict per (source, law, target): params, ci95, n_points, rel_err."""
    groups: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        g = groups.setdefault((r["source"], r["law"], r["target"]), {
            "source": r["source"], "law": r["law"], "target": r["target"], "params": {}, "ci95": {},
            "n_points": r["n_points"], "rel_err": r["extrapolation_rel_err"],
            "identified": r.get("identified") is not False, "identification": r.get("identification")})
        g["params"][r["parameter"]] = r["estimate"]
        if r["ci95_low"] is not None and r["ci95_high"] is not None:
            g["ci95"][r["parameter"]] = [r["ci95_low"], r["ci95_high"]]
    return sorted(groups.values(), key=lambda g: (g["law"], g["source"] != "local", g["source"], g["target"]))


def _rel(g: dict) -> str:
    return "--" if g["rel_err"] is None else f"${100 * g['rel_err']:.1f}\\,\\%$"


def law_tex(law: str, groups: list[dict[str, Any]]) -> str:
    """Parameters of one law by source and target, with the held-out error."""
    rows = [(f"{g['source']}: {g['target']}", {p: (g["params"].get(p), g["ci95"].get(p)) for p in LAW_PARAMS[law]}
             if g["identified"] else f"not identified ({g['identification'] or ''})",
             f"{_rel(g)} & {g['n_points']}") for g in groups if g["law"] == law]
    cap = (f"{LAW_TITLES[law]} fitted to each source with the same method, 95\\,\\% bootstrap intervals; "
           r"err: mean $|$relative error$|$ on the held-out largest-compute 20\,\% of runs (fitted without them).")
    return latex.table(LAW_PARAMS[law], rows, cap, f"tab:{law}-by-source", extra_head=r"err & $n$")


def write_tables(groups: list[dict[str, Any]], out: Path) -> list[str]:
    from benchmark.results import io

    written = []
    for law in LAW_PARAMS:
        if any(g["law"] == law for g in groups):
            path = out / f"{law}_by_source.tex"
            io.write_text_atomic(path, law_tex(law, groups))
            written.append(str(path))
    return written


LOG_REACH = 3.0  # decades a log10 panel of law_figures shows past the estimates, for their intervals


def _log10_limits(values: list[tuple[float | None, list | None]]) -> tuple[float, float] | None:
    """x limits, in log10 units, of a panel of a parameter spanning decades, from (estimate, 95 % interval)
    pairs: every positive estimate, the intervals up to LOG_REACH decades beyond them (a degenerate bootstrap
    interval, e.g. A up to 1e160 on the tiny grid, must not squash the estimates). None without a positive
    finite estimate."""
    est = [math.log10(e) for e, _ in values if e is not None and math.isfinite(e) and e > 0]
    if not est:
        return None
    lo, hi = min(est), max(est)
    ends = [math.log10(v) for e, ci in values if ci and e is not None and math.isfinite(e) and e > 0
            for v in ci if v is not None and math.isfinite(v) and v > 0]
    lo, hi = max(min([lo, *ends]), lo - LOG_REACH), min(max([hi, *ends]), hi + LOG_REACH)
    pad = max(0.2, 0.05 * (hi - lo))
    return lo - pad, hi + pad


def _log10_within(v: float | None, lim: tuple[float, float], est: float) -> float:
    """An interval end in log10 units, cut at the panel's edges (0 or below: the left edge; unknown: the estimate)."""
    if v is None or math.isnan(v):
        return est
    if v <= 0:
        return lim[0]
    return min(max(math.log10(v) if math.isfinite(v) else lim[1], lim[0]), lim[1])


def law_figures(groups: list[dict[str, Any]], out: Path) -> list[str]:
    """One figure per law: each parameter's estimate and 95 % interval by source and target; a parameter
    that spans decades (A, B, N_c, D_c, C_*) as its log10 on a linear axis, so that any positive float can be
    drawn (a log axis cannot tick a degenerate fit's 1e-277 .. 1e248: OverflowError in savefig)."""
    from benchmark.reporting import figures

    plt = figures._plt()
    written = []
    for law, names in LAW_PARAMS.items():
        gs = [g for g in groups if g["law"] == law]
        if not gs:
            continue
        names = [n for n in names if any(n in g["params"] for g in gs)][:6]
        h = max(2.2, 0.22 * len(gs) + 1.0)
        fig, axes = plt.subplots(1, len(names), figsize=(min(11.0, 2.3 * len(names)), h), squeeze=False, sharey=True)
        labels = [f"{g['source']}: {g['target']}" for g in gs]
        for ax, name in zip(axes[0], names):
            log = name.startswith("C_") or name in ("A", "B", "N_c", "D_c")
            lim = _log10_limits([(g["params"].get(name), g["ci95"].get(name)) for g in gs]) if log else None
            for i, g in enumerate(gs):
                est, ci = g["params"].get(name), g["ci95"].get(name)
                if est is None or not math.isfinite(est):
                    continue
                if log:
                    if lim is None or est <= 0:
                        continue
                    est, ci = math.log10(est), [_log10_within(v, lim, est) for v in ci] if ci else None
                err = [[max(0.0, est - ci[0])], [max(0.0, ci[1] - est)]] if ci else None
                ax.errorbar([est], [i], xerr=err, fmt=figures.MARKERS[i % len(figures.MARKERS)], color="k", capsize=2, markersize=4)
            if log:
                if lim is not None:
                    ax.set_xlim(*lim)
                ax.set_xlabel(f"log10 {name}")
                continue
            if name == "k":  # a step-like benchmark (k in the thousands) must not flatten the others
                ax.set_xscale("symlog", linthresh=1.0)
            ax.set_xlabel(name)
        axes[0][0].set_yticks(range(len(gs)))
        axes[0][0].set_yticklabels(labels, fontsize=6)
        axes[0][0].invert_yaxis()
        fig.suptitle(f"{law}: parameters by source (95 % bootstrap intervals)", fontsize=9)
        written += figures.save(fig, out / f"law_{law}")
    return written


def card_blocks(data: dict[str, list[dict[str, Any]]], groups: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Markdown sections of the card: the imported sources and the key fits across sources."""
    from benchmark.reporting.card import md_cell

    if not data["sources"]:
        return []
    src = ["| source | citation | files | commit | license | runs | metric rows |", "|---|---|---|---|---|---|---|"]
    for s in data["sources"]:
        src.append(f"| `{s['source']}` | {md_cell(s['citation'])} | {md_cell(s['url'] or '–')} | "
                   f"`{(s['commit'] or '–')[:12]}` | {md_cell(s['license'] or '–')} | {s['n_runs']} | {s['n_metrics']} |")
    text = "\n".join(src) + "\n\nImported with `python -m benchmark import <format>`; the `note` column of the sources table says how N, D and C were derived."
    key = ["| source | law | target | parameters (95 % interval) | held-out mean abs. rel. error | points |", "|---|---|---|---|---|---|"]
    for g in groups:
        if g["source"] == "local" or g["law"] not in LAW_PARAMS:
            continue
        if g["law"] in ("sigmoid_compute", "two_step", "seed_law") and "@" in g["target"]:
            continue  # per-family fits: in the fits table and the page
        ps = ", ".join(f"{p} = {_num(g['params'][p])}" + (f" [{_num(g['ci95'][p][0])}, {_num(g['ci95'][p][1])}]" if p in g["ci95"] else "")
                       for p in LAW_PARAMS[g["law"]] if p in g["params"])
        if not g["identified"]:
            ps = f"not identified ({g['identification'] or ''})"
        rel = "–" if g["rel_err"] is None else f"{100 * g['rel_err']:.2f} %"
        key.append(f"| `{g['source']}` | {g['law']} | {md_cell(g['target'])} | {md_cell(ps)} | {rel} | {g['n_points']} |")
    return [("Imported sources", text), ("Fits across sources", "\n".join(key))]


def _num(x: float) -> str:
    return f"{x:.4g}" if x is not None else "–"
