"""The one result schema: per-run JSON, DuckDB DDL, parquet schemas and the dataset card all derive from it.

Every table carries `source` ("local" for this checkout's runs, otherwise the name a pulled or
imported dataset was given), so published results are never mixed with local ones.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from benchmark.evaluation.metrics import METRICS, stderr_groups

SCHEMA_VERSION = "1.0"


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str  # one of DTYPES
    description: str
    unit: str = ""
    nullable: bool = False


# dtype -> (DuckDB type, python types accepted in a JSON record)
DTYPES: dict[str, tuple[str, tuple[type, ...]]] = {
    "string": ("VARCHAR", (str,)),
    "int": ("BIGINT", (int,)),
    "float": ("DOUBLE", (int, float)),
    "bool": ("BOOLEAN", (bool,)),
}


class SchemaError(ValueError):
    """A record does not match the schema; the message names the table, field and row."""


def _c(name: str, dtype: str, description: str, unit: str = "", nullable: bool = False) -> Column:
    return Column(name, dtype, description, unit, nullable)


TABLES: dict[str, tuple[Column, ...]] = {
    "runs": (
        _c("source", "string", "Where the row comes from: 'local' for runs of this checkout, else the pulled/imported dataset's name."),
        _c("run_id", "string", "Grid point id: its key under `runs` in params.yaml (by convention '<model_size>-<tokens>'); unique within a source."),
        _c("model_size", "string", "Named model size from params (e.g. 'xs'); architecture in d_model, n_layers, n_heads."),
        _c("d_model", "int", "Hidden size.", nullable=True),
        _c("n_layers", "int", "Number of transformer blocks.", nullable=True),
        _c("n_heads", "int", "Number of attention heads.", nullable=True),
        _c("vocab_size", "int", "Tokenizer vocabulary size.", nullable=True),
        _c("seq_len", "int", "Training sequence length.", "tokens", nullable=True),
        _c("n_params", "int", "Total trainable parameters N (embedding + non-embedding; tied input/output embedding counted once).", "parameters"),
        _c("n_params_embedding", "int", "Parameters in the token embedding (tied with the output head).", "parameters", nullable=True),
        _c("n_params_nonembedding", "int", "Parameters outside the embedding (Kaplan et al. 2020 count N without embeddings).", "parameters", nullable=True),
        _c("tokens", "int", "Training tokens D: non-padding tokens the model was trained on (prompt and target); the run stops at the first step that reaches its budget.", "tokens"),
        _c("flops", "float", "Training compute C = 6 * n_params * tokens (Kaplan et al. 2020, Hoffmann et al. 2022).", "FLOP"),
        _c("flops_attention", "float", "Training compute counting attention too: 6 * N * D + 12 * n_layers * seq_len * d_model * D (Hoffmann et al. 2022, App. F: QK^T and the value sum over the full context, forward + backward).", "FLOP", nullable=True),
        _c("seed", "int", "Seed for model init, data order and dropout."),
        _c("status", "string", "'completed' or 'diverged' (NaN/inf or blown-up loss; excluded from fits)."),
        _c("diverged_step", "int", "Optimizer step at which divergence was detected; null when completed.", "steps", nullable=True),
        _c("steps", "int", "Optimizer steps taken.", "steps", nullable=True),
        _c("batch_size", "int", "Sequences per optimizer step (global batch).", "sequences", nullable=True),
        _c("lr", "float", "Peak learning rate (AdamW); warmup then cosine decay over this run's own steps.", nullable=True),
        _c("final_train_loss", "float", "Mean training loss over the last 10 % of steps.", "nats/token", nullable=True),
        _c("wall_time_s", "float", "Training wall-clock time (excludes evaluation).", "s", nullable=True),
        _c("tokens_per_s", "float", "Training throughput, measured after the warm-up steps (warmup_s).", "tokens/s", nullable=True),
        _c("flops_per_s", "float", "Achieved training FLOP/s, attention included (flops_attention / tokens * tokens_per_s).", "FLOP/s", nullable=True),
        _c("mfu", "float", "Model FLOP utilisation: flops_per_s / peak_flops_per_s.", "fraction", nullable=True),
        _c("peak_flops_per_s", "float", "Peak the MFU is relative to: a matmul measured when training ends on CPU, the card's bf16 dense peak on GPU.", "FLOP/s", nullable=True),
        _c("micro_batch_size", "int", "Sequences per forward/backward pass and process (gradient accumulation below batch_size / world_size).", "sequences", nullable=True),
        _c("warmup_s", "float", "Seconds of each process's first 2 optimizer steps (torch.compile, allocations), excluded from tokens_per_s.", "s", nullable=True),
        _c("first_step_s", "float", "Seconds from process start to the end of the first optimizer step.", "s", nullable=True),
        _c("data_wait_s", "float", "Seconds the training loop waited for the data loader after warm-up.", "s", nullable=True),
        _c("hardware", "string", "CPU model and core count, or GPU name and count.", nullable=True),
        _c("device", "string", "torch device type used for training ('cpu' or 'cuda').", nullable=True),
        _c("world_size", "int", "Number of training processes (torchrun DDP).", nullable=True),
        _c("package_versions", "string", "JSON object of versions: python, torch, transformers, tokenizers, datasets, sacrebleu, rouge_score, duckdb.", nullable=True),
        _c("git_sha", "string", "Commit of this repository that produced the run ('+dirty' appended if the tree was modified).", nullable=True),
        _c("data_revision", "string", "Hash of the prepared data manifest (generator settings or Hub dataset revisions, tokenizer).", nullable=True),
        _c("created_at", "string", "UTC time the run finished, ISO 8601.", nullable=True),
        _c("schema_version", "string", "Version of this schema."),
    ),
    "metrics": (
        _c("source", "string", "Where the row comes from (see runs.source)."),
        _c("run_id", "string", "Run the metric belongs to (runs.run_id)."),
        _c("task", "string", "Task name ('translation', 'summarization', 'classification') or 'all' for the token-weighted mean."),
        _c("metric", "string", "Metric name (unit; better): " + "; ".join(
            f"'{m.name}' ({m.unit}; {'higher' if m.higher_is_better else 'lower'})" for m in METRICS.values()) + "."),
        _c("value", "float", "Metric value.", "see metric"),
        _c("stderr", "float", "Standard error: " + "; ".join(f"{', '.join(names)}: {text}" for names, text in stderr_groups()) + ".",
           "see metric", nullable=True),
        _c("n", "int", "Number of examples (scored tokens for val_loss) the value is computed on; null when the source does not say.", nullable=True),
        _c("signature", "string", "How the number was computed: sacrebleu signature, rouge_score settings, or the loss definition.", nullable=True),
    ),
    "predictions": (
        _c("source", "string", "Where the row comes from (see runs.source)."),
        _c("run_id", "string", "Run that produced the prediction."),
        _c("task", "string", "Task name."),
        _c("example_id", "string", "Stable id of the test example (hash of its text)."),
        _c("difficulty", "int", "Difficulty level of the example (task-specific, 1 = easiest); 0 when unknown.", nullable=True),
        _c("input", "string", "Model input text (without the task prefix)."),
        _c("reference", "string", "Reference output."),
        _c("prediction", "string", "Greedy decoded model output."),
    ),
    # Learning curves (train stage, train.eval_every): the seed article's Sec. 5.4 train and validation loss over training.
    "curves": (
        _c("source", "string", "Where the row comes from (see runs.source)."),
        _c("run_id", "string", "Run the curve belongs to (runs.run_id)."),
        _c("split", "string", "'train': the training loss, per scored token, over the last max(10, train.log_every) steps before "
           "this point; 'val': the validation loss on a fixed subset (train.curve_examples examples per task, the same at "
           "every point, chosen from data.seed), as metrics.val_loss computes it."),
        _c("task", "string", "Task name, or 'all' (token-weighted over the tasks; the train loss is always 'all')."),
        _c("tokens", "int", "Training tokens seen at this point (a multiple of train.eval_every crossed, or the run's end).", "tokens"),
        _c("step", "int", "Optimizer steps taken at this point.", "steps"),
        _c("loss", "float", "Mean loss per scored token (data.loss_on); null if it was not finite.", "nats/token", nullable=True),
    ),
    "fits": (
        _c("source", "string", "Data the law was fitted to (see runs.source; 'chinchilla' for Hoffmann et al. 2022 data)."),
        _c("law", "string", "Law name, e.g. 'chinchilla' (L = E + A/N^alpha + B/D^beta, Hoffmann et al. 2022)."),
        _c("target", "string", "What was fitted, e.g. 'val_loss/all', 'bleu/translation'."),
        _c("parameter", "string", "Parameter name as the paper writes it (E, A, B, alpha, beta, ...) or a derived quantity (allocation a, b)."),
        _c("estimate", "float", "Point estimate on all points."),
        _c("se", "float", "Bootstrap standard error.", nullable=True),
        _c("ci95_low", "float", "2.5th bootstrap percentile.", nullable=True),
        _c("ci95_high", "float", "97.5th bootstrap percentile.", nullable=True),
        _c("n_points", "int", "Points used in the fit."),
        _c("method", "string", "JSON of the fit settings (loss, delta, optimizer, starts, bootstrap resamples, seed)."),
        _c("extrapolation_rel_err", "float", "Mean |relative error| on the held-out largest-compute grid points (each the mean of its seed replicates), fitted without them.", "fraction", nullable=True),
        _c("identified", "bool", "False when the data do not determine the fit: a parameter without a bootstrap interval, or one spanning more than 6 decades, or a non-finite or out-of-range held-out prediction (benchmark/scaling/quality.py); its numbers are then not to be read. Null for rows written before this column.", nullable=True),
        _c("identification", "string", "Why the fit is not identified (the parameters and the rule); null when it is.", nullable=True),
    ),
    # Derived by collect from runs and metrics: the replicates (same size and tokens, another seed) of each grid point.
    "points": (
        _c("source", "string", "Where the rows come from (see runs.source)."),
        _c("model_size", "string", "runs.model_size of the point's runs."),
        _c("n_params", "int", "N of the point (runs.n_params).", "parameters"),
        _c("tokens", "int", "D of the point (runs.tokens).", "tokens"),
        _c("metric", "string", "Metric name (see metrics.metric)."),
        _c("task", "string", "Task name (see metrics.task)."),
        _c("flops", "float", "C = 6 N D of the point (runs.flops).", "FLOP"),
        _c("n_seeds", "int", "Completed runs (seed replicates) of the point with this metric."),
        _c("mean", "float", "Mean of the metric over the replicates.", "see metric"),
        _c("std", "float", "Seed-to-seed standard deviation (ddof 1); null for a single seed.", "see metric", nullable=True),
        _c("rel_std", "float", "std / |mean|; null for a single seed or a zero mean.", "fraction", nullable=True),
        _c("rel_std_low", "float", "Lower end of rel_std's 95 % interval (chi-square interval for a normal std, benchmark.results.points.std_interval); null where rel_std is.", "fraction", nullable=True),
        _c("rel_std_high", "float", "Upper end of rel_std's 95 % interval; null where rel_std is.", "fraction", nullable=True),
        _c("min", "float", "Smallest value over the replicates.", "see metric"),
        _c("max", "float", "Largest value over the replicates.", "see metric"),
        _c("run_ids", "string", "The replicates' run ids, comma-separated, in order."),
    ),
    "literature": (
        _c("source", "string", "Short citation key, e.g. 'hoffmann2022'."),
        _c("citation", "string", "Full reference."),
        _c("law", "string", "Law name (see fits.law)."),
        _c("parameter", "string", "Parameter name."),
        _c("estimate", "float", "Published value."),
        _c("note", "string", "Where in the paper, and caveats.", nullable=True),
    ),
    # Imported sources (benchmark.stages.importers): where each came from, and each model's family.
    "sources": (
        _c("source", "string", "Source name, as in runs.source."),
        _c("citation", "string", "Paper or data set the rows come from."),
        _c("url", "string", "Where the imported files were published.", nullable=True),
        _c("commit", "string", "Commit or revision of the published files.", nullable=True),
        _c("license", "string", "License of the imported files.", nullable=True),
        _c("importer", "string", "Importer (module and format) that wrote the rows."),
        _c("importer_version", "string", "Version of that importer: a change in how rows are derived bumps it."),
        _c("input_sha256", "string", "SHA-256 over the imported files (names and bytes, in sorted order)."),
        _c("n_runs", "int", "Rows written to runs."),
        _c("n_metrics", "int", "Rows written to metrics."),
        _c("note", "string", "How N, D, C and the metrics were derived; rows left out and why.", nullable=True),
    ),
    "models": (
        _c("source", "string", "Source name, as in runs.source."),
        _c("model_size", "string", "runs.model_size of the model."),
        _c("family", "string", "Model family as the source names it (e.g. 'Llama-2', 'Pythia')."),
        _c("model_id", "string", "The model's published id (e.g. a Hugging Face Hub id).", nullable=True),
    ),
}


def columns(table: str) -> tuple[Column, ...]:
    if table not in TABLES:
        raise SchemaError(f"unknown table {table!r}; known: {', '.join(TABLES)}")
    return TABLES[table]


def column_names(table: str) -> list[str]:
    return [c.name for c in columns(table)]


# Columns that order a table's rows (read back and written to parquet in this order): the first four, unless
# they do not identify a row (points: its first six; curves: run, split, task and tokens).
ORDER = {"curves": ("source", "run_id", "split", "task", "tokens")}
KEY_COLUMNS = {"points": 6}


def order_by(table: str) -> list[str]:
    return list(ORDER[table]) if table in ORDER else column_names(table)[:KEY_COLUMNS.get(table, 4)]


def duckdb_ddl(table: str) -> str:
    """CREATE TABLE statement for `table`."""
    cols = ",\n  ".join(
        f"{c.name} {DTYPES[c.dtype][0]}{'' if c.nullable else ' NOT NULL'}" for c in columns(table)
    )
    return f"CREATE TABLE IF NOT EXISTS {table} (\n  {cols}\n)"


def arrow_schema(table: str):
    """pyarrow schema for `table`'s parquet file."""
    import pyarrow as pa

    types = {"string": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}
    return pa.schema(
        [pa.field(c.name, types[c.dtype], nullable=c.nullable, metadata={"description": c.description, "unit": c.unit}) for c in columns(table)],
        metadata={"schema_version": SCHEMA_VERSION, "table": table},
    )


