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


def downstream_metrics():
    """The headline downstream metrics of the registry (benchmark.evaluation.metrics.METRICS), one panel each."""
    from benchmark.evaluation.metrics import downstream_headline

    return downstream_headline()


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


def _means(rs: list[dict], value: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(C, mean, seed std; 0 for one seed) per grid point of one size's runs: replicates (another seed of the
    same point, benchmark.results.points.point_index) become one point at their mean C."""
    from benchmark.results.points import point_index, point_stats

    rs = [r for r in rs if r["run_id"] in value]
    by: dict[int, list[dict]] = {}
    for r, k in zip(rs, point_index([r["n_params"] for r in rs], [r["tokens"] for r in rs])):
        by.setdefault(int(k), []).append(r)
    stats = sorted(((float(np.mean([r["flops"] for r in g])), point_stats([value[r["run_id"]] for r in g])) for g in by.values()),
                   key=lambda t: t[0])
    return (np.array([c for c, _ in stats]), np.array([s["mean"] for _, s in stats]),
            np.array([s["std"] or 0.0 for _, s in stats]))


def _points(ax, C, V, err, st, cutoff, **kw) -> None:
    """Per-point means with seed-std error bars (where a point has replicates); held-out points hollow."""
    ax.errorbar(C, V, yerr=np.where(err > 0, err, np.nan) if (err > 0).any() else None, linestyle="none",
                marker=st["marker"], color=st["color"], markersize=5, capsize=2, elinewidth=0.8, **kw)
    held = np.array([cutoff is not None and c >= cutoff for c in C])
    if held.any():
        ax.plot(C[held], V[held], linestyle="none", marker=st["marker"], markersize=7, markerfacecolor="white",
                markeredgecolor=st["color"], zorder=3)  # above the error bar's filled marker


def loss_vs_compute(runs: list[dict], loss: dict[str, float], fit: dict | None, draws: list[dict] | None,
                    cutoff: float | None, law_predict=None):
    """Validation loss against training FLOPs, one line per size (each point the mean of its seed replicates, error
    bars their std), the fitted L(N, D) through each size (D = C / 6N) with its bootstrap 95 % band; points held
    out of the fit (C at or above the extrapolation cutoff) are hollow."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.0, 3.6))
    groups = _by_size([r for r in runs if r["run_id"] in loss])
    styles = size_styles(list(groups))
    for size, rs in groups.items():
        st = styles[size]
        C, L, err = _means(rs, loss)
        n = rs[0]["n_params"]
        _points(ax, C, L, err, st, cutoff, label=f"{size} (N={n / 1e6:.2g}M)")
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
    from matplotlib.ticker import FormatStrFormatter

    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(FormatStrFormatter("%g"))
    ax.set_xlabel("training compute C = 6ND (FLOP)")
    ax.set_ylabel("validation loss (nats / token)")
    title = "Validation loss vs compute"
    if fit is not None:
        p = fit["params"]
        title += f"\nfit: E={p['E']:.3f}, A={p['A']:.3g}, B={p['B']:.3g}, α={p['alpha']:.2f}, β={p['beta']:.2f}"
    ax.set_title(title, fontsize=9)
    if cutoff is not None:
        _held_out_legend(ax)
    ax.legend(fontsize=7, frameon=False)
    return fig


