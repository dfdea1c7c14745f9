"""The opening every command's `main(argv)` shares: its parser, described by its module docstring, and its params."""
from __future__ import annotations

import argparse
from typing import Any


def summary(doc: str | None) -> str:
    """The first paragraph of a module docstring as one line (a whole sentence, never cut at a line end)."""
    return " ".join((doc or "").strip().split("\n\n", 1)[0].split())


def parser(command: str, doc: str | None, *, params: bool = False) -> argparse.ArgumentParser:
    """`python -m benchmark <command>`'s parser; with params, its `--params` option (default params.yaml)."""
    ap = argparse.ArgumentParser(prog=f"python -m benchmark {command}", description=summary(doc))
    if params:
        ap.add_argument("--params", default="params.yaml", help="the params file (default: params.yaml)")
    return ap


def parse(ap: argparse.ArgumentParser, argv: list[str]) -> tuple[argparse.Namespace, Any]:
    """(arguments, the checked params they name); a bad params file raises params.ParamsError."""
    from benchmark.config import params as params_mod

    args = ap.parse_args(argv)
    return args, params_mod.load(args.params)