# Value checks beyond the type (issue 12): a wrong value is refused, never collected and silently dropped.
STATUSES = ("completed", "diverged")
# Every metric a row may carry: the metric registry's (benchmark/evaluation/metrics.py).
KNOWN = {("runs", "status"): STATUSES, ("metrics", "metric"): tuple(METRICS), ("curves", "split"): ("train", "val")}
# Checked on this project's own rows only: an imported source keeps its publication's metric names.
LOCAL_ONLY = {("metrics", "metric")}
# Float columns that may be NaN/inf: a diverged run's mean training loss.
NONFINITE_OK = {("runs", "final_train_loss")}
# Float columns that may be negative (every int column and every other float column must be >= 0).
SIGNED = {("fits", "estimate"), ("fits", "ci95_low"), ("fits", "ci95_high"), ("literature", "estimate")}
NONEMPTY = ("source", "run_id")  # string columns that name a row: never ""


def _value_problem(table: str, c: Column, v: Any, local: bool = True) -> str | None:
    """Why `v` (of the right type, not None) is not a valid value of column `c`, or None."""
    if c.dtype == "float" and not math.isfinite(v):
        return None if (table, c.name) in NONFINITE_OK else f"is not finite ({v!r})"
    if c.dtype in ("int", "float") and v < 0 and (table, c.name) not in SIGNED:
        return f"is negative ({v!r})"
    known = KNOWN.get((table, c.name)) if local or (table, c.name) not in LOCAL_ONLY else None
    if known is not None and v not in known:
        return f"is {v!r}, not one of {', '.join(known)}"
    if c.dtype == "string" and c.name in NONEMPTY and not v:
        return "is empty"
    return None


