"""The one result schema: per-run JSON, DuckDB DDL, parquet schemas and the dataset card all derive from it.

Every table carries `source` ("local" for this checkout's runs, otherwise the name a pulled or
imported dataset was given), so published results are never mixed with local ones.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

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
        _c("final_train_loss", "float", "Mean training loss over the last 10 % of steps.", "nats/target token", nullable=True),
        _c("wall_time_s", "float", "Training wall-clock time (excludes evaluation).", "s", nullable=True),
        _c("tokens_per_s", "float", "Training throughput, measured after the warm-up steps (warmup_s).", "tokens/s", nullable=True),
        _c("flops_per_s", "float", "Achieved training FLOP/s, attention included (flops_attention / tokens * tokens_per_s).", "FLOP/s", nullable=True),
        _c("mfu", "float", "Model FLOP utilisation: flops_per_s / peak_flops_per_s.", "fraction", nullable=True),
        _c("peak_flops_per_s", "float", "Peak the MFU is relative to: a matmul measured at train start on CPU, the card's bf16 dense peak on GPU.", "FLOP/s", nullable=True),
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
        _c("metric", "string", "'val_loss' (nats/target token), 'bleu', 'rouge1', 'rouge2', 'rougeL', 'rougeLsum' (F-measure x 100), 'accuracy' (percent)."),
        _c("value", "float", "Metric value.", "see metric"),
        _c("stderr", "float", "Standard error: bootstrap over examples for BLEU/ROUGE, binomial for accuracy, over target tokens for val_loss.", "see metric", nullable=True),
        _c("n", "int", "Number of examples (target tokens for val_loss) the value is computed on; null when the source does not say.", nullable=True),
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
        _c("extrapolation_rel_err", "float", "Mean |relative error| on held-out largest-compute runs, fitted without them.", "fraction", nullable=True),
    ),
    "literature": (
        _c("source", "string", "Short citation key, e.g. 'hoffmann2022'."),
        _c("citation", "string", "Full reference."),
        _c("law", "string", "Law name (see fits.law)."),
        _c("parameter", "string", "Parameter name."),
        _c("estimate", "float", "Published value."),
        _c("note", "string", "Where in the paper, and caveats.", nullable=True),
    ),
}


def columns(table: str) -> tuple[Column, ...]:
    if table not in TABLES:
        raise SchemaError(f"unknown table {table!r}; known: {', '.join(TABLES)}")
    return TABLES[table]


def column_names(table: str) -> list[str]:
    return [c.name for c in columns(table)]


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


def validate_record(table: str, record: dict[str, Any], where: str = "") -> dict[str, Any]:
    """Check one row: every column present with the right type, no unknown field. Returns it ordered."""
    at = f" in {where}" if where else ""
    names = column_names(table)
    unknown = sorted(set(record) - set(names))
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
            if c.dtype == "float" and not math.isfinite(v) and c.name not in ("final_train_loss", "value"):
                raise SchemaError(f"{table}: field {c.name!r} is not finite ({v!r}){at}")
            if c.dtype == "float":
                v = float(v)
        out[c.name] = v
    return out
