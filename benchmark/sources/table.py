"""`import table FILE --map MAP.yaml`: any published table (CSV, JSON lines, parquet) into runs and metrics, no code.

The map names the source and which columns hold the model, its family, N, D, C and the metrics:

    source: kaplan2020
    citation: "Kaplan et al. 2020, Scaling Laws for Neural Language Models, Table 4"
    url: https://arxiv.org/abs/2001.08361        # optional, as are commit and license
    columns: {model: Model, family: Family, N: Params, N_nonembedding: Non-emb params, D: Tokens, C: FLOPs}
    scale: {N: 1.0e6}                            # optional: multiply a column (e.g. millions)
    metrics:
      - {column: Loss, task: all, metric: val_loss}
      - {column: MMLU, task: mmlu, metric: accuracy, scale: 100, stderr: MMLU SE}

`model` and `N` are required, and D or C (the other from C = 6 N D, Kaplan et al. 2020, Sec. 2.1).
A cell of N, D or C that is empty or not a positive number is an error; an empty metric cell means
the paper has no value there and gives no row. Errors name the map's line or the file's line.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmark.results import schema
from benchmark.sources.common import positive, read_csv_lines, run_defaults, source_row
from benchmark.errors import CommandError

TOP = {"source", "citation", "url", "commit", "license", "columns", "scale", "metrics"}
COLUMNS = {"model", "family", "N", "N_nonembedding", "D", "C"}
METRIC_KEYS = {"column", "task", "metric", "scale", "stderr"}


def _lines(node, path: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    """Line (1-based) of every key and item of a composed YAML node, by its path."""
    import yaml

    out = {} if out is None else out
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            out[path + (k.value,)] = k.start_mark.line + 1
            _lines(v, path + (k.value,), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _lines(v, path + (i,), out)
    return out


class Map:
    """A checked map: `err(path, msg)` raises naming the map file, the line and the key."""

    def __init__(self, path: Path):
        import yaml

        self.path = path
        try:
            text = path.read_text(encoding="utf-8")
            self.doc = yaml.safe_load(text)
            self.lines = _lines(yaml.compose(text)) if self.doc is not None else {}
        except (OSError, UnicodeDecodeError) as e:
            raise CommandError(f"{path}: cannot read ({e})") from None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise CommandError(f"{path}{where}: not valid YAML ({getattr(e, 'problem', None) or e})") from None
        if not isinstance(self.doc, dict):
            raise CommandError(f"{path}, line 1: the map must be a mapping with keys {', '.join(sorted(TOP))}")

    def err(self, key: tuple, msg: str) -> CommandError:
        line = self.lines.get(key) or self.lines.get(key[:-1]) or 1
        name = ".".join(str(k) for k in key)
        return CommandError(f"{self.path}, line {line}: {name}: {msg}")


def check_map(m: Map, header: list[str], source: str | None) -> dict[str, Any]:
    """The map's settings, every column checked against the file's header."""
    doc = m.doc
    for key in doc:
        if key not in TOP:
            raise m.err((key,), f"unknown key (known: {', '.join(sorted(TOP))})")
    src = source or doc.get("source")
    if not isinstance(src, str) or not src.strip():
        raise m.err(("source",), "a source name is required (here or with --source)")
    if not isinstance(doc.get("citation"), str) or not doc["citation"].strip():
        raise m.err(("citation",), "a citation (paper and table or figure) is required")
    for key in ("url", "commit", "license"):
        if doc.get(key) is not None and not isinstance(doc[key], str):
            raise m.err((key,), "must be a string")
    cols = doc.get("columns")
    if not isinstance(cols, dict):
        raise m.err(("columns",), "must map model, N, D or C (and optionally family, N_nonembedding) to column names")

    def column(key: tuple, name) -> str:
        if not isinstance(name, str) or name not in header:
            raise m.err(key, f"column {name!r} is not in the file (have: {', '.join(header)})")
        return name

    for key, name in cols.items():
        if key not in COLUMNS:
            raise m.err(("columns", key), f"unknown key (known: {', '.join(sorted(COLUMNS))})")
        column(("columns", key), name)
    for need in ("model", "N"):
        if need not in cols:
            raise m.err(("columns",), f"{need} is required")
    if "D" not in cols and "C" not in cols:
        raise m.err(("columns",), "D or C is required (the other follows from C = 6 N D)")
    scale = doc.get("scale") or {}
    if not isinstance(scale, dict):
        raise m.err(("scale",), "must map N, D or C to a positive factor")
    for key, v in list(scale.items()):
        if key not in ("N", "N_nonembedding", "D", "C") or _factor(v) is None:
            raise m.err(("scale", key), f"must be one of N, N_nonembedding, D, C with a positive number, got {v!r}")
        scale[key] = _factor(v)
    metrics = doc.get("metrics")
    if not isinstance(metrics, list) or not metrics:
        raise m.err(("metrics",), "must be a list of {column, task, metric[, scale, stderr]}")
    seen = set()
    for i, spec in enumerate(metrics):
        if not isinstance(spec, dict):
            raise m.err(("metrics", i), "must be a mapping {column, task, metric[, scale, stderr]}")
        for key in spec:
            if key not in METRIC_KEYS:
                raise m.err(("metrics", i, key), f"unknown key (known: {', '.join(sorted(METRIC_KEYS))})")
        for key in ("column", "task", "metric"):
            if not isinstance(spec.get(key), str) or not spec[key].strip():
                raise m.err(("metrics", i, key), "is required (a string)")
        column(("metrics", i, "column"), spec["column"])
        if "stderr" in spec:
            column(("metrics", i, "stderr"), spec["stderr"])
        if _factor(spec.get("scale", 1)) is None:
            raise m.err(("metrics", i, "scale"), f"must be a positive number, got {spec['scale']!r}")
        if (spec["task"], spec["metric"]) in seen:
            raise m.err(("metrics", i), f"task {spec['task']!r} metric {spec['metric']!r} is mapped twice")
        seen.add((spec["task"], spec["metric"]))
    return {"source": src.strip(), "columns": cols, "scale": scale, "metrics": metrics}


def read_rows(path: Path) -> tuple[list[str], list[tuple[str, dict[str, Any]]]]:
    """(header, [(where, row)]) of a CSV, JSON lines (.jsonl/.ndjson) or parquet file."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as e:  # pyarrow raises several types for a damaged file
            raise CommandError(f"{path}: not a readable parquet file ({str(e).splitlines()[0]})") from None
        rows = [(f"{path}, row {i + 1}", r) for i, r in enumerate(table.to_pylist())]
        header = table.column_names
    elif suffix in (".jsonl", ".ndjson", ".json"):
        rows, header = [], []
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise CommandError(f"{path}: cannot read ({e})") from None
        for n, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            try:
                r = json.loads(text)
            except json.JSONDecodeError as e:
                raise CommandError(f"{path}, line {n}: not valid JSON ({e.msg})") from None
            if not isinstance(r, dict):
                raise CommandError(f"{path}, line {n}: not a JSON object")
            header += [k for k in r if k not in header]
            rows.append((f"{path}, line {n}", r))
    else:
        lines = read_csv_lines(path)
        rows = [(f"{path}, line {n}", r) for n, r in lines]
        header = list(lines[0][1]) if lines else []
    if not rows:
        raise CommandError(f"{path}: no data rows")
    return header, rows