def validate_record(table: str, record: dict[str, Any], where: str = "") -> dict[str, Any]:
    """Check one row: every column present with the right type and a valid value, no unknown field.
    Returns it ordered."""
    at = f" in {where}" if where else ""
    if not isinstance(record, dict):
        raise SchemaError(f"{table}: expected an object, got {type(record).__name__}{at}")
    names = column_names(table)
    unknown = sorted(set(record) - set(names), key=str)
    if unknown:
        raise SchemaError(f"{table}: unknown field {unknown[0]!r}{at}")
    out: dict[str, Any] = {}
    for c in columns(table):
        if c.name not in record:
            raise SchemaError(f"{table}: missing field {c.name!r}{at}")
        v = record[c.name]
        if v is None:
            if not c.nullable:
                raise SchemaError(f"{table}: field {c.name!r} is null{at}")
        else:
            ok = DTYPES[c.dtype][1]
            if isinstance(v, bool) and c.dtype != "bool" or not isinstance(v, ok):
                raise SchemaError(f"{table}: field {c.name!r} has {type(v).__name__} {v!r}, expected {c.dtype}{at}")
            problem = _value_problem(table, c, v, local=record.get("source") == "local")
            if problem:
                raise SchemaError(f"{table}: field {c.name!r} {problem}{at}")
            if c.dtype == "float":
                v = float(v)
        out[c.name] = v
    return out


