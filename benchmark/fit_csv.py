"""Command `fit-csv`: fit the Chinchilla law to published points in a CSV (e.g. Hoffmann et al.'s Fig. 4 as
extracted by Besiroglu et al. 2024) and write the fits.json shape of the fit stage.

    python -m benchmark fit-csv ../shared/data/chinchilla_svg_extracted.csv --n-col "Model Size" \\
        --flops-col "Training FLOP" --loss-col loss --drop-highest-loss 5 --out fits.json

Tokens come from --tokens-col, else D = C / (6 N) (Hoffmann et al. 2022, Sec. 3).
"""
from __future__ import annotations

import csv
import io as stdio
import sys
from pathlib import Path

import numpy as np

from benchmark import cli
from benchmark.io import write_json_atomic
from benchmark.fitting import FitError, FitSettings, Points, fit


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


def main(argv: list[str]) -> int:
    ap = cli.parser("fit-csv", __doc__)
    ap.add_argument("path", help="CSV file with one row per training run")
    ap.add_argument("--n-col", required=True, help="column with parameters N")
    ap.add_argument("--loss-col", required=True, help="column with the final loss")
    ap.add_argument("--flops-col", help="column with training FLOPs C")
    ap.add_argument("--tokens-col", help="column with training tokens D (default: C / 6N)")
    ap.add_argument("--drop-highest-loss", type=int, default=0, metavar="K",
                    help="drop the K highest-loss rows (Besiroglu et al. 2024 drop 5)")
    ap.add_argument("--bootstrap", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--huber-delta", type=float, default=1e-3)
    ap.add_argument("--holdout", type=float, default=0.2, help="fraction of largest-compute rows held out")
    ap.add_argument("--allocation-flops", type=float, default=None, help="C for N_opt, D_opt (default: largest C)")
    ap.add_argument("--target", default="loss", help="name written as the fit's target")
    ap.add_argument("--out", required=True, help="JSON file to write (a list with one fit)")
    args = ap.parse_args(argv)
    pts = read_points(args.path, args.n_col, args.loss_col, args.flops_col, args.tokens_col, args.drop_highest_loss)
    settings = FitSettings(delta=args.huber_delta, bootstrap=args.bootstrap, seed=args.seed,
                           holdout_fraction=args.holdout, allocation_flops=args.allocation_flops)
    result = fit("chinchilla", pts, settings, target=args.target)
    write_json_atomic(args.out, [result.to_json()])
    p = result.params
    print(f"chinchilla on {pts.n} points: E={p['E']:.4f} A={p['A']:.2f} B={p['B']:.2f} alpha={p['alpha']:.4f} "
          f"beta={p['beta']:.4f} a={result.allocation['a']:.3f}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
