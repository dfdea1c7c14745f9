"""Every stage depends on the pin of its command: the sha256 of every module the command imports (transitively
inside benchmark/), written by the check stage. An edit to any code behind a number re-runs that stage, an edit
elsewhere does not, and every stage waits on the params check."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import yaml

from benchmark.__main__ import COMMANDS
from benchmark.config import code
from tests_paths import ROOT


def _stages() -> dict[str, dict]:
    doc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    return {name: st.get("do", st) for name, st in doc["stages"].items()}


def _paths(entries) -> list[str]:
    return [d if isinstance(d, str) else next(iter(d)) for d in entries or []]


def test_the_closure_follows_imports_inside_functions_and_packages():
    got = set(code.closure(ROOT, "train"))
    # train imports checkpoint, corpus, trainer ... inside its function; params imports benchmark.tasks
    assert {"benchmark/stages/train.py", "benchmark/training/trainer.py", "benchmark/training/corpus.py", "benchmark/config/params.py",
            "benchmark/tasks/__init__.py", "benchmark/__main__.py"} <= got
    assert not any(p.startswith(("tests/", "benchmark/reporting/", "benchmark/scaling/")) for p in got)
    assert "benchmark/reporting/figures.py" in code.closure(ROOT, "report")
    with pytest.raises(ValueError, match="unknown command"):
        code.closure(ROOT, "nonsense")


def test_every_stage_depends_on_the_pin_of_its_command_and_the_check_on_the_whole_package():
    stages = _stages()
    check = stages["check"]
    assert {"params.yaml", "benchmark"} <= set(_paths(check["deps"]))
    assert _paths(check["outs"]) == [f"pins/{c}.sha256" for c in code.PIPELINE]
    assert "--pins pins" in check["cmd"]
    commands = set()
    for name, stage in stages.items():
        if name == "check":
            continue
        command = stage["cmd"].split()[3]
        commands.add(command)
        deps = _paths(stage["deps"])
        assert f"pins/{command}.sha256" in deps, name
        assert not any(d.startswith("benchmark") for d in deps), (name, "lists modules by hand beside its pin")
    assert commands == set(code.PIPELINE) and set(code.PIPELINE) <= set(COMMANDS)


def test_a_pin_is_the_sha256_of_every_module_and_changes_only_with_them(tmp_path):
    shutil.copytree(ROOT / "benchmark", tmp_path / "benchmark")
    before = {c: code.pin(tmp_path, c) for c in code.PIPELINE}
    for line in before["train"].splitlines():  # the `sha256sum -c` format
        digest, rel = line.split("  ")
        assert digest == hashlib.sha256((tmp_path / rel).read_bytes()).hexdigest()
    assert [line.split("  ")[1] for line in before["train"].splitlines()] == code.closure(tmp_path, "train")

    figures = tmp_path / "benchmark" / "reporting" / "figures.py"
    figures.write_text(figures.read_text() + "\n# a figure edit\n")
    after = {c: code.pin(tmp_path, c) for c in code.PIPELINE}
    assert [c for c in code.PIPELINE if after[c] != before[c]] == ["report"]

    trainer = tmp_path / "benchmark" / "training" / "trainer.py"
    trainer.write_text(trainer.read_text() + "\n# a trainer edit\n")
    again = {c: code.pin(tmp_path, c) for c in code.PIPELINE}
    assert {c for c in code.PIPELINE if again[c] != after[c]} == {"train", "evaluate"}

