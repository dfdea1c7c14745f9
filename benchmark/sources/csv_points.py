"""Published (N, D or C, loss) points from a CSV, checked row by row: a bad file is one line naming its line and column."""
from __future__ import annotations

import csv
import io as stdio
from pathlib import Path
import numpy as np
from benchmark.scaling.engine import FitError, Points


class CsvError(FitError):
    """The CSV or an option about it is wrong (exit 2); the message names the file and line."""


def read_points(path: str | Path, n_col: str, loss_col: str, flops_col: str | None = None,
                tokens_col: str | None = None, drop_highest_loss: int = 0) -> Points:
    """Points from the named CSV columns; rows keep their CSV line numbers as ids for error messages."""
    if flops_col is None and tokens_col is None:
        raise CsvError("give --flops-col or --tokens-col (or both)")
    if drop_highest_loss < 0:
        raise CsvError(f"--drop-highest-loss must be >= 0, got {drop_highest_loss}")
    with open(path, "rb") as fh:
        data = fh.read()
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark (Excel's CSV export) is not part of the first column
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise CsvError(f"{path}:{line}: not UTF-8 (byte {data[e.start]:#04x}); save the file as UTF-8") from None
    try:
        reader = csv.DictReader(stdio.StringIO(text, newline=""))
        cols = [c for c in (n_col, loss_col, flops_col, tokens_col) if c is not None]
        missing = [c for c in cols if c not in (reader.fieldnames or [])]
        if missing:
            raise CsvError(f"{path}: no column {missing[0]!r} (columns: {', '.join(map(repr, reader.fieldnames or []))})")
        records, lines = [], []
        for rec in reader:
            records.append(rec)
            lines.append(reader.line_num)
    except csv.Error as e:
        raise CsvError(f"{path}:{reader.line_num}: not valid CSV ({e})") from None
    if drop_highest_loss >= len(records):
        raise CsvError(f"--drop-highest-loss {drop_highest_loss} would drop all {len(records)} rows of {path}")

    def column(name):
        out = []
        for rec, line in zip(records, lines):
            try:
                v = float(rec[name])
            except (TypeError, ValueError):
                raise CsvError(f"{path}:{line}: {name!r} is not a number ({rec[name]!r})") from None
            if not np.isfinite(v) or (name != loss_col and v <= 0):
                raise CsvError(f"{path}:{line}: {name!r} must be a {'finite' if name == loss_col else 'positive finite'} "
                               f"number, got {rec[name]!r}")
            out.append(v)
        return np.array(out)

    N, y = column(n_col), column(loss_col)
    C = column(flops_col) if flops_col else None
    D = column(tokens_col) if tokens_col else C / (6.0 * N)
    ids = np.array([f"line {line}" for line in lines], dtype=object)
    keep = np.ones(y.size, dtype=bool)
    if drop_highest_loss:
        keep[np.argsort(y, kind="stable")[y.size - drop_highest_loss:]] = False
    return Points(y=y[keep], N=N[keep], D=D[keep], C=None if C is None else C[keep], ids=tuple(ids[keep]))