def _held_out_legend(ax) -> None:
    """A legend entry for the hollow markers of runs held out of the fit."""
    ax.plot([], [], linestyle="none", marker="o", markerfacecolor="white", markeredgecolor="k", label="held out of the fit")


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
        points = ax.plot(N, L, linestyle="none", marker=style["marker"], color=style["color"], label=f"C ≈ {b['flops']:.2g} FLOP")[0]
        if len(N) >= 3:
            c2, c1, c0 = np.polyfit(np.log(N), L, 2)
            g = np.geomspace(N.min() / 1.3, N.max() * 1.3, 50)
            ax.plot(g, c0 + c1 * np.log(g) + c2 * np.log(g) ** 2, color=style["color"], linestyle=style["linestyle"], linewidth=1)
            n_opt = math.exp(-c1 / (2 * c2)) if c2 > 0 else None
            if n_opt is not None and N.min() <= n_opt <= N.max():  # an interior minimum only
                y_opt = c0 + c1 * math.log(n_opt) + c2 * math.log(n_opt) ** 2
                ci = b.get("N_opt_ci95")
                if ci:  # the fit's 95 % bootstrap interval of N_opt
                    ax.plot(ci, [y_opt, y_opt], color=style["color"], linewidth=2.5, alpha=0.5, solid_capstyle="butt")
                ax.plot([n_opt], [y_opt], marker="*", markersize=11, color=style["color"], markeredgecolor="k", linestyle="none")
            else:  # the optimum lies outside the sampled sizes: say which side instead of drawing a star
                side = "smallest" if L.argmin() == N.argmin() else "largest" if L.argmin() == N.argmax() else "edge"
                points.set_label(f"C ≈ {b['flops']:.2g} FLOP: no minimum inside, {side} N is best")
    ax.set_xscale("log")
    from matplotlib.ticker import FuncFormatter

    # label the minor ticks at 2x and 5x a power of ten only: all eight crowd into each other over 1-2 decades
    ax.xaxis.set_minor_formatter(FuncFormatter(
        lambda v, _: f"${v / 10 ** math.floor(math.log10(v)):.0f}\\times10^{{{math.floor(math.log10(v))}}}$"
        if v > 0 and round(v / 10 ** math.floor(math.log10(v))) in (2, 5) else ""))
    ax.set_xlabel("parameters N")
    ax.set_ylabel("validation loss (nats / token)")
    ax.set_title("IsoFLOP profiles (stars: minima inside the sampled N; bars: N_opt 95 % CI)" if budgets
                 else "IsoFLOP profiles: no compute budget has 3 runs", fontsize=8)
    ax.legend(fontsize=7, frameon=False)
    return fig


def downstream(runs: list[dict], values: dict[tuple[str, str, str], float], curves: dict[tuple[str, str], list[tuple[str, object]]],
               cutoff: float | None, marks: dict[tuple[str, str], list[tuple[str, float, list | None]]] | None = None):
    """BLEU, ROUGE-L and accuracy against compute, one marker per size (per-point means, seed-std error bars), with
    the fitted curves; marks: (label, C, 95 % interval) per panel, drawn as vertical lines with interval bands
    (the sigmoid's inflection C_mid and C_slowdown, where the gain per doubling of C has halved)."""
    plt = _plt()
    panels = [(m.name, m.headline_task, m.label) for m in downstream_metrics()]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.0 * len(panels), 3.0))
    groups = _by_size(runs)
    styles = size_styles(list(groups))
    for ax, (metric, task, label) in zip(axes, panels):
        allC = []
        for size, rs in groups.items():
            value = {r["run_id"]: values[(r["run_id"], task, metric)] for r in rs if (r["run_id"], task, metric) in values}
            if not value:
                continue
            C, V, err = _means(rs, value)
            allC += list(C)
            _points(ax, C, V, err, styles[size], cutoff, label=size)
        if allC:
            grid = np.geomspace(min(allC) / 1.5, max(allC) * 1.5, 80)
            for j, (name, fn) in enumerate(curves.get((metric, task), [])):
                ax.plot(grid, fn(grid), color="k", linestyle=LINESTYLES[j], linewidth=1, label=name)
        for j, (name, c, ci) in enumerate((marks or {}).get((metric, task), [])):
            shade = ("tab:blue", "tab:red")[j % 2]
            ax.axvline(c, color=shade, linestyle=("--", ":")[j % 2], linewidth=1, label=name)
            if ci and ci[0] is not None and ci[1] is not None:
                ax.axvspan(ci[0], ci[1], color=shade, alpha=0.1, linewidth=0)
        ax.set_xscale("log")
        if allC:  # a mark or band far outside the grid must not squash the data
            ax.set_xlim(min(allC) / 3, max(allC) * 3)
        ax.set_xlabel("training compute (FLOP)")
        ax.set_ylabel(label)
        ax.set_title(f"{task}", fontsize=9)
    if cutoff is not None:
        _held_out_legend(axes[0])
    axes[0].legend(fontsize=6, frameon=False)
    shown = set(axes[0].get_legend_handles_labels()[1])
    for ax in axes[1:]:  # a curve another panel's legend does not name (e.g. "... (not identified)") gets its own
        own = [(h, lab) for h, lab in zip(*ax.get_legend_handles_labels()) if lab not in shown]
        if own:
            ax.legend(*zip(*own), fontsize=6, frameon=False)
    return fig