def _empty(v) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def tables(path: Path, map_path: Path, source: str | None = None) -> dict[str, list[dict[str, Any]]]:
    m = Map(map_path)
    header, rows = read_rows(path)
    spec = check_map(m, header, source)
    src, cols, scale = spec["source"], spec["columns"], spec["scale"]
    runs, metrics, models, seen = [], [], {}, set()

    def number(row, key: str, where: str, required: bool = True):
        col = cols.get(key)
        if col is None:
            return None
        v = row.get(col)
        if _empty(v):
            if required:
                raise CommandError(f"{where}: column {col!r} ({key}) is empty")
            return None
        return positive(v, col, where) * float(scale.get(key, 1.0))

    for where, row in rows:
        for col in dict.fromkeys([*cols.values()]):
            if col not in row:
                raise CommandError(f"{where}: column {col!r} is missing")
        model = row[cols["model"]]
        if _empty(model):
            raise CommandError(f"{where}: column {cols['model']!r} (model) is empty")
        model = str(model).strip()
        if model in seen:
            raise CommandError(f"{where}: column {cols['model']!r}: duplicate model {model!r}")
        seen.add(model)
        n, d, c = number(row, "N", where), number(row, "D", where), number(row, "C", where)
        d = d if d is not None else c / (6.0 * n)  # C = 6 N D (Kaplan et al. 2020, Sec. 2.1)
        c = c if c is not None else 6.0 * n * d
        nonemb = number(row, "N_nonembedding", where, required=False)
        runs.append({**run_defaults(), "source": src, "run_id": model, "model_size": model, "n_params": round(n),
                     "n_params_nonembedding": None if nonemb is None else round(nonemb),
                     "tokens": round(d), "flops": c, "seed": 0, "status": "completed", "schema_version": schema.SCHEMA_VERSION})
        family = row.get(cols["family"]) if "family" in cols else None
        models[model] = {"source": src, "model_size": model, "family": str(family).strip() if not _empty(family) else model,
                         "model_id": None}
        for ms in spec["metrics"]:
            v = row.get(ms["column"])
            if _empty(v):
                continue
            try:
                value = float(v)
                se = None if _empty(row.get(ms.get("stderr"))) else float(row[ms["stderr"]])
            except (TypeError, ValueError):
                bad = ms["column"] if not isinstance(v, (int, float)) and not _is_float(v) else ms["stderr"]
                raise CommandError(f"{where}: column {bad!r} is not a number") from None
            f = _factor(ms.get("scale", 1))
            metrics.append({"source": src, "run_id": model, "task": ms["task"], "metric": ms["metric"], "value": value * f,
                            "stderr": None if se is None else se * f, "n": None,
                            "signature": f"{m.doc['citation']}: column {ms['column']!r}" + (f" x {f:g}" if f != 1 else "")})
    note = f"imported with map {map_path.name}: " + ", ".join(f"{k} = {v!r}" for k, v in cols.items())
    info = {k: m.doc.get(k) for k in ("citation", "url", "commit", "license")}
    return {"runs": runs, "metrics": metrics, "models": list(models.values()),
            "sources": [source_row(src, info, "benchmark.sources.table", [path, map_path], runs, metrics, note)]}


def _factor(v) -> float | None:
    """A positive scale factor; YAML 1.1 reads 1.0e6 (no sign in the exponent) as a string, so strings are parsed."""
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        return None
    try:
        f = float(v)
    except ValueError:
        return None
    return f if 0 < f < float("inf") else None


def _is_float(v) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False
