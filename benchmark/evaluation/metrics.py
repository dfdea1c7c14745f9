"""Scores from texts: corpus BLEU (sacrebleu), ROUGE F-measures (rouge_score), accuracy, with standard errors.

Each score carries a signature saying exactly how it was computed. BLEU is computed once over the
corpus (never averaged per sentence; Post 2018); its standard error is a seeded bootstrap over
examples on the sentence statistics. ROUGE is the mean of per-example F-measures, its standard
error std/sqrt(n); accuracy is exact match with a binomial standard error.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import metadata
from typing import Mapping

import numpy as np

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
ROUGE_STEMMER = True
LOSS = "val_loss"
TARGET_LOSS = "target_loss"  # the loss on the target and </s> alone, beside val_loss when data.loss_on is "text"


@dataclass(frozen=True)
class Metric:
    """What a metric is: the one registry that scoring, collect, fit, figures, report, the card and the schema read."""
    name: str                # the `metric` column
    label: str               # for table headers and figure axes
    kind: str | None         # task kind scored with it; None: every task (and 'all', the token-weighted mean)
    higher_is_better: bool
    unit: str
    range: tuple[float, float]
    stderr: str              # how its standard error is computed, in words (quoted by the card and the schema)
    se_code: str             # the same, as its signature writes it
    signature: str           # what its `signature` column records
    headline_task: str | None = None  # the task whose value is a headline number (leaderboard, figures, dvc metrics)


_ROUGE_SE = ("std/sqrt(n)", "standard deviation of the per-example F-measures over sqrt(n) (n examples)")
METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric(LOSS, "val loss", None, False, "nats/token", (0.0, math.inf),
           "cluster-robust (by example) standard error of the token-weighted mean, stratified by task for 'all' (each "
           "task's validation set has a fixed size)", "cluster-robust over examples, stratified by task",
           "the loss definition (with the tokens it is taken on, data.loss_on)", "all"),
    Metric(TARGET_LOSS, "target loss", None, False, "nats/token", (0.0, math.inf),
           "cluster-robust (by example) standard error of the token-weighted mean, stratified by task for 'all' (each "
           "task's validation set has a fixed size)", "cluster-robust over examples, stratified by task",
           "the loss definition, on the target words and </s> alone (the task loss of the two-step law)"),
    Metric("bleu", "BLEU", "translation", True, "BLEU x 100", (0.0, 100.0),
           "standard deviation of corpus BLEU over a seeded bootstrap of the examples (evaluate.bootstrap resamples, "
           "evaluate.seed)", "bootstrap_se", "sacrebleu's signature and the bootstrap settings", "translation"),
    *(Metric(t, label, "summarization", True, "F-measure x 100", (0.0, 100.0), _ROUGE_SE[1], _ROUGE_SE[0],
             "rouge_score version and settings (stemmer, tokenizer, Lsum newline policy, aggregation)",
             "summarization" if t == "rougeL" else None)
      for t, label in zip(ROUGE_TYPES, ("ROUGE-1", "ROUGE-2", "ROUGE-L", "ROUGE-Lsum"))),
    Metric("accuracy", "accuracy (%)", "classification", True, "percent", (0.0, 100.0),
           "binomial: sqrt(p(1-p)/n) x 100", "sqrt(p(1-p)/n)x100", "exact match after strip() and the SE formula",
           "classification"),
)}


def bounded(name: str) -> bool:
    """Whether metric `name` (a registry name, or '<metric>/<task>') lives in a finite range, as BLEU, ROUGE and
    accuracy do in [0, 100]: its errors are judged in metric points, not as a fraction of the value."""
    m = METRICS.get(name.split("/", 1)[0])
    return m is not None and math.isfinite(m.range[1])


def for_task_kind(kind: str) -> tuple[str, ...]:
    """Names of the metrics a task of this kind is scored with (besides val_loss)."""
    return tuple(m.name for m in METRICS.values() if m.kind == kind)


def headline() -> list[Metric]:
    """The headline metrics, loss first: one number per task in tables, figures and `dvc metrics show`."""
    return [m for m in METRICS.values() if m.headline_task is not None]


def downstream_headline() -> list[Metric]:
    return [m for m in headline() if m.name != LOSS]


def headline_values(rows: list[dict]) -> dict[str, float]:
    """{metric: value} of the headline metrics among one run's metric rows (what `dvc metrics show` lists per run)."""
    want = {(m.headline_task, m.name) for m in headline()}
    return {r["metric"]: r["value"] for r in rows if (r["task"], r["metric"]) in want}


