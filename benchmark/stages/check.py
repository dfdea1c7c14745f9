"""DVC stage `check`: every params section checked before any other stage may remove an output.

DVC deletes a stage's outputs before running its command, so a bad value found by the train or fit
stage itself costs the finished model or fit. Every stage depends on this stage's output; DVC runs
it first and stops at its error. The output's content is constant when the check passes, so a
param edit re-runs this stage without making any other stage out of date.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from benchmark.config import grid, params as params_mod
from benchmark.results import io

PASSED = "params checked: every section of the params file is valid\n"


def check(params_path: str | Path) -> params_mod.Params:
    """Load and check the whole params file (and derive the grid); raises ParamsError on the first bad value."""
    p = params_mod.load(str(params_path))
    grid.points(p)
    return p


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmark check", description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", default=None, help="file to write when the check passes (the DVC stage's output)")
    args = ap.parse_args(argv)
    p = check(args.params)
    if args.out:
        io.write_text_atomic(args.out, PASSED)
    print(f"{args.params}: ok ({len(p.runs)} runs)")
    return 0
