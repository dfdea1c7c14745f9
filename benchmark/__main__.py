"""Command line: `python -m benchmark <command> [args]`; each command is a module with `main(argv)`.

Library code raises; this is the one place that turns an error a user can act on (an exception
class of this package, or an OSError) into one line `error: ...` and an exit code.
"""
from __future__ import annotations

import importlib
import sys

# command -> (module, one-line help). Modules are imported lazily: `plan` must not pay for torch.
COMMANDS: dict[str, tuple[str, str]] = {
    "check": ("benchmark.stages.check", "DVC stage: check every params section (the first stage; a bad value stops the pipeline)"),
    "plan": ("benchmark.stages.plan", "print the grid (run ids, N, D, FLOPs, estimated time) before any compute"),
    "prepare": ("benchmark.stages.prepare", "DVC stage: task data splits and tokenizer"),
    "train": ("benchmark.stages.train", "DVC stage: train one grid point into runs/<run_id>/"),
    "evaluate": ("benchmark.stages.evaluate", "DVC stage: validation loss, greedy test predictions and their BLEU, ROUGE, accuracy for one run"),
    "collect": ("benchmark.stages.collect", "DVC stage: validate run records and load them into DuckDB"),
    "fit": ("benchmark.stages.fit", "DVC stage: fit scaling laws with bootstrap intervals"),
    "report": ("benchmark.stages.report", "DVC stage: leaderboard README, figures, LaTeX table"),
    "export": ("benchmark.stages.export", "rewrite leaderboard/data/*.parquet from the DuckDB tables (not a pipeline stage)"),
    "fit-csv": ("benchmark.stages.fit_csv", "fit published points from a CSV (e.g. Chinchilla)"),
    "publish": ("benchmark.stages.publish", "upload leaderboard/ to the Hugging Face Hub"),
    "pull": ("benchmark.stages.pull", "download a published results dataset into the local DuckDB"),
    "import": ("benchmark.stages.importers", "import published results: chinchilla, pythia, obsscaling, or any table with --map"),
    "compare": ("benchmark.stages.compare", "fit several sources with the same method and compare parameters"),
    "launch": ("benchmark.stages.launch", "run the stale grid points as parallel jobs (local processes or SLURM), then collect/fit/report"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: python -m benchmark <command> [args]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    try:
        return int(module.main(rest) or 0)
    except Exception as e:  # noqa: BLE001 - only the errors one_line knows; the rest keep their traceback
        line = one_line(e)
        if line is None:
            raise
        print(f"error: {line[0]}", file=sys.stderr)
        return line[1]


# Errors in what the user gave (params, data, files of a run) exit with 2, like argparse; a fit or
# any other failure of ours with 1.
USAGE_ERRORS = ("ParamsError", "SettingsError", "SchemaError", "CollectError", "HubDataError", "StageError",
                "DatabaseLocked", "CsvError", "FileFormatError")


def exit_code(e: BaseException) -> int:
    """The error's own `code` (errors.CommandError), else 2 for a usage error, else 1."""
    code = getattr(e, "code", None)
    if isinstance(code, int) and not isinstance(code, bool) and not isinstance(e, OSError):
        return code
    return 2 if any(c.__name__ in USAGE_ERRORS for c in type(e).__mro__) else 1


def one_line(e: BaseException) -> tuple[str, int] | None:
    """(message, exit status) for an error a user can act on: a bad file, value or permission, or any
    exception class of this package. None for anything else: a bug keeps its traceback."""
    import json

    if isinstance(e, OSError) and not isinstance(e, ConnectionError):
        where = f"{e.filename}: " if e.filename else ""
        return f"{where}{e.strerror or e}", 2
    if isinstance(e, json.JSONDecodeError):  # a reader that did not name its file
        return f"line {e.lineno} column {e.colno}: not valid JSON ({e.msg})", 2
    if (type(e).__module__ or "").split(".")[0] == "benchmark":
        return " ".join(str(e).split()), exit_code(e)
    return None


if __name__ == "__main__":
    sys.exit(main())
