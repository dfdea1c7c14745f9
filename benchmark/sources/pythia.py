"""Pythia (Biderman et al. 2023) zero-shot lm-evaluation-harness results as runs and metrics: 7 sizes x 27 checkpoints.

Each checkpoint is a run: D = step x 2,097,152 tokens (1024 sequences of 2048 tokens per step,
every size on the same data in the same order), C = 6 N D. N from the architecture, checked against
the Pythia README's model table (total and non-embedding parameters; input and output embeddings
are untied, so the embedding count is 2 x vocab x d_model).
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from benchmark.results import schema
from benchmark.sources.common import positive, run_defaults, source_row
from benchmark.errors import CommandError

TOKENS_PER_STEP = 1024 * 2048  # Biderman et al. 2023, Sec. 2.1 / App. E: batch 1024 x 2048 tokens
SEQ_LEN = 2048
BATCH = 1024
# size -> (n_layers, d_model, n_heads, padded vocab, published total params, published non-embedding params)
# Architecture and counts: Pythia README "Models" table and Biderman et al. 2023, Table 1.
SIZES: dict[str, tuple[int, int, int, int, int, int]] = {
    "70m": (6, 512, 8, 50304, 70_426_624, 18_915_328),
    "160m": (12, 768, 12, 50304, 162_322_944, 85_056_000),
    "410m": (24, 1024, 16, 50304, 405_334_016, 302_311_424),
    "1.4b": (24, 2048, 16, 50304, 1_414_647_808, 1_208_602_624),
    "2.8b": (32, 2560, 32, 50304, 2_775_208_960, 2_517_652_480),
    "6.9b": (32, 4096, 32, 50432, 6_857_302_016, 6_444_163_072),
    "12b": (36, 5120, 40, 50688, 11_846_072_320, 11_327_027_200),
}
SOURCE = {
    "citation": "Biderman, Schoelkopf, Anthony, Bradley, O'Brien, Hallahan, et al. Pythia: A Suite for Analyzing Large "
                "Language Models Across Training and Scaling. ICML 2023, arXiv:2304.01373",
    "url": "https://github.com/EleutherAI/pythia/tree/main/evals/pythia-v1",
    "commit": "a19eecb807ec2c79a39ebf18108816e6ffffc1d5", "license": "Apache-2.0",
}
# harness metric -> (our metric name, factor): accuracies become percent, as the schema's `accuracy`.
RENAME = {"acc": ("accuracy", 100.0), "acc_norm": ("accuracy_norm", 100.0), "ppl": ("perplexity", 1.0)}
FILE = re.compile(r"^(?P<size>[0-9.]+[mb])_step(?P<step>\d+)\.json$")


def param_counts(size: str) -> tuple[int, int, int]:
    """(total, embedding, non-embedding) of a GPT-NeoX Pythia model: per layer 12 d^2 weights and 13 d
    biases and norm gains, a final norm (2 d), untied input and output embeddings (2 V d)."""
    n_layers, d, _, vocab, _, _ = SIZES[size]
    nonemb = n_layers * (12 * d * d + 13 * d) + 2 * d
    emb = 2 * vocab * d
    return nonemb + emb, emb, nonemb


def _read(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CommandError(f"{path}: not a readable JSON file ({e})") from None
    for key in ("results", "config"):
        if not isinstance(doc.get(key), dict):
            raise CommandError(f"{path}: field {key!r} is missing or not an object (not an lm-evaluation-harness result)")
    return doc


def checkpoint_rows(path: Path, source: str) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    """(runs row, metrics rows, model id) of one `<size>_step<k>.json`."""
    m = FILE.match(path.name)
    if not m or m["size"] not in SIZES:
        raise CommandError(f"{path}: file name is not <size>_step<k>.json with a Pythia size ({', '.join(SIZES)})")
    size, step = m["size"], int(m["step"])
    doc = _read(path)
    args = dict(kv.split("=", 1) for kv in str(doc["config"].get("model_args", "")).split(",") if "=" in kv)
    model_id, revision = args.get("pretrained", ""), args.get("revision", "")
    if not model_id.endswith(f"-{size}") or revision != f"step{step}":
        raise CommandError(f"{path}: field 'config.model_args' names {model_id!r} at {revision!r}, not pythia {size} at step{step}")
    total, emb, nonemb = param_counts(size)
    n_layers, d, heads, vocab, _, _ = SIZES[size]
    tokens = step * TOKENS_PER_STEP
    run_id = f"pythia-{size}-step{step}"
    run = {**run_defaults(), "source": source, "run_id": run_id, "model_size": f"pythia-{size}", "d_model": d,
           "n_layers": n_layers, "n_heads": heads, "vocab_size": vocab, "seq_len": SEQ_LEN, "n_params": total,
           "n_params_embedding": emb, "n_params_nonembedding": nonemb, "tokens": tokens, "flops": 6.0 * total * tokens,
           "flops_attention": 6.0 * total * tokens + 12.0 * n_layers * SEQ_LEN * d * tokens, "seed": 0,
           "status": "completed", "steps": step, "batch_size": BATCH, "schema_version": schema.SCHEMA_VERSION}
    versions = doc.get("versions") or {}
    metrics = []
    for task, values in sorted(doc["results"].items()):
        if not isinstance(values, dict):
            raise CommandError(f"{path}: field 'results.{task}' is not an object")
        for key, value in sorted(values.items()):
            if key.endswith("_stderr"):
                continue
            where = f"{path}: field 'results.{task}.{key}'"
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise CommandError(f"{where} is not a finite number ({value!r})")
            se = values.get(f"{key}_stderr")
            if se is not None and (not isinstance(se, (int, float)) or not math.isfinite(se) or se < 0):
                raise CommandError(f"{where}_stderr is not a non-negative number ({se!r})")
            name, factor = RENAME.get(key, (key, 1.0))
            sig = (f"lm-evaluation-harness {task} (task version {versions.get(task, '?')}), zero-shot, {key}"
                   + (f" x {factor:g}" if factor != 1 else "") + f"; EleutherAI/pythia evals/pythia-v1 @ {SOURCE['commit'][:12]}")
            metrics.append({"source": source, "run_id": run_id, "task": task, "metric": name, "value": float(value) * factor,
                            "stderr": None if se is None else float(se) * factor, "n": None, "signature": sig})
            if key == "ppl":  # the loss-like form: mean negative log-likelihood of the target word (nats)
                positive(value, f"results.{task}.ppl", str(path))
                metrics.append({"source": source, "run_id": run_id, "task": task, "metric": "log_perplexity",
                                "value": math.log(value), "stderr": None if se is None else float(se) / value, "n": None,
                                "signature": f"ln({sig.split(';')[0]}) = mean NLL of the target (nats); "
                                             "stderr = ppl_stderr / ppl (delta method)"})
    return run, metrics, model_id


def tables(folder: Path, source: str = "pythia") -> dict[str, list[dict[str, Any]]]:
    """Every `pythia-<size>/<size>_step<k>.json` under `folder` (or `folder` itself if it holds the JSON files)."""
    files = sorted(folder.glob("pythia-*/*.json")) or sorted(folder.glob("*_step*.json"))
    if not files:
        raise CommandError(f"{folder}: no pythia-<size>/<size>_step<k>.json files")
    runs, metrics, models = [], [], {}
    for path in files:
        run, rows, model_id = checkpoint_rows(path, source)
        runs.append(run)
        metrics += rows
        models.setdefault(run["model_size"], model_id)
    runs.sort(key=lambda r: (r["n_params"], r["tokens"]))
    model_rows = [{"source": source, "model_size": m, "family": "Pythia", "model_id": i} for m, i in models.items()]
    note = (f"{len(runs)} checkpoints of {len(models)} sizes. D = step x {TOKENS_PER_STEP:,} tokens, C = 6 N D, N total "
            "(embedding counted twice: untied), non-embedding as in the Pythia README. Accuracies x 100 (percent); "
            "lambada perplexity also as log_perplexity (nats). Step 0 (D = 0) is kept; fits need D > 0. seed 0 = not published.")
    return {"runs": runs, "metrics": metrics, "models": model_rows,
            "sources": [source_row(source, SOURCE, "benchmark.sources.pythia", files, runs, metrics, note)]}
