"""Ruan, Maddison and Hashimoto 2024 (Observational Scaling Laws) base-model evaluations as runs and metrics.

One run per model with its family: N = `Model Size (B)` x 1e9, D = `Pretraining Data Size (T)` x 1e12,
C = `FLOPs (1E21)` x 1e21 as published (6 N D for every row that gives all three). Accuracies in
[0, 1] become percent (the schema's `accuracy`). Models without D and C are left out of `runs`
(the schema needs both) and named in the sources row's note; an empty benchmark cell has no row.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmark.results import schema
from benchmark.sources.common import positive, read_csv_records, run_defaults, source_row
from benchmark.errors import CommandError

SOURCE = {
    "citation": "Ruan, Maddison, Hashimoto. Observational Scaling Laws and the Predictability of Language Model "
                "Performance. NeurIPS 2024, arXiv:2405.10938",
    "url": "https://github.com/ryoungj/ObsScaling/blob/main/eval_results/base_llm_benchmark_eval.csv",
    "commit": "4d6e1e43fd2635d04654aa77d1df9d5266ea0382", "license": "Apache-2.0",
}
MODEL, FAMILY, SIZE, DATA, FLOPS = "Model", "Model Family", "Model Size (B)", "Pretraining Data Size (T)", "FLOPs (1E21)"
# column -> task name in `metrics` (metric 'accuracy', percent; HumanEval's is pass@1)
BENCHMARKS = {"MMLU": "mmlu", "ARC-C": "arc_challenge", "HellaSwag": "hellaswag", "Winograd": "winogrande",
              "TruthfulQA": "truthfulqa", "GSM8K": "gsm8k", "XWinograd": "xwinograd", "HumanEval": "humaneval"}


def tables(path: Path, source: str = "obsscaling") -> dict[str, list[dict[str, Any]]]:
    records = read_csv_records(path, (MODEL, FAMILY, SIZE, DATA, FLOPS, *BENCHMARKS))
    runs, metrics, models, left_out, seen = [], [], [], [], set()
    for line, rec in enumerate(records, start=2):
        where = f"{path}, line {line}"
        model = rec[MODEL].strip()
        if not model or not rec[FAMILY].strip():
            raise CommandError(f"{where}: column {MODEL if not model else FAMILY!r} is empty")
        if model in seen:
            raise CommandError(f"{where}: column {MODEL!r}: duplicate model {model!r}")
        seen.add(model)
        n = positive(rec[SIZE], SIZE, where) * 1e9
        if not rec[DATA].strip() or not rec[FLOPS].strip():
            left_out.append(model)
            continue
        d = positive(rec[DATA], DATA, where) * 1e12
        c = positive(rec[FLOPS], FLOPS, where) * 1e21
        runs.append({**run_defaults(), "source": source, "run_id": model, "model_size": model, "n_params": round(n),
                     "tokens": round(d), "flops": c, "seed": 0, "status": "completed", "schema_version": schema.SCHEMA_VERSION})
        models.append({"source": source, "model_size": model, "family": rec[FAMILY].strip(), "model_id": model})
        for column, task in BENCHMARKS.items():
            cell = rec[column].strip()
            if not cell:
                continue
            try:
                value = float(cell)
            except ValueError:
                raise CommandError(f"{where}: column {column!r} is not a number ({cell!r})") from None
            if not 0 <= value <= 1:
                raise CommandError(f"{where}: column {column!r} must be an accuracy in [0, 1], got {cell!r}")
            what = "pass@1" if column == "HumanEval" else "accuracy"
            metrics.append({"source": source, "run_id": model, "task": task, "metric": "accuracy", "value": value * 100.0,
                            "stderr": None, "n": None,
                            "signature": f"ObsScaling {column} {what} x 100 (Ruan et al. 2024, eval_results/base_llm_benchmark_eval.csv "
                                         f"@ {SOURCE['commit'][:12]}; their few-shot setup, standard error not published)"})
    note = (f"{len(runs)} of {len(records)} models; N = {SIZE} x 1e9, D = {DATA} x 1e12, C = {FLOPS} x 1e21; accuracies x 100. "
            f"{len(left_out)} left out of runs (no pretraining tokens or FLOPs published): {', '.join(left_out)}")
    return {"runs": runs, "metrics": metrics, "models": models,
            "sources": [source_row(source, SOURCE, "benchmark.sources.obsscaling", [path], runs, metrics, note)]}