def _published(published: list[dict], name: str) -> list[tuple[str, float]]:
    """(label, value) of published values of alpha, beta (chinchilla form) or the allocation a."""
    out = []
    for row in published:
        if name in ("alpha", "beta") and row["law"] == "chinchilla" and row["parameter"] == name:
            out.append((row["source"], row["estimate"]))
        elif name == "a" and row["parameter"] == "a":
            out.append((f"{row['source']} ({row['law']})", row["estimate"]))
        elif name == "a" and row["law"] == "compute_optimal_tokens" and row["parameter"] == "alpha":
            out.append((f"{row['source']} (1 - D_opt exp.)", 1.0 - row["estimate"]))  # D_opt ~ C^alpha => N_opt ~ C^(1-alpha)
    return out


def literature(ours: list[tuple[str, dict]], published: list[dict]):
    """alpha, beta and the allocation exponent a of our fits (95 % bootstrap intervals, filled) beside
    published values (hollow squares)."""
    plt = _plt()
    names = ["alpha", "beta", "a"]
    fig, axes = plt.subplots(1, 3, figsize=(9.5, 3.2))
    for ax, name in zip(axes, names):
        labels, vals, lo, hi = [], [], [], []
        for label, f in ours:
            est = f["params"].get(name, (f.get("allocation") or {}).get(name))
            if est is None:
                continue
            ci = f["ci95"].get(name) or [est, est]
            labels.append(label)
            vals.append(est)
            lo.append(min(est, ci[0] if ci[0] is not None else est))
            hi.append(max(est, ci[1] if ci[1] is not None else est))
        n_ours = len(labels)
        pubs = _published(published, name)
        labels += [p[0] for p in pubs]
        vals += [p[1] for p in pubs]
        y = np.arange(len(labels))
        if n_ours:
            v = np.array(vals[:n_ours])
            ax.errorbar(v, y[:n_ours], xerr=[v - np.array(lo), np.array(hi) - v], fmt="o", color="k", capsize=3)
        ax.plot(vals[n_ours:], y[n_ours:], linestyle="none", marker="s", markerfacecolor="white", markeredgecolor="k")
        span = vals + [x for x in lo + hi if x is not None]
        if span:  # a degenerate interval (e.g. alpha up to 27 on a tiny grid) must not squash the published values
            ref = max(vals) if vals else 1.0
            ax.set_xlim(0, min(max(span), 2.5 * ref) * 1.1)
        ax.set_yticks(y)
        ax.set_yticklabels(labels, fontsize=7)
        ax.set_xlabel(name)
        ax.set_title({"a": "allocation a (N_opt ∝ C^a)"}.get(name, name), fontsize=9)
    fig.suptitle("This grid (filled, 95 % bootstrap interval) against published values (hollow)", fontsize=9)
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