def stderr_groups() -> list[tuple[tuple[str, ...], str]]:
    """(metric names, standard-error description), metrics sharing a description grouped, in registry order."""
    groups: dict[str, list[str]] = {}
    for m in METRICS.values():
        groups.setdefault(m.stderr, []).append(m.name)
    return [(tuple(names), text) for text, names in groups.items()]


@dataclass(frozen=True)
class Score:
    metric: str
    value: float
    stderr: float | None
    n: int
    signature: str


def bleu(hypotheses: list[str], references: list[str], bootstrap: int = 200, seed: int = 0) -> Score:
    """Corpus BLEU with sacrebleu's defaults (13a tokenizer, exp smoothing, mixed case), one reference."""
    from sacrebleu.metrics import BLEU

    if len(hypotheses) != len(references):
        raise ValueError(f"bleu: {len(hypotheses)} hypotheses but {len(references)} references")
    metric = BLEU()
    value = metric.corpus_score(hypotheses, [references]).score
    stderr = None
    if bootstrap > 0 and len(hypotheses) > 1:
        stats = np.asarray(metric._extract_corpus_statistics(hypotheses, [references]), dtype=np.int64)
        rng = np.random.default_rng(seed)
        draws = [metric._compute_score_from_stats(stats[rng.integers(0, len(stats), len(stats))].sum(0).tolist()).score
                 for _ in range(bootstrap)]
        stderr = float(np.std(draws, ddof=1))
    sig = f"sacrebleu:{metric.get_signature()}|{METRICS['bleu'].se_code}:{bootstrap},seed:{seed}"
    return Score("bleu", float(value), stderr, len(hypotheses), sig)


def rouge_signature() -> str:
    version = metadata.version("rouge-score")
    return (f"rouge_score:{version}|stemmer:{'porter' if ROUGE_STEMMER else 'none'}"
            "|tokenize:default(lowercase,non-alphanumeric->space)|lsum:sentences split on newline, texts not re-split"
            f"|agg:mean of per-example F-measure x100|se:{METRICS['rougeL'].se_code}")


def rouge(predictions: list[str], references: list[str]) -> list[Score]:
    """ROUGE-1/2/L/Lsum F-measures x 100 (Lin 2004), averaged over examples."""
    from rouge_score import rouge_scorer

    if len(predictions) != len(references):
        raise ValueError(f"rouge: {len(predictions)} predictions but {len(references)} references")
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=ROUGE_STEMMER)
    per = {t: [] for t in ROUGE_TYPES}
    for pred, ref in zip(predictions, references):
        s = scorer.score(ref, pred)  # rouge_score takes (target, prediction)
        for t in ROUGE_TYPES:
            per[t].append(s[t].fmeasure * 100)
    sig = rouge_signature()
    out = []
    for t in ROUGE_TYPES:
        v = np.asarray(per[t])
        se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else None
        out.append(Score(t, float(v.mean()) if len(v) else float("nan"), se, len(v), sig))
    return out


def accuracy(predictions: list[str], references: list[str]) -> Score:
    """Exact match after stripping surrounding whitespace, in percent, binomial standard error."""
    if len(predictions) != len(references):
        raise ValueError(f"accuracy: {len(predictions)} predictions but {len(references)} references")
    n = len(predictions)
    k = sum(p.strip() == r.strip() for p, r in zip(predictions, references))
    acc = k / n if n else float("nan")
    se = math.sqrt(acc * (1 - acc) / n) * 100 if n else None
    return Score("accuracy", acc * 100, se, n, f"exact match after strip()|se:{METRICS['accuracy'].se_code}")


