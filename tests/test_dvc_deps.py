"""dvc.yaml lists every module a stage's command imports (transitively inside benchmark/), so an edit to any
code behind a number makes `dvc repro` re-run that stage; and every stage waits on the params check."""
from __future__ import annotations

import ast
from pathlib import Path

import yaml

from tests_paths import ROOT

PKG = ROOT / "benchmark"


def _module_file(name: str) -> Path | None:
    """benchmark.x.y -> its .py file (a package -> its __init__.py); None outside benchmark/."""
    if name != "benchmark" and not name.startswith("benchmark."):
        return None
    base = ROOT.joinpath(*name.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def _name_of(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imports_of(path: Path) -> set[Path]:
    """Files inside benchmark/ that `path` imports anywhere (module level or inside a function)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _name_of(path) if path.name == "__init__.py" else _name_of(path).rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names.add(mod)
            names.update(f"{mod}.{a.name}" for a in node.names)  # `from benchmark import io` imports a module
    out = set()
    for name in names:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ too
            f = _module_file(".".join(parts[:i]))
            if f is not None:
                out.add(f)
    return out


def closure(start: set[Path]) -> set[Path]:
    seen, todo = set(), list(start)
    while todo:
        f = todo.pop()
        if f not in seen:
            seen.add(f)
            todo.extend(imports_of(f) - seen)
    return seen


def stage_modules(cmd: str) -> set[Path]:
    """Every benchmark/ file behind `python -m benchmark <command> ...`."""
    from benchmark.__main__ import COMMANDS

    words = cmd.split()
    assert words[:3] == ["python", "-m", "benchmark"], cmd
    start = {PKG / "__init__.py", PKG / "__main__.py", _module_file(COMMANDS[words[3]][0])}
    return closure(start)


def _stages() -> dict[str, dict]:
    doc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    return {name: st.get("do", st) for name, st in doc["stages"].items()}


def _covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(ROOT).as_posix()
    return any(rel == d or rel.startswith(d.rstrip("/") + "/") for d in deps)


def _deps(stage: dict) -> list[str]:
    return [d if isinstance(d, str) else next(iter(d)) for d in stage.get("deps", [])]


def test_the_closure_follows_imports_inside_functions_and_packages():
    got = {p.relative_to(ROOT).as_posix() for p in stage_modules("python -m benchmark train x")}
    # train imports checkpoint, corpus, trainer ... inside its function; params imports benchmark.tasks
    assert {"benchmark/stages/train.py", "benchmark/training/trainer.py", "benchmark/training/corpus.py", "benchmark/config/params.py",
            "benchmark/tasks/__init__.py", "benchmark/__main__.py"} <= got
    assert not any(p.startswith("tests/") for p in got)


def test_every_stage_lists_every_module_its_command_imports():
    missing = {}
    for name, stage in _stages().items():
        deps = _deps(stage)
        gaps = sorted(p.relative_to(ROOT).as_posix() for p in stage_modules(stage["cmd"]) if not _covered(p, deps))
        if gaps:
            missing[name] = gaps
    assert not missing, f"dvc.yaml deps are missing modules the stage imports: {missing}"


def test_every_stage_waits_on_the_params_check():
    stages = _stages()
    check = stages["check"]
    out = next(iter(check["outs"][0])) if isinstance(check["outs"][0], dict) else check["outs"][0]
    for name, stage in stages.items():
        if name != "check":
            assert out in _deps(stage), f"stage {name} does not depend on {out}"
