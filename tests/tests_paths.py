"""Paths the tests share (importable as a module because pytest puts tests/ on sys.path)."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.yaml"