def learning_curves(runs: list[dict], curves: list[dict]):
    """Train and validation loss against training tokens within each run (the seed article's Sec. 5.4), one panel
    per model size and one colour per run (its token budget and seed): validation on the fixed subset solid with
    markers, train loss dashed, so growth and saturation show within a run as well as across the grid."""
    plt = _plt()
    groups = {size: [r for r in rs if any(c["run_id"] == r["run_id"] for c in curves)] for size, rs in _by_size(runs).items()}
    groups = {size: rs for size, rs in groups.items() if rs}
    n = max(1, len(groups))
    cols = min(n, 4)  # rows of at most 4 panels: 9 sizes in one row made a page-wide strip nobody could read
    rows = -(-n // cols)
    fig, grid = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), sharey=True, squeeze=False)
    axes = list(grid.ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    if not groups:
        axes[0].text(0.5, 0.5, "no learning curves\n(train.eval_every = 0)", ha="center", va="center",
                     transform=axes[0].transAxes)
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    for ax, (size, rs) in zip(axes, groups.items()):
        rs = sorted(rs, key=lambda r: (r["tokens"], r["seed"], r["run_id"]))
        for i, r in enumerate(rs):
            color = cmap(0.85 * i / max(1, len(rs) - 1))
            for split, style in (("val", {"linestyle": "-", "marker": MARKERS[i % len(MARKERS)], "markersize": 3}),
                                 ("train", {"linestyle": "--"})):
                pts = sorted((c["tokens"], c["loss"]) for c in curves if c["run_id"] == r["run_id"] and c["split"] == split
                             and c["task"] == "all" and c["loss"] is not None)
                if pts:
                    T, L = zip(*pts)
                    ax.plot(T, L, color=color, linewidth=1, label=r["run_id"] if split == "val" else None, **style)
        ax.set_xscale("log")
        ax.set_xlabel("training tokens D")
        ax.set_title(f"{size} (N={rs[0]['n_params'] / 1e6:.2g}M)", fontsize=9)
        ax.plot([], [], color="k", linestyle="-", linewidth=1, label="validation (fixed subset)")
        ax.plot([], [], color="k", linestyle="--", linewidth=1, label="train")
        ax.legend(fontsize=6, frameon=False)
    for row in grid:
        row[0].set_ylabel("loss (nats / token)")
    fig.suptitle("Learning curves: train and validation loss within each run", fontsize=9)
    return fig


def residual_points(runs: list[dict], loss: dict[str, float], fit: dict, predict) -> dict[str, tuple[np.ndarray, ...]]:
    """size -> (C, mean, seed std) per grid point of 100 (L / L_hat - 1), the law's miss in % of its prediction for
    each run (fit["params"] through predict(params, N=, D=)), replicates pooled as in loss_vs_compute."""
    rs = [r for r in runs if r["run_id"] in loss]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        miss = {r["run_id"]: float(100.0 * (loss[r["run_id"]] / predict(fit["params"], N=np.array([float(r["n_params"])]),
                                                                        D=np.array([float(r["tokens"])]))[0] - 1.0))
                for r in rs}
    return {size: _means(g, miss) for size, g in _by_size(rs).items()}


def residuals(runs: list[dict], loss: dict[str, float], fits: Sequence[dict], predict: dict):
    """Each loss law's misses on its own grid (validation loss over the law's prediction, in %) against compute, one
    panel per law, each point the mean of its replicates with their seed std as error bars, points held out of the
    extrapolation hollow. The grey band is +-2 x the pure error of the lack-of-fit test (the replicates' spread,
    benchmark.scaling.quality.lack_of_fit): a law whose form describes the grid keeps its points inside it with no
    trend in C; a pattern outside it is the form's, and more seeds will not remove it."""
    from matplotlib.ticker import NullFormatter, NullLocator

    from benchmark.scaling.laws import group_budgets

    plt = _plt()
    n = max(1, len(fits))
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n + 1.4, 3.4), sharey=True, squeeze=False)
    styles = size_styles(list(_by_size([r for r in runs if r["run_id"] in loss])))
    for ax, f in zip(axes[0], fits):
        cutoff = (f.get("extrapolation") or {}).get("cutoff_flops")
        budgets = set()
        for size, (C, V, err) in residual_points(runs, loss, f, predict[f["law"]]).items():
            n_params = next(r["n_params"] for r in runs if r["model_size"] == size)
            _points(ax, C, V, err, styles[size], cutoff, label=f"{size} (N={n_params / 1e6:.2g}M)")
            budgets |= set(C.tolist())
        lof = f.get("lack_of_fit") or {}
        if lof.get("pure_std"):
            band = 200.0 * lof["pure_std"]
            ax.axhspan(-band, band, color="0.85", zorder=0, label="±2 × seed spread (pure error)")
        ax.axhline(0.0, color="k", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("training compute C = 6ND (FLOP)")
        title = f"{f['law']} on {f['target']}" + ("" if f.get("identified", True) else " (not identified)")
        if lof.get("p") is not None:
            title += (f"\nmisses {100 * lof['lack_std']:.2g} % where seeds scatter {100 * lof['pure_std']:.2g} % "
                      f"(p = {lof['p']:.2g})")
        ax.set_title(title, fontsize=8)
        Cs = np.array(sorted(budgets))
        levels = [float(Cs[g].mean()) for g in group_budgets(Cs)]
        if 0 < len(levels) <= 8:  # ticks at the grid's compute budgets: a factor-8 axis has a single decade label
            ax.xaxis.set_minor_locator(NullLocator())
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xticks(levels, [f"{c:.2g}" for c in levels])
        if cutoff is not None and ax is axes[0][-1]:
            ax.plot([], [], linestyle="none", marker="o", markerfacecolor="white", markeredgecolor="k",
                    label="held out of the extrapolation check")
    axes[0][-1].legend(fontsize=6, frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1.0))  # one legend, outside
    axes[0][0].set_ylabel("validation loss / law − 1 (%)")
    fig.suptitle("Residuals: each loss law fitted to every run, against the seed noise", fontsize=9)
    return fig


