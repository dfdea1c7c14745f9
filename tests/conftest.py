"""Shared fixtures: the repository root, params of the default and the tiny grid."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Tests never reach a network: Hub clients run offline unless a test points them at its local server.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture
def default_raw() -> dict:
    import yaml

    return yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.fixture
def tiny_raw() -> dict:
    import yaml

    return yaml.safe_load((ROOT / "configs" / "tiny.yaml").read_text())
