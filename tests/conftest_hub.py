"""Shared helpers for the Hub tests: a running test Hub, a tiny git project with an exported leaderboard, the CLI in a subprocess.

Import the fixture into a test module (`from conftest_hub import hub`). The CLI runs in a subprocess because
huggingface_hub reads HF_ENDPOINT, HF_HUB_DISABLE_XET, HF_HOME... once, at import time.
"""
from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from benchmark.reporting import card
from benchmark.results import db, schema
from benchmark.stages import export
from benchmark.results.dataset import table_summaries
from hub_server import HubServer

TOKEN = "hf_PlantedTestToken_7Q2xVb9LmN4kR8sW"  # searched for in every output and file afterwards
USER, ORG = "alice", "bench-org"
REPO = f"{ORG}/scaling-results"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def hub() -> Iterator[HubServer]:
    with HubServer(tokens={TOKEN: USER}, orgs={USER: [ORG]}) as server:
        yield server


@pytest.fixture
def online(monkeypatch):
    """In-process huggingface_hub calls allowed even if the test session set HF_HUB_OFFLINE (read at import)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)


def hub_env(hub: HubServer | None, home: Path, token: str | None = TOKEN, endpoint: str | None = None) -> dict[str, str]:
    """Environment for a client subprocess: caches under `home`, no Xet, endpoint on the test Hub."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "HUGGING_FACE_")) and "PROXY" not in k.upper()}
    env.update(
        HF_ENDPOINT=endpoint or (hub.url if hub else f"http://127.0.0.1:{closed_port()}"),
        HF_HOME=str(home / "hf_home"), HF_HUB_CACHE=str(home / "hf_home" / "hub"),
        HF_DATASETS_CACHE=str(home / "hf_home" / "datasets"), HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_UPDATE_CHECK="1", HF_HUB_ETAG_TIMEOUT="5",
        NO_PROXY="127.0.0.1,localhost", PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1",
    )
    if token is not None:
        env["HF_TOKEN"] = token
    return env


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmark", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def run_python(code: str, env: dict[str, str], cwd: Path, args: list[str] = ()) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under root -> sha256 of its content (to assert that nothing changed on disk)."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and ".git" not in p.relative_to(root).parts}


def files_containing(root: Path, needle: str) -> list[str]:
    data = needle.encode()
    return [str(p) for p in root.rglob("*") if p.is_file() and data in p.read_bytes()]


def synthetic_rows() -> dict[str, list[dict]]:
    """A few rows per table, valid under schema.py, with nulls, unicode and full-precision floats."""
    nulls = {c.name: None for c in schema.columns("runs") if c.nullable}
    runs = []
    for i, (size, n, d, status) in enumerate([("xs", 1_234_567, 20_000_000, "completed"),
                                               ("s", 4_567_890, 40_000_000, "completed"),
                                               ("s", 4_567_890, 80_000_000, "diverged")]):
        runs.append({**nulls, "source": "local", "run_id": f"{size}-{d}-s0", "model_size": size, "d_model": 64 * (i + 1),
                     "n_layers": 2 + i, "n_heads": 4, "vocab_size": 8192, "seq_len": 256, "n_params": n,
                     "n_params_embedding": 524_288, "n_params_nonembedding": n - 524_288, "tokens": d,
                     "flops": 6.0 * n * d, "seed": 0, "status": status, "lr": 3e-4 / (i + 1),
                     "diverged_step": 1234 if status == "diverged" else None, "final_train_loss": 3.1 + i / 7,
                     "git_sha": "0123456789abcdef0123456789abcdef01234567", "schema_version": schema.SCHEMA_VERSION})
    metrics = [{"source": "local", "run_id": r["run_id"], "task": task, "metric": metric, "value": 2.0 + k / 3,
                "stderr": None if metric == "bleu" else 0.01 * (k + 1), "n": 100 + k,
                "signature": "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0" if metric == "bleu" else None}
               for k, (r, (task, metric)) in enumerate((r, tm) for r in runs[:2]
                                                       for tm in [("all", "val_loss"), ("translation", "bleu")])]
    fits = [{"source": "local", "law": "chinchilla", "target": "val_loss/all", "parameter": p, "estimate": v,
             "se": v / 10, "ci95_low": v * 0.8, "ci95_high": v * 1.2, "n_points": 2,
             "method": '{"loss": "huber", "delta": 0.001}', "extrapolation_rel_err": None, "identified": p != "alpha",
             "identification": "alpha has no bootstrap interval" if p == "alpha" else None}
            for p, v in [("E", 1.69), ("A", 406.4), ("alpha", 0.34)]]
    literature = [{"source": "hoffmann2022", "citation": "Hoffmann et al. 2022, Training Compute-Optimal LLMs",
                   "law": "chinchilla", "parameter": p, "estimate": v, "note": "Approach 3" if p != "E" else None}
                  for p, v in [("E", 1.69), ("alpha", 0.34), ("beta", 0.28)]]
    predictions = [{"source": "local", "run_id": runs[0]["run_id"], "task": "translation", "example_id": f"ex{i}",
                    "difficulty": i, "input": f"Übersetze: Satz {i} | mit Pipe", "reference": f"sentence {i}",
                    "prediction": "sentence" if i else ""} for i in range(3)]
    from benchmark.results.points import points_rows

    return {"runs": runs, "metrics": metrics, "points": points_rows(runs, metrics), "fits": fits, "literature": literature,
            "predictions": predictions}


def write_card(folder: Path, repo_id: str = REPO, blocks: tuple = ()) -> str:
    text = card.render(tables=table_summaries(folder), repo_id=repo_id, git_sha="0" * 40,
                       fit_method="Huber (delta 1e-3) on log-loss residuals, L-BFGS from a grid of starts.",
                       metric_signatures={"bleu": "nrefs:1|case:mixed|tok:13a"}, blocks=blocks, year=2026)
    (folder / "README.md").write_text(text, encoding="utf-8")
    return text


def make_leaderboard(folder: Path) -> Path:
    """leaderboard/ as the pipeline leaves it: results.duckdb, data/*.parquet, README.md; returns the DuckDB path."""
    folder.mkdir(parents=True, exist_ok=True)
    db_path = folder / "results.duckdb"
    con = db.connect(str(db_path))
    for table, rows in synthetic_rows().items():
        db.replace_rows(con, table, rows)
    con.close()
    export.export(db_path, folder)
    write_card(folder)
    return db_path


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args],
                   cwd=cwd, check=True, capture_output=True)


def make_project(root: Path) -> Path:
    """A committed git checkout with runs/ and an exported leaderboard/ (both ignored, as in this project)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / ".gitignore").write_text("/runs/*\n/leaderboard/*\n")
    (root / "params.yaml").write_text("grid: tiny\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "init")
    (root / "runs" / "xs-20000000-s0").mkdir(parents=True)
    (root / "runs" / "xs-20000000-s0" / "record.json").write_text("{}")
    os.utime(root / "runs" / "xs-20000000-s0" / "record.json", (1_000_000_000, 1_000_000_000))  # older than the export
    make_leaderboard(root / "leaderboard")
    return root
