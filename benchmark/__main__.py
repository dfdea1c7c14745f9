"""Command line: `python -m benchmark <command> [args]`; each command is a module with `main(argv)`."""
from __future__ import annotations

import importlib
import sys

# command -> (module, one-line help). Modules are imported lazily: `plan` must not pay for torch.
COMMANDS: dict[str, tuple[str, str]] = {
    "plan": ("benchmark.plan", "print the grid (run ids, N, D, FLOPs, estimated time) before any compute"),
    "prepare": ("benchmark.prepare", "DVC stage: task data splits and tokenizer"),
    "train": ("benchmark.train", "DVC stage: train one grid point into runs/<run_id>/"),
    "evaluate": ("benchmark.evaluate", "DVC stage: score one run (loss, BLEU, ROUGE, accuracy)"),
    "score": ("benchmark.score", "DVC stage: BLEU, ROUGE, accuracy of one run from its saved predictions"),
    "collect": ("benchmark.collect", "DVC stage: validate run records and load them into DuckDB"),
    "fit": ("benchmark.fit", "DVC stage: fit scaling laws with bootstrap intervals"),
    "report": ("benchmark.report", "DVC stage: leaderboard README, figures, LaTeX table"),
    "export": ("benchmark.export", "DVC stage: leaderboard/ as a Hugging Face dataset folder"),
    "fit-csv": ("benchmark.fit_csv", "fit published points from a CSV (e.g. Chinchilla)"),
    "publish": ("benchmark.publish", "upload leaderboard/ to the Hugging Face Hub"),
    "pull": ("benchmark.pull", "download a published results dataset into the local DuckDB"),
    "import": ("benchmark.importers", "import published results: chinchilla, pythia, obsscaling, or any table with --map"),
    "compare": ("benchmark.compare", "fit several sources with the same method and compare parameters"),
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
    from benchmark.db import DatabaseLocked

    try:
        return int(module.main(rest) or 0)
    except DatabaseLocked as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
