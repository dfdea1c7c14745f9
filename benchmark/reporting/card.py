"""The dataset card (leaderboard/README.md): YAML header plus body, built from values, with every column from schema.py."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from benchmark.results import schema

PRETTY_NAME = "Scaling-law benchmark: small transformers, losses, task metrics and fitted laws"
ARROW_TYPES = {"string": "string", "int": "int64", "float": "double", "bool": "bool"}
# How training size and compute are counted: quoted from these schema columns, so the card cannot drift.
COUNTING_COLUMNS = ("n_params", "n_params_embedding", "n_params_nonembedding", "tokens", "flops", "flops_attention")


@dataclass(frozen=True)
class TableSummary:
    """What the card states about one exported table (values read from the parquet file by the caller)."""

    name: str
    """Table / config name, one of schema.TABLES (e.g. 'runs')."""
    columns: tuple[str, ...]
    """Column names in file order; each must be defined in schema.py, which supplies its unit and meaning."""
    n_rows: int
    """Rows in the file."""
    sha256: str = ""
    """Hash of the file's bytes: in the config's `description`, so that `datasets` keys its cache by the data."""

    @property
    def path(self) -> str:
        return f"data/{self.name}.parquet"


def metadata(tables: Sequence[TableSummary], pretty_name: str = PRETTY_NAME) -> dict[str, Any]:
    """The YAML header: licence, tags and one `configs` entry per table (the first one is the default)."""
    n = max((t.n_rows for t in tables), default=0)
    size = "n<1K" if n < 1_000 else "1K<n<10K" if n < 10_000 else "10K<n<100K" if n < 100_000 else "100K<n<1M"
    configs = []
    for i, t in enumerate(tables):
        config: dict[str, Any] = {"config_name": t.name, "data_files": [{"split": "train", "path": t.path}]}
        if i == 0:
            config["default"] = True
        if t.sha256:  # datasets hashes a local folder's configs, not its files: this makes new data a new cache key
            config["description"] = f"{t.path} sha256:{t.sha256}"
        configs.append(config)
    return {
        "license": "cc-by-4.0",  # the data; the code that produced it is Apache-2.0 (see the body)
        "pretty_name": pretty_name,
        "language": ["en"],
        "task_categories": ["tabular-regression"],
        "tags": ["scaling-laws", "chinchilla", "compute-optimal", "transformers", "leaderboard", "benchmark"],
        "size_categories": [size],
        "configs": configs,
    }


def md_cell(text: str) -> str:
    """Text made safe for one markdown table cell."""
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
    return text.replace("<", "&lt;").replace(">", "&gt;")  # else '<model_size>' renders as an HTML tag


def schema_section(tables: Sequence[TableSummary]) -> str:
    """One markdown table per exported table: every column with its type, unit, nullability and meaning."""
    out = ["## Schema", "",
           f"Schema version {schema.SCHEMA_VERSION} (`benchmark/results/schema.py`). Types are Arrow/parquet types; "
           "every table has a `source` column, so rows from different origins never mix.", ""]
    for t in tables:
        defined = {c.name: c for c in schema.columns(t.name)}
        out += [f"### `{t.name}`", "", f"File `{t.path}`, {t.n_rows} rows.", "",
                "| column | type | unit | nullable | description |", "|---|---|---|---|---|"]
        for name in t.columns:
            c = defined.get(name)
            if c is None:
                raise schema.SchemaError(f"{t.path}: column {name!r} is not defined in schema.py table {t.name!r}")
            out.append(f"| `{c.name}` | {ARROW_TYPES[c.dtype]} | {md_cell(c.unit) or '–'} | "
                       f"{'yes' if c.nullable else 'no'} | {md_cell(c.description)} |")
        out.append("")
    return "\n".join(out)


def counting_section() -> str:
    runs = {c.name: c for c in schema.columns("runs")}
    lines = ["## How N, D and FLOPs are counted", ""]
    lines += [f"- **`{n}`** ({runs[n].unit}): {runs[n].description}" for n in COUNTING_COLUMNS]
    lines += ["", "Imported published data (source `chinchilla`: Hoffmann et al. 2022, Fig. 4 as digitised by "
              "Besiroglu et al. 2024) gives N and C only; there D = C / (6 N) and the architecture columns are null.", ""]
    return "\n".join(lines)


def _num(value: Any) -> str:
    return "–" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def fits_section(fits: Sequence[Mapping[str, Any]], fit_method: str) -> str:
    lines = ["## Fitted laws", "", fit_method.strip(), ""]
    if not fits:
        return "\n".join(lines + ["No fits in this release.", ""])
    lines += ["| law | target | parameter | estimate | SE | 95 % CI | points |", "|---|---|---|---|---|---|---|"]
    shown = set()
    for f in fits:
        if f.get("identified") is False:  # not numbers: the data do not determine this fit
            if (f["law"], f["target"]) not in shown:
                shown.add((f["law"], f["target"]))
                lines.append(f"| {md_cell(str(f['law']))} | {md_cell(str(f['target']))} | – | "
                             f"not identified ({md_cell(str(f.get('identification') or ''))}) | – | – | {_num(f.get('n_points'))} |")
            continue
        ci = f"{_num(f.get('ci95_low'))} – {_num(f.get('ci95_high'))}" if f.get("ci95_low") is not None else "–"
        lines.append(f"| {md_cell(str(f['law']))} | {md_cell(str(f['target']))} | {md_cell(str(f['parameter']))} | "
                     f"{_num(f['estimate'])} | {_num(f.get('se'))} | {ci} | {_num(f.get('n_points'))} |")
    return "\n".join(lines + [""])


def _rules(low: float, high: float, target: float) -> str:
    """How an interval [low, high] reads against an upper target: "rules out", "rules in" or "neither rules in nor out"."""
    return "rules out" if low > target else "rules in" if high <= target else "neither rules in nor out"


def seed_spread_section(points: Sequence[Mapping[str, Any]]) -> str:
    """Seed spread per grid point (rows of the `points` table): relative std of validation loss with its 95 % interval
    and the std of each headline downstream metric, and plainly whether every point is within
    quality.SEED_REL_TARGET: by its estimate, and whether its interval rules the target in, out, or neither (few
    seeds pin a spread down loosely, benchmark.results.points.std_interval)."""
    from benchmark.evaluation.metrics import LOSS, downstream_headline
    from benchmark.results.points import STD_LEVEL, pooled_spread
    from benchmark.scaling.quality import SEED_REL_TARGET

    heads = [(m.name, m.headline_task, m.label) for m in downstream_headline()]
    by: dict[tuple, dict] = {}
    for p in points:
        by.setdefault((p["n_params"], p["tokens"], p["model_size"]), {})[(p["metric"], p["task"])] = p
    level = f"{100 * STD_LEVEL:g} %"
    lines = [f"| point | N | D | seeds | val loss (mean) | val loss rel. std [{level} interval] | " +
             " | ".join(f"{h[2]} std" for h in heads) + " |",
             "|---" * (6 + len(heads)) + "|"]
    rels = []
    for (n, d, size), row in sorted(by.items()):
        loss = row.get((LOSS, "all"))
        if loss is None:
            continue
        rel, low, high = loss["rel_std"], loss.get("rel_std_low"), loss.get("rel_std_high")
        if rel is not None:
            rels.append((rel, low, high, f"{size} N={n:,} D={d:,}", loss["n_seeds"]))
        cells = [("–" if row.get((m, t)) is None or row[(m, t)]["std"] is None else f"{row[(m, t)]['std']:.2f}") for m, t, _ in heads]
        interval = f" [{100 * low:.2f}, {100 * high:.2f}]" if low is not None and high is not None else ""
        lines.append(f"| {size} | {n:,} | {d:,} | {loss['n_seeds']} | {loss['mean']:.4f} | "
                     f"{'–' if rel is None else f'{100 * rel:.2f} %{interval}'} | " + " | ".join(cells) + " |")
    target = f"{100 * SEED_REL_TARGET:g} %"
    if not rels:
        verdict = "No grid point has more than one seed: the seed spread is not measured."
    else:
        over = [f"{where} ({100 * r:.2f} %)" for r, _, _, where, _ in sorted(rels, key=lambda r: -r[0]) if r > SEED_REL_TARGET]
        worst = max(rels, key=lambda r: r[0])
        verdict = (f"{len(rels)} of {len(by)} points have seed replicates. " +
                   (f"Every one is within {target} (relative std of validation loss; largest "
                    f"{100 * worst[0]:.2f} % at {worst[3]})." if not over else
                    f"Not every point is within {target}: {', '.join(over)}."))
        known = [r for r in rels if r[1] is not None and r[2] is not None]
        ruled_out = [f"{where} ({k} seeds)" for _, low, _, where, k in known if low > SEED_REL_TARGET]
        ruled_in = [f"{where} ({k} seeds)" for _, _, high, where, k in known if high <= SEED_REL_TARGET]
        open_ = [f"{where} ({k} seeds)" for _, low, high, where, k in known
                 if low <= SEED_REL_TARGET < high]
        said = [f"the {level} interval lies above {target} at {', '.join(ruled_out)}" if ruled_out else "",
                f"below it at {', '.join(ruled_in)}" if ruled_in else "",
                f"holds {target} at {', '.join(open_)}, where these seeds can neither confirm nor rule out the target"
                if open_ else ""]
        said = [x for x in said if x]
        if said:
            verdict += (" Read with its uncertainty (chi-square interval for the std of normal draws): " +
                        "; ".join(said) + ".")
        pool = pooled_spread([(k, r) for r, _, _, _, k in rels])
        if pool["n_points"] >= 2 and pool["rel_std_low"] is not None:
            p = pool["homogeneity_p"]
            verdict += (f" Pooled over the {pool['n_points']} replicated points ({pool['df']} degrees of freedom): "
                        f"{100 * pool['rel_std']:.2f} % [{100 * pool['rel_std_low']:.2f}, {100 * pool['rel_std_high']:.2f}]"
                        f", which {_rules(pool['rel_std_low'], pool['rel_std_high'], SEED_REL_TARGET)} the {target} "
                        "target on average" +
                        ("." if p is None else
                         f"; Bartlett's test that they share one spread: p = {p:.2g} (" +
                         ("the points differ, so the pool does not speak for each)." if p < 0.05 else
                          "no point is shown to differ).")))
    tasks = []
    for (n, d, size), row in sorted(by.items()):
        per_task = [(t, p["rel_std"]) for (m, t), p in sorted(row.items()) if m == LOSS and t != "all" and p["rel_std"] is not None]
        if per_task:
            tasks.append(f"{size} N={n:,} D={d:,}: " + ", ".join(f"{t} {100 * r:.2f} %" for t, r in per_task))
    where = ([f"Where it comes from, the relative std of each task's validation loss: {'; '.join(tasks)} "
              "(`python bench/seed_spread.py --point RUN --parts` reads it by difficulty level and by part of a "
              "summary).", ""] if tasks else [])
    return "\n".join([verdict, "", *lines, "", *where])


def precision_section(runs: Sequence[Mapping[str, Any]], metrics: Sequence[Mapping[str, Any]],
                      budget_tolerance: float = 0.15) -> str:
    """The headline metrics' standard errors at the largest grid point (the largest N of the largest compute budget,
    laws.group_budgets; the largest error over its seed replicates) beside quality.SE_TARGETS, and plainly whether
    each is met."""
    from benchmark.evaluation.metrics import headline
    from benchmark.results.points import point_index
    from benchmark.scaling.laws import group_budgets
    from benchmark.scaling.quality import SE_TARGETS

    done = [r for r in runs if r.get("source", "local") == "local" and r.get("status") == "completed"]
    if not done:
        return "No completed local run: no standard errors to report."
    budget = group_budgets([r["flops"] for r in done], budget_tolerance)[-1]
    top = max(budget, key=lambda i: (done[i]["n_params"], done[i]["flops"]))
    point = point_index([r["n_params"] for r in done], [r["tokens"] for r in done])
    ids = {r["run_id"] for r, k in zip(done, point) if k == point[top]}
    top = done[top]
    lines = ["| metric | task | value | standard error | target | met |", "|---|---|---|---|---|---|"]
    for m in headline():
        rows = [r for r in metrics if r["run_id"] in ids and r["metric"] == m.name and r["task"] == m.headline_task
                and r.get("stderr") is not None]
        if not rows:
            continue
        kind, target = SE_TARGETS.get(m.name, ("points", None))
        size = (lambda r: r["stderr"] / r["value"]) if kind == "relative" else (lambda r: r["stderr"])
        worst = max(rows, key=size)
        se = size(worst)
        shown = f"{100 * se:.2f} %" if kind == "relative" else f"{se:.2f}"
        goal = "–" if target is None else (f"≤ {100 * target:g} %" if kind == "relative" else f"≤ {target:g}")
        met = "–" if target is None else ("yes" if se <= target else "**no**")
        lines.append(f"| {m.label} | {m.headline_task} | {worst['value']:.4g} | {shown} | {goal} | {met} |")
    where = (f"{top['model_size']} at N={top['n_params']:,}, D={top['tokens']:,} "
             f"({len(ids)} seed{'s' if len(ids) > 1 else ''}; the largest error of its replicates)")
    return "\n".join([f"Standard errors of the evaluation sets at the largest grid point, {where}.", "", *lines, ""])


def heldout_section(fits: Sequence[Mapping[str, Any]], downstream) -> str:
    """Per law and target of the local fits (fits.json): the held-out error beside the seed spread of the held-out
    points and whether it meets the targets (words from benchmark.scaling.quality.verdict), then the law's lack-of-fit
    test on every point (quality.lack_of_fit_words); downstream(target) says whether a target is judged in metric
    points."""
    from benchmark.scaling.quality import (DOWNSTREAM_ABS_TARGET, LACK_OF_FIT_LEVEL, LOSS_REL_TARGET, SEED_SPREAD_FACTOR,
                                           lack_of_fit_words, verdict)

    head = (f"Fitted without the largest-compute points, each law predicts them; a point's observation is the mean of its "
            f"seed replicates. Targets: loss laws within {100 * LOSS_REL_TARGET:g} % and within {SEED_SPREAD_FACTOR:g}x the "
            f"seed spread of the held-out points; downstream laws within {DOWNSTREAM_ABS_TARGET:g} points. Fitted on every "
            f"point, each law's misses are also set beside the seed noise of the replicated points (lack-of-fit F test, "
            f"Draper and Smith 1998, Sec. 2.1): where p < {LACK_OF_FIT_LEVEL:g}, the law's form, not the noise, limits it. "
            f"Each held-out prediction carries a 95 % interval from a bootstrap of the runs below the cutoff; the count of "
            f"observed points inside it sets the miss beside the fit's own uncertainty (figures/heldout.png draws both).")

    def line(f) -> str:
        lof = lack_of_fit_words(f.get("lack_of_fit"))
        return f"- {md_cell(verdict(f, downstream(f['target'])) + (f'; {lof}' if lof else ''))}"

    lines = [line(f) for f in sorted(fits, key=lambda f: (f["target"], f["law"]))]
    return "\n".join([head, "", *(lines or ["No fits in this release."]), ""])


def phases_section(fits: Sequence[Mapping[str, Any]], points: Sequence[Mapping[str, Any]] = (),
                   tolerance: float = 0.15) -> str:
    """Where growth slows, per downstream metric (sigmoid of log C, Owen 2024): the inflection C_mid and C_slowdown,
    where the gain per doubling of compute has fallen to half its peak, with 95 % bootstrap intervals; then what the
    grid observed (`budget_levels` over the `points` table's rows), so that a sigmoid the grid does not identify says
    how far the metric moved."""
    lines = []
    for f in sorted(fits, key=lambda f: f["target"]):
        if f["law"] != "sigmoid_compute":
            continue
        seen = budget_levels(points, f["target"], tolerance)
        if f.get("identified") is False:
            lines.append(f"- {md_cell(f['target'])}: not identified ({md_cell(f.get('identification') or '')})"
                         + (f"; {seen}" if seen else ""))
            continue
        parts = []
        for name, what in (("C_mid", "inflection"), ("C_slowdown", "growth slows past")):
            est, ci = f["params"].get(name), f["ci95"].get(name)
            if est is None:
                parts.append(f"{what}: –")
                continue
            parts.append(f"{what} {name} = {est:.3g} FLOP " + (f"[{ci[0]:.3g}, {ci[1]:.3g}]" if ci else "(no interval)"))
        lines.append(f"- {md_cell(f['target'])}: " + "; ".join(parts + ([seen] if seen else [])))
    return "\n".join(lines or ["No sigmoid of log C was fitted."]) + "\n"


def budget_levels(points: Sequence[Mapping[str, Any]], target: str, tolerance: float = 0.15) -> str:
    """The metric `target` ("metric/task") on each compute budget of the grid (runs within `tolerance` of each other's
    C, laws.group_budgets): its highest point's mean over seeds, and its lowest, as "observed, highest (lowest) point
    per budget: C1 1.25e+11 FLOP 3.42 (2.61), ...". Empty without such points."""
    import numpy as np

    from benchmark.scaling.laws import group_budgets

    metric, _, task = target.partition("/")
    rows = [p for p in points if p["metric"] == metric and p["task"] == task and p.get("mean") is not None]
    if not rows:
        return ""
    C = np.array([float(p["flops"]) for p in rows])
    levels = []
    for i, g in enumerate(group_budgets(C, tolerance), 1):
        means = [float(rows[j]["mean"]) for j in g]
        levels.append(f"C{i} {np.exp(np.log(C[g]).mean()):.3g} FLOP {max(means):.3g} ({min(means):.3g})")
    return "observed, highest (lowest) point per budget: " + ", ".join(levels)


def isoflop_section(fit: Mapping[str, Any] | None) -> str:
    """Approach 2 of Hoffmann et al. 2022 (Sec. 3.2) from the approach2 fit of fits.json: per IsoFLOP budget its
    sizes, tokens per parameter and whether the parabola in log N has its minimum inside the sampled N, with N_opt's
    95 % bootstrap interval; then N_opt = k C^a."""
    if fit is None:
        return "No Approach 2 fit: it needs at least 2 budgets of 3 or more sizes, each with a minimum inside.\n"
    method = fit.get("method") or {}
    lines = []
    for b in method.get("budgets", []):
        tpp = b.get("tokens_per_param")
        where = (f"C ≈ {b['flops']:.3g} FLOP: {b.get('n_sizes', '?')} sizes, {b['n_runs']} runs"
                 + (f", {tpp[0]:.1f}-{tpp[1]:.1f} tokens per parameter" if tpp else ""))
        if b.get("N_opt") is None:
            lines.append(f"- {where}: **no minimum inside** the sampled N (the parabola's vertex lies outside)")
            continue
        ci = b.get("N_opt_ci95")
        share = b.get("interior_share")
        lines.append(f"- {where}: minimum inside, N_opt = {b['N_opt']:,.0f}"
                     + (f" [{ci[0]:,.0f}, {ci[1]:,.0f}]" if ci else " (no interval)")
                     + (f" (inside in {100 * share:.0f} % of the bootstrap resamples whose parabola opens upward)"
                        if share is not None else ""))
    inside = sum(b.get("N_opt") is not None for b in method.get("budgets", []))
    head = (f"{inside} of {len(method.get('budgets', []))} IsoFLOP budgets have a loss minimum inside their sizes "
            f"(validation loss against log N, one parabola per budget; 95 % intervals from a bootstrap over runs).")
    tail = []
    a, ci_a, alloc = fit["params"].get("a"), (fit.get("ci95") or {}).get("a"), fit.get("allocation") or {}
    if a is not None:
        tail.append(f"N_opt ∝ C^a with a = {a:.3g}" + (f" [{ci_a[0]:.3g}, {ci_a[1]:.3g}]" if ci_a else "")
                    + (f"; at C = {alloc['flops']:.3g} FLOP, N_opt = {alloc['N_opt']:,.0f} and D_opt = {alloc['D_opt']:,.0f}"
                       if alloc.get("N_opt") else "") + ".")
    extra = fit.get("extrapolation")
    if extra and extra.get("rel_err") is not None:
        tail.append(f"Fitted without the largest budget, the power law predicts its N_opt within {100 * extra['rel_err']:.1f} %.")
    return "\n".join([head, "", *lines, "", *tail]) + "\n"


def metrics_section(signatures: Mapping[str, str]) -> str:
    lines = ["## Metric signatures", "", "Exactly how each number in `metrics` was computed (also in its `signature` column).", ""]
    if not signatures:
        return "\n".join(lines + ["No metric signatures were recorded.", ""])
    lines += ["| metric | signature |", "|---|---|"]
    lines += [f"| `{md_cell(m)}` | {md_cell(s)} |" for m, s in sorted(signatures.items())]
    return "\n".join(lines + [""])


def stderr_section() -> str:
    """Every metric of the registry (benchmark.evaluation.metrics.METRICS): unit, direction and how its standard error is computed."""
    from benchmark.evaluation.metrics import METRICS

    lines = ["## Metrics and standard errors", "", "| metric | unit | better | standard error |", "|---|---|---|---|"]
    lines += [f"| `{md_cell(m.name)}` | {md_cell(m.unit)} | {'higher' if m.higher_is_better else 'lower'} | "
              f"{md_cell(m.stderr)} |" for m in METRICS.values()]
    return "\n".join(lines + [""])


def usage_section(repo_id: str, git_sha: str, tables: Sequence[TableSummary], code_url: str | None) -> str:
    first = tables[0].name if tables else "runs"
    clone = f"git clone {code_url} scaling-benchmark && cd scaling-benchmark" if code_url else "# in a clone of the code"
    return f"""## How to reproduce

```bash
{clone}
git checkout {git_sha.removesuffix('+dirty')}
pip install -e .   # pinned dependencies, see pyproject.toml
dvc repro          # check -> prepare -> train -> evaluate -> collect -> fit -> report
```

These files were produced at git commit `{git_sha}`{' (with uncommitted changes)' if git_sha.endswith('+dirty') else ''}.

## How to load

```python
from datasets import load_dataset
{first} = load_dataset("{repo_id}", "{first}", split="train")   # configs: {', '.join(t.name for t in tables)}
```

```python
import duckdb
from huggingface_hub import snapshot_download
path = snapshot_download("{repo_id}", repo_type="dataset")
duckdb.sql(f"SELECT * FROM '{{path}}/data/{first}.parquet'").show()
```

```python
import pandas as pd
df = pd.read_parquet("hf://datasets/{repo_id}/data/{first}.parquet")
```

Or into this project's DuckDB, as its own source: `python -m benchmark pull {repo_id}`.
"""


def bibtex(repo_id: str, git_sha: str, pretty_name: str, authors: str, year: int | None) -> str:
    key = re.sub(r"[^A-Za-z0-9]+", "_", repo_id).strip("_").lower() + (f"_{year}" if year else "")
    fields = [("title", f"{{{pretty_name}}}"), ("author", f"{{{authors}}}")]
    fields += [("year", f"{{{year}}}")] if year else []
    fields += [("howpublished", f"{{\\url{{https://huggingface.co/datasets/{repo_id}}}}}"),
               ("note", f"{{Git commit {git_sha}, schema version {schema.SCHEMA_VERSION}}}")]
    body = ",\n".join(f"  {k:<12} = {v}" for k, v in fields)
    return f"@misc{{{key},\n{body}\n}}"


def render(
    *,
    tables: Sequence[TableSummary],
    repo_id: str,
    git_sha: str,
    fit_method: str,
    metric_signatures: Mapping[str, str],
    fits: Sequence[Mapping[str, Any]] = (),
    blocks: Sequence[tuple[str, str]] = (),
    pretty_name: str = PRETTY_NAME,
    authors: str = "Scaling benchmark contributors",
    year: int | None = None,
    code_url: str | None = None,
) -> str:
    """README.md text for the dataset folder.

    `tables`: the exported files, in config order; `fits`: rows of the fits table to summarise; `blocks`:
    (heading, markdown) sections to embed after the overview, e.g. the leaderboard table or figure links.
    """
    import yaml

    header = yaml.safe_dump(metadata(tables, pretty_name), sort_keys=False, allow_unicode=True, width=1000)
    overview = ["| config | file | rows |", "|---|---|---|"]
    overview += [f"| `{t.name}` | `{t.path}` | {t.n_rows} |" for t in tables]
    parts = [
        f"---\n{header}---\n",
        f"# {pretty_name}\n",
        "Results of a reproducible scaling-law benchmark: a grid of small transformers trained with one "
        "`dvc repro`, their losses and task metrics, their learning curves, the laws fitted to them with bootstrap "
        "intervals, published reference values, and per-example predictions.\n",
        "\n".join(overview) + "\n",
        f"Schema version: **{schema.SCHEMA_VERSION}**. Git commit: `{git_sha}`.\n",
    ]
    parts += [f"## {heading}\n\n{text.strip()}\n" for heading, text in blocks]
    parts += [fits_section(fits, fit_method), stderr_section(), metrics_section(metric_signatures), counting_section(),
              schema_section(tables), usage_section(repo_id, git_sha, tables, code_url)]
    parts += ["## Citation\n", f"```bibtex\n{bibtex(repo_id, git_sha, pretty_name, authors, year)}\n```\n",
              "## License\n", "Data: CC-BY-4.0. Code that produced it: Apache-2.0. Imported reference data keeps the "
              "terms of its source (see the `literature` table's citations).\n"]
    return "\n".join(parts)
