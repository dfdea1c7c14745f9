"""Shared fixtures: the repository root, params of the default and the tiny grid."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Tests never reach a network: Hub clients run offline unless a test points them at its local server.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The suite's own Hub and datasets caches (set before either library is imported, inherited by every subprocess):
# nothing this machine cached before can change a result, and the suite leaves nothing in the user's caches.
_HF_HOME = tempfile.mkdtemp(prefix="benchmark-tests-hf-")
os.environ["HF_HOME"] = _HF_HOME
os.environ["HF_DATASETS_CACHE"] = os.path.join(_HF_HOME, "datasets")
os.environ["HF_HUB_CACHE"] = os.path.join(_HF_HOME, "hub")
atexit.register(shutil.rmtree, _HF_HOME, ignore_errors=True)


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
