"""Which code a pipeline command runs: the modules inside benchmark/ that `python -m benchmark <command>`
imports (transitively, at module level or inside a function), each pinned by its sha256.

The check stage writes one pin file per pipeline command (`pins/<command>.sha256`, the format
`sha256sum -c` reads) and each stage depends on its command's pin instead of listing its modules:
an edit to a module re-runs exactly the stages whose commands import it, as a hand-written list of
modules per stage would, at the cost of one dependency per stage in DVC's status check (a no-op
`dvc repro` of the 16-run default grid: median 2.8 s against 3.8 s with the lists; README, "Measured figures").
"""
from __future__ import annotations

import ast
import hashlib
from pathlib import Path

PACKAGE = "benchmark"
# The commands dvc.yaml runs as stages after the check, in pipeline order.
PIPELINE = ("prepare", "train", "evaluate", "collect", "fit", "report")


def _module_file(root: Path, name: str) -> Path | None:
    """benchmark.x.y -> its .py file (a package -> its __init__.py); None outside the package."""
    if name != PACKAGE and not name.startswith(PACKAGE + "."):
        return None
    base = root.joinpath(*name.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def _name_of(root: Path, path: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    return ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)


def imports_of(root: Path, path: Path) -> set[Path]:
    """Files inside the package that `path` imports anywhere (module level or inside a function)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _name_of(root, path) if path.name == "__init__.py" else _name_of(root, path).rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                mod = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names.add(mod)
            names.update(f"{mod}.{a.name}" for a in node.names)  # `from benchmark import io` imports a module
    out = set()
    for name in names:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ too
            f = _module_file(root, ".".join(parts[:i]))
            if f is not None:
                out.add(f)
    return out


def closure(root: Path, command: str) -> list[str]:
    """Paths (relative to root, sorted) of every module behind `python -m benchmark <command>`:
    the package's __init__ and __main__, the command's module (from __main__.COMMANDS) and all they import."""
    from benchmark.__main__ import COMMANDS

    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}")
    root = Path(root)
    todo = [root / PACKAGE / "__init__.py", root / PACKAGE / "__main__.py", _module_file(root, COMMANDS[command][0])]
    seen: set[Path] = set()
    while todo:
        f = todo.pop()
        if f is not None and f not in seen:
            seen.add(f)
            todo.extend(imports_of(root, f) - seen)
    return sorted(p.relative_to(root).as_posix() for p in seen)


def pin(root: Path, command: str) -> str:
    """`<sha256>  <path>` per module of the command's closure, one line each (`sha256sum -c` checks it)."""
    root = Path(root)
    return "".join(f"{hashlib.sha256((root / rel).read_bytes()).hexdigest()}  {rel}\n" for rel in closure(root, command))
