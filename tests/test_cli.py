"""The command line: every command's help says a whole sentence, and library errors become one line and an exit code."""
from __future__ import annotations

import subprocess
import sys

import pytest

from benchmark import __main__ as cli_main, cli
from benchmark.evaluation import metrics
from benchmark.training import corpus
from benchmark.errors import StageError


@pytest.mark.parametrize("command", sorted(cli_main.COMMANDS))
def test_help_describes_the_command_in_whole_sentences(command, capsys):
    with pytest.raises(SystemExit) as e:
        cli_main.main([command, "--help"])
    assert e.value.code == 0
    description = " ".join(capsys.readouterr().out.split("\n\n")[1].split())  # usage, description, arguments
    assert description.endswith((".", ")")) and not description.endswith((" as", " and", " with", "e.g.")), description


def test_fit_csv_help_is_not_cut_mid_sentence():
    import benchmark.stages.fit_csv as fit_csv

    assert cli.summary(fit_csv.__doc__).endswith("and write the fits.json shape of the fit stage.")


def test_library_functions_raise_instead_of_exiting(tmp_path):
    with pytest.raises(StageError, match="manifest.json not found"):
        corpus.load(tmp_path)
    with pytest.raises(ValueError, match="which params do not define"):
        metrics.score_predictions([{"task": "poetry", "prediction": "a", "reference": "b"}], {}, "r", 0, 0)


def test_main_turns_a_library_error_into_one_line_and_exit_code(tmp_path, root):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "train.json").write_text('{"status": "completed"}')
    r = subprocess.run([sys.executable, "-m", "benchmark", "evaluate", "a-3k", "--params", "configs/tiny.yaml",
                        "--data", str(tmp_path), "--run-dir", str(tmp_path / "run")], cwd=root, capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [f"error: {tmp_path}/manifest.json not found: run the prepare stage first "
                                             "(dvc repro prepare)"]
    assert cli_main.exit_code(StageError("x")) == 2 and cli_main.exit_code(ValueError("x")) == 1

    from benchmark.errors import CommandError

    assert cli_main.exit_code(CommandError("hub down", code=1)) == 1 and cli_main.exit_code(FileNotFoundError("f")) == 1
