"""DVC stage `check`: every params section checked before any other stage may remove an output.

DVC deletes a stage's outputs before running its command, so a bad value found by the train or fit
stage itself costs the finished model or fit. Every stage depends on this stage's outputs; DVC runs
it first and stops at its error.

When the check passes, `--pins DIR` writes DIR/<command>.sha256 for each pipeline command: the sha256
of every module the command imports (benchmark/config/code.py). Each stage depends on its command's
pin, so a code edit re-runs the stages whose commands import the edited module and no other, and a
param edit (which leaves every pin as it was) re-runs only the stages that read that param.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from benchmark.config import code, grid, params as params_mod
from benchmark.results import io


def check(params_path: str | Path) -> params_mod.Params:
    """Load and check the whole params file (and derive the grid); raises ParamsError on the first bad value."""
    p = params_mod.load(str(params_path))
    grid.points(p)
    return p


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmark check", description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--pins", default=None, help="folder for one <command>.sha256 per pipeline command (its modules' sha256)")
    args = ap.parse_args(argv)
    p = check(args.params)
    if args.pins:
        root = Path(__file__).resolve().parents[2]
        for command in code.PIPELINE:
            io.write_text_atomic(Path(args.pins) / f"{command}.sha256", code.pin(root, command))
    print(f"{args.params}: ok ({len(p.runs)} runs)")
    return 0
