"""Figures for papers, from values: loss vs compute with the fitted law, IsoFLOP curves, downstream metrics, literature.

Every figure is readable in black and white: each model size has its own marker and line style as
well as its own shade; held-out runs are hollow. Functions take rows and fits, return a Figure.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
LINESTYLES = ["-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1)), (0, (1, 1)), (0, (5, 5))]
DOWNSTREAM = (("bleu", "translation", "BLEU"), ("rougeL", "summarization", "ROUGE-L F1"),
              ("accuracy", "classification", "accuracy (%)"))


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.grid": True, "grid.alpha": 0.3, "savefig.dpi": 150,
                         "figure.constrained_layout.use": True})
    return plt


def size_styles(sizes: Sequence[str]) -> dict[str, dict]:
    """A distinct (marker, line style, grey-to-colour shade) per size, ordered as given (small to large)."""
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    n = max(1, len(sizes) - 1)
    return {s: {"marker": MARKERS[i % len(MARKERS)], "linestyle": LINESTYLES[i % len(LINESTYLES)],
                "color": cmap(0.85 * i / n)} for i, s in enumerate(sizes)}


def _by_size(runs: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in sorted(runs, key=lambda r: (r["n_params"], r["flops"])):
        out.setdefault(r["model_size"], []).append(r)
    return out


def loss_vs_compute(runs: list[dict], loss: dict[str, float], fit: dict | None, draws: list[dict] | None,
                    cutoff: float | None, law_predict=None):
    """Validation loss against training FLOPs, one line per size, the fitted L(N, D) through each
    size (D = C / 6N) with its bootstrap 95 % band; runs above the extrapolation cutoff are hollow."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.0, 3.6))
    groups = _by_size([r for r in runs if r["run_id"] in loss])
    styles = size_styles(list(groups))
    for size, rs in groups.items():
        st = styles[size]
        C = np.array([r["flops"] for r in rs])
        L = np.array([loss[r["run_id"]] for r in rs])
        n = rs[0]["n_params"]
        ax.plot(C, L, linestyle="none", marker=st["marker"], color=st["color"], markersize=5,
                label=f"{size} (N={n / 1e6:.2g}M)")
        held = np.array([cutoff is not None and c > cutoff for c in C])
        if held.any():
            ax.plot(C[held], L[held], linestyle="none", marker=st["marker"], markersize=7, markerfacecolor="white",
                    markeredgecolor=st["color"])
        if fit is not None and law_predict is not None:
            grid = np.geomspace(C.min() / 1.5, C.max() * 1.5, 60)
            ax.plot(grid, law_predict(fit["params"], N=np.full_like(grid, n), D=grid / (6 * n)), color=st["color"],
                    linestyle=st["linestyle"], linewidth=1)
            if draws:
                curves = np.array([law_predict(d, N=np.full_like(grid, n), D=grid / (6 * n)) for d in draws])
                lo, hi = np.nanpercentile(curves, [2.5, 97.5], axis=0)
                ax.fill_between(grid, lo, hi, color=st["color"], alpha=0.15, linewidth=0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training compute C = 6ND (FLOP)")
    ax.set_ylabel("validation loss (nats / target token)")
    title = "Validation loss vs compute"
    if fit is not None:
        p = fit["params"]
        title += f"\nfit: E={p['E']:.3g}, A={p['A']:.3g}, B={p['B']:.3g}, α={p['alpha']:.2f}, β={p['beta']:.2f}"
    ax.set_title(title, fontsize=9)
    if cutoff is not None:
        ax.plot([], [], linestyle="none", marker="o", markerfacecolor="white", markeredgecolor="k", label="held out of the fit")
    ax.legend(fontsize=7, frameon=False)
    return fig


def isoflop(runs: list[dict], loss: dict[str, float], budgets: list[dict]):
    """Loss against N for runs of (nearly) equal compute, a parabola in log N per budget and its minimum
    (Hoffmann et al. 2022, Approach 2, Fig. 3)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.0, 3.6))
    by_id = {r["run_id"]: r for r in runs}
    for i, b in enumerate(budgets):
        rs = [by_id[i_] for i_ in b["run_ids"] if i_ in by_id and i_ in loss]
        N = np.array([r["n_params"] for r in rs], float)
        L = np.array([loss[r["run_id"]] for r in rs])
        style = {"marker": MARKERS[i % len(MARKERS)], "linestyle": LINESTYLES[i % len(LINESTYLES)], "color": f"C{i}"}
        ax.plot(N, L, linestyle="none", marker=style["marker"], color=style["color"], label=f"C ≈ {b['flops']:.2g} FLOP")
        if len(N) >= 3:
            c2, c1, c0 = np.polyfit(np.log(N), L, 2)
            g = np.geomspace(N.min() / 1.3, N.max() * 1.3, 50)
            ax.plot(g, c0 + c1 * np.log(g) + c2 * np.log(g) ** 2, color=style["color"], linestyle=style["linestyle"], linewidth=1)
            if c2 > 0:
                n_opt = math.exp(-c1 / (2 * c2))
                ax.plot([n_opt], [c0 + c1 * math.log(n_opt) + c2 * math.log(n_opt) ** 2], marker="*", markersize=11,
                        color=style["color"], markeredgecolor="k", linestyle="none")
    ax.set_xscale("log")
    ax.set_xlabel("parameters N")
    ax.set_ylabel("validation loss (nats / target token)")
    ax.set_title("IsoFLOP profiles (stars: fitted minima)", fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    return fig


def downstream(runs: list[dict], values: dict[tuple[str, str, str], float], curves: dict[tuple[str, str], list[tuple[str, object]]],
               cutoff: float | None):
    """BLEU, ROUGE-L and accuracy against compute, one marker per size, with the fitted curves."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(9.0, 3.0))
    groups = _by_size(runs)
    styles = size_styles(list(groups))
    for ax, (metric, task, label) in zip(axes, DOWNSTREAM):
        allC = []
        for size, rs in groups.items():
            pts = [(r["flops"], values[(r["run_id"], task, metric)]) for r in rs if (r["run_id"], task, metric) in values]
            if not pts:
                continue
            C, V = map(np.array, zip(*pts))
            allC += list(C)
            st = styles[size]
            ax.plot(C, V, marker=st["marker"], color=st["color"], linestyle="none", label=size)
            held = np.array([cutoff is not None and c > cutoff for c in C])
            if held.any():
                ax.plot(C[held], V[held], linestyle="none", marker=st["marker"], markersize=8,
                        markerfacecolor="white", markeredgecolor=st["color"])
        if allC:
            grid = np.geomspace(min(allC) / 1.5, max(allC) * 1.5, 80)
            for j, (name, fn) in enumerate(curves.get((metric, task), [])):
                ax.plot(grid, fn(grid), color="k", linestyle=LINESTYLES[j], linewidth=1, label=name)
        ax.set_xscale("log")
        ax.set_xlabel("training compute (FLOP)")
        ax.set_ylabel(label)
        ax.set_title(f"{task}", fontsize=9)
    axes[0].legend(fontsize=6, frameon=False)
    return fig


def literature(ours: list[tuple[str, dict]], published: list[dict]):
    """alpha, beta and the allocation exponent a of our fits (95 % bootstrap intervals) beside published values."""
    plt = _plt()
    names = ["alpha", "beta", "a"]
    fig, axes = plt.subplots(1, 3, figsize=(9.0, 3.0))
    for ax, name in zip(axes, names):
        labels, vals, errs = [], [], []
        for label, f in ours:
            est = f["params"].get(name, (f.get("allocation") or {}).get(name))
            if est is None:
                continue
            lo, hi = (f["ci95"].get(name) or [None, None])
            labels.append(label)
            vals.append(est)
            errs.append((est - lo, hi - est) if lo is not None and hi is not None else (0, 0))
        for row in published:
            if row["parameter"] == name:
                labels.append(row["source"])
                vals.append(row["estimate"])
                errs.append((0, 0))
        y = np.arange(len(labels))
        e = np.array(errs).T if errs else None
        ours_n = sum(1 for lab in labels if lab.startswith("this grid"))
        ax.errorbar(vals[:ours_n], y[:ours_n], xerr=e[:, :ours_n] if e is not None else None, fmt="o", color="k", capsize=3)
        ax.plot(vals[ours_n:], y[ours_n:], linestyle="none", marker="s", markerfacecolor="white", markeredgecolor="k")
        ax.set_yticks(y)
        ax.set_yticklabels(labels, fontsize=7)
        ax.set_xlabel(name)
        ax.set_title({"a": "allocation a (N_opt ∝ C^a)"}.get(name, name), fontsize=9)
    return fig


def save(fig, stem) -> list[str]:
    """Write stem.png and stem.pdf; returns both paths."""
    import matplotlib.pyplot as plt

    out = []
    for ext in ("png", "pdf"):
        path = f"{stem}.{ext}"
        fig.savefig(path, metadata={"CreationDate": None} if ext == "pdf" else None)
        out.append(path)
    plt.close(fig)
    return out