def for_kind(kind: str, predictions: list[str], references: list[str], bootstrap: int = 200, seed: int = 0) -> list[Score]:
    """The metrics a task of this kind is scored with."""
    names = for_task_kind(kind)
    if not names:
        raise ValueError(f"unknown task kind {kind!r}")
    if kind == "translation":
        return [bleu(predictions, references, bootstrap, seed)]
    if kind == "summarization":
        return rouge(predictions, references)
    return [accuracy(predictions, references)]


def score_predictions(pred_rows: list[dict], kinds: dict[str, str], run_id: str, bootstrap: int, seed: int) -> list[dict]:
    """`metrics` rows (BLEU, ROUGE, accuracy) for the predictions of one run, task by task in the order the
    tasks first appear; `kinds` maps each task to its kind. A task params do not define is a ValueError."""
    tasks = list(dict.fromkeys(r["task"] for r in pred_rows))
    out = []
    for task in tasks:
        if task not in kinds:
            raise ValueError(f"{run_id}: predictions for task {task!r}, which params do not define")
        rows = [r for r in pred_rows if r["task"] == task]
        for s in for_kind(kinds[task], [r["prediction"] for r in rows], [r["reference"] for r in rows], bootstrap, seed):
            out.append({"source": "local", "run_id": run_id, "task": task, "metric": s.metric, "value": s.value,
                        "stderr": s.stderr, "n": s.n, "signature": s.signature})
    return out


def loss_signature(loss_on: str | Mapping[str, str]) -> str:
    """The val_loss rows' signature: the loss definition, with which tokens it is taken on (data.loss_on); `loss_on`
    is one value, or {task: value} for a row pooled over tasks that may take theirs apart (data.tasks.<task>.loss_on)."""
    from benchmark.training.data import LOSS_ON

    if isinstance(loss_on, str):
        on = f"{loss_on}: {LOSS_ON[loss_on]}"
    else:
        kinds = sorted(set(loss_on.values()))
        on = (f"{kinds[0]}: {LOSS_ON[kinds[0]]}" if len(kinds) == 1 else
              "; ".join(f"{v} for {', '.join(t for t in loss_on if loss_on[t] == v)}: {LOSS_ON[v]}" for v in kinds))
    return (f"mean next-token cross-entropy in nats per scored token ({on}), teacher forced,"
            f" each example alone from position 0|se:{METRICS[LOSS].se_code}")


def token_weighted_loss(sums, counts, strata=None) -> tuple[float, float | None]:
    """Ratio estimate sum(s)/sum(c) over examples and its cluster-robust (by example) standard error.

    `strata` (one label per example, e.g. its task) marks a stratified sample: each stratum's size is fixed by the
    design, not drawn, so only the variation within a stratum enters the error. The residuals d = s - R c are
    centred on their stratum's mean, as the variance of the combined ratio estimate does (Cochran 1977, Sampling
    Techniques, Sec. 6.11); without strata this is the usual cluster-robust error.
    """
    sums, counts = np.asarray(sums, float), np.asarray(counts, float)
    total = counts.sum()
    mean = sums.sum() / total
    labels = np.zeros(len(sums), int) if strata is None else np.unique(np.asarray(strata), return_inverse=True)[1]
    if len(labels) != len(sums):
        raise ValueError(f"token_weighted_loss: {len(labels)} strata labels for {len(sums)} examples")
    resid = sums - mean * counts
    var = 0.0
    for h in np.unique(labels):
        d = resid[labels == h]
        if d.size < 2:
            return float(mean), None
        var += d.size / (d.size - 1) * float(((d - d.mean()) ** 2).sum())  # one stratum: d sums to 0 already
    return float(mean), math.sqrt(var) / total
