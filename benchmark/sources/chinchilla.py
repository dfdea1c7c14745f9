"""Hoffmann et al. 2022's points as reconstructed by Epoch AI (Besiroglu et al. 2024) as runs and metrics."""
from __future__ import annotations

from pathlib import Path
from typing import Any
from benchmark.results import schema
from benchmark.errors import CommandError
from benchmark.sources.common import positive, read_csv_records, run_defaults, source_row, write_source


CHINCHILLA_COLUMNS = ("Model Size", "Training FLOP", "loss")


CHINCHILLA_SIGNATURE = (
    "Final validation loss (nats/token) of Hoffmann et al. 2022, Fig. 4, digitised from the figure by "
    "Besiroglu et al. 2024 (Epoch AI, analyzing-chinchilla/data/svg_extracted_data.csv); evaluation size unknown (n is null)"
)


CHINCHILLA_SOURCE = {
    "citation": "Hoffmann et al. 2022, Training Compute-Optimal Large Language Models (arXiv:2203.15556), Fig. 4, "
                "as digitised by Besiroglu et al. 2024, Chinchilla Scaling: A replication attempt (arXiv:2404.10102)",
    "url": "https://github.com/epoch-research/analyzing-chinchilla", "commit": None,
    "license": "none stated (figure data of a published paper)",
}


def chinchilla_rows(records: list[dict[str, str]], source: str, path: str = "") -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Runs and metrics rows for Epoch's CSV records: N = `Model Size`, C = `Training FLOP`, D = C / (6 N)."""
    runs, metrics, seen = [], [], set()
    for line, rec in enumerate(records, start=2):  # line 1 is the header
        where = f"{path}, line {line}" if path else f"line {line}"
        n = positive(rec["Model Size"], "Model Size", where)
        c = positive(rec["Training FLOP"], "Training FLOP", where)
        loss = positive(rec["loss"], "loss", where)
        tokens = round(c / (6 * n))  # Hoffmann et al. 2022: C = 6 N D
        model_size = f"chinchilla-{n:.3g}"
        run_id = f"{model_size}-{tokens}-s0"
        if run_id in seen:
            raise CommandError(f"{where}: duplicate point (same N to 3 digits and same D): {run_id}")
        seen.add(run_id)
        runs.append({**run_defaults(), "source": source, "run_id": run_id, "model_size": model_size,
                     "n_params": round(n), "tokens": tokens, "flops": c, "seed": 0, "status": "completed",
                     "schema_version": schema.SCHEMA_VERSION})
        metrics.append({"source": source, "run_id": run_id, "task": "all", "metric": "val_loss", "value": loss,
                        "stderr": None, "n": None, "signature": CHINCHILLA_SIGNATURE})
    return runs, metrics


def chinchilla_tables(path: Path, source: str) -> dict[str, list[dict[str, Any]]]:
    records = read_csv_records(path, CHINCHILLA_COLUMNS)
    runs, metrics = chinchilla_rows(records, source, str(path))
    models = [{"source": source, "model_size": m, "family": "Chinchilla", "model_id": None}
              for m in dict.fromkeys(r["model_size"] for r in runs)]
    note = "N = Model Size, C = Training FLOP, D = C / (6 N) rounded; every point kept (the 5 highest losses too)."
    return {"runs": runs, "metrics": metrics, "models": models,
            "sources": [source_row(source, CHINCHILLA_SOURCE, "benchmark.stages.importers chinchilla", [path], runs, metrics, note)]}


def import_chinchilla(path: Path, db_path: str, source: str = "chinchilla") -> dict[str, int]:
    """Replace the `source` rows with the CSV's points; returns rows written per table."""
    return write_source(db_path, source, chinchilla_tables(path, source))
