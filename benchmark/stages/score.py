"""DVC stage `score`: BLEU, ROUGE and accuracy of one run, computed from its saved predictions parquet.

Reads `runs/<id>/predictions.parquet` and `runs/<id>/eval.json` (validation losses), writes
`runs/<id>/metrics.json`: every `metrics` row of the run, and `runs/<id>/headline.json`: its headline
numbers as one flat object (final validation loss, BLEU, ROUGE-L, accuracy), the DVC metrics file
`dvc metrics show` lists. Needs no model, so a metric fix re-scores every run in seconds.
"""
from __future__ import annotations

from pathlib import Path

from benchmark import cli
from benchmark.results import io, schema
from benchmark.evaluation import metrics
from benchmark.errors import StageError


def score_predictions(pred_rows: list[dict], kinds: dict[str, str], run_id: str, bootstrap: int, seed: int) -> list[dict]:
    """Metric rows for the predictions of one run, task by task (in the order tasks first appear)."""
    tasks = list(dict.fromkeys(r["task"] for r in pred_rows))
    out = []
    for task in tasks:
        rows = [r for r in pred_rows if r["task"] == task]
        if task not in kinds:
            raise StageError(f"{run_id}: predictions for task {task!r}, which params do not define")
        for s in metrics.for_kind(kinds[task], [r["prediction"] for r in rows], [r["reference"] for r in rows], bootstrap, seed):
            out.append({"source": "local", "run_id": run_id, "task": task, "metric": s.metric, "value": s.value,
                        "stderr": s.stderr, "n": s.n, "signature": s.signature})
    return out


def read_predictions(path: Path) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def main(argv: list[str]) -> int:
    ap = cli.parser("score", __doc__, params=True)
    ap.add_argument("run_id")
    ap.add_argument("--run-dir", default=None, help="default: runs/<run_id>")
    args, p = cli.parse(ap, argv)
    run_dir = Path(args.run_dir or f"runs/{args.run_id}")
    kinds = {t.name: t.kind for t in p.data.tasks}
    rows = io.read_json(run_dir / "eval.json")
    rows += score_predictions(read_predictions(run_dir / "predictions.parquet"), kinds, args.run_id,
                              p.evaluate.bootstrap, p.evaluate.seed)
    rows = [schema.validate_record("metrics", r, where=f"{run_dir}/metrics.json") for r in rows]
    io.write_json_atomic(run_dir / "metrics.json", rows)
    io.write_json_atomic(run_dir / "headline.json", metrics.headline_values(rows))
    for r in rows:
        if r["metric"] != "val_loss":
            print(f"{args.run_id}: {r['metric']}/{r['task']} = {r['value']:.2f} ± {r['stderr'] or 0:.2f}")
    return 0