def validate_arrow(table: str, data, where: str = ""):
    """The column-wise validate_record for an Arrow table (a run's predictions can be 10^5 rows): names and
    types as arrow_schema(table) (safe casts allowed), no null in a non-nullable column, valid values.
    Returns the table cast to arrow_schema(table)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    at = f" in {where}" if where else ""
    expected = arrow_schema(table)
    if data.schema.names != expected.names:
        missing = [n for n in expected.names if n not in data.schema.names]
        extra = [n for n in data.schema.names if n not in expected.names]
        what = f"missing field {missing[0]!r}" if missing else f"unknown field {extra[0]!r}" if extra else "columns in another order"
        raise SchemaError(f"{table}: {what}{at}")
    try:
        data = data.cast(expected, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as e:
        raise SchemaError(f"{table}: columns do not have the schema's types ({str(e).splitlines()[0]}){at}") from None
    for c in columns(table):
        col = data.column(c.name)
        nulls = col.null_count
        if nulls and not c.nullable:
            row = pc.index(pc.is_null(col), True).as_py()
            raise SchemaError(f"{table}: field {c.name!r} is null{at} row {row}")
        if len(col) == nulls:
            continue
        bad = None
        if c.dtype in ("int", "float") and (table, c.name) not in SIGNED:
            bad = pc.less(col, 0)
        if c.dtype == "float" and (table, c.name) not in NONFINITE_OK:
            bad = pc.or_(pc.invert(pc.is_finite(col)), bad) if bad is not None else pc.invert(pc.is_finite(col))
        if (table, c.name) in KNOWN:
            bad = pc.invert(pc.is_in(col, value_set=pa.array(KNOWN[(table, c.name)])))
            if (table, c.name) in LOCAL_ONLY and "source" in data.column_names:
                bad = pc.and_(bad, pc.equal(data.column("source"), "local"))
        if c.dtype == "string" and c.name in NONEMPTY:
            bad = pc.equal(pc.utf8_length(col), 0)
        if bad is not None and pc.any(bad).as_py():
            row = pc.index(bad, True).as_py()
            problem = _value_problem(table, c, col[row].as_py())
            raise SchemaError(f"{table}: field {c.name!r} {problem}{at} row {row}")
    return data