def heldout(fits: Sequence[dict]):
    """Each law's held-out check, one panel per fit: per held-out grid point (named by its first run) the observed
    mean of its seeds (black) and the law's prediction from the runs below the cutoff with its 95 % bootstrap
    interval (engine.heldout_interval). An observation outside the interval is missed by more than the fit's own
    uncertainty; a wide interval says how little the points below the cutoff pin the extrapolation down."""
    plt = _plt()
    n = max(1, len(fits))
    fig, axes = plt.subplots(1, n, figsize=(2.9 * n + 0.6, 3.6), squeeze=False)
    for ax, f in zip(axes[0], fits):
        e = f.get("extrapolation") or {}
        obs, pred = np.array(e.get("observed", []), dtype=float), np.array(e.get("predicted", []), dtype=float)
        x = np.arange(obs.size)
        ax.plot(x, obs, linestyle="none", marker="o", color="k", label="observed (mean of its seeds)")
        title = f"{f['law']} on {f['target']}"
        if e.get("identified") is False:
            title += "\nheld-out prediction not identified"
        elif pred.size:
            ci = np.array(e.get("predicted_ci95") or [[v, v] for v in pred], dtype=float)
            ax.errorbar(x + 0.15, pred, yerr=[pred - ci[:, 0], ci[:, 1] - pred], fmt="s", color="tab:blue", capsize=3,
                        markerfacecolor="white", label="predicted from below the cutoff (95 % interval)")
            err = f"{100 * e['rel_err']:.2g} %" if f["target"].startswith("val_loss") and e.get("rel_err") is not None \
                else f"{e['abs_err']:.2f} points"
            held = "" if e.get("inside_ci95") is None else f"; interval holds {e['inside_ci95']} of {obs.size}"
            title += f"\nheld-out {err}{held}"
        ax.set_xticks(x, e.get("point_ids") or [str(i) for i in x], rotation=45, fontsize=7)
        ax.set_xlim(-0.5, max(obs.size, 1) - 0.5 + 0.15)
        ax.set_title(title, fontsize=8)
    axes[0][0].legend(fontsize=6, frameon=False, loc="best")
    fig.suptitle("Held-out check: each law fitted below the compute cutoff predicts the largest budget", fontsize=9)
    return fig
