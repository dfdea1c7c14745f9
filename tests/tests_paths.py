"""Paths the tests share (importable as a module because pytest puts tests/ on sys.path)."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.yaml"


def _shared_csv() -> Path:
    """The Chinchilla reference points (a fixture kept outside the repository, not shipped): `../shared`
    beside the checkout, or the folder named by BENCHMARK_SHARED_DATA."""
    import os

    for folder in (os.environ.get("BENCHMARK_SHARED_DATA"), ROOT.parent / "shared" / "data"):
        if folder and (Path(folder) / "chinchilla_svg_extracted.csv").exists():
            return Path(folder) / "chinchilla_svg_extracted.csv"
    return ROOT.parent / "shared" / "data" / "chinchilla_svg_extracted.csv"


CHINCHILLA_CSV = _shared_csv()


def shared_data(name: str) -> Path:
    """A published data set under the shared data folder (../shared/data or $BENCHMARK_SHARED_DATA)."""
    import os

    for folder in (os.environ.get("BENCHMARK_SHARED_DATA"), ROOT.parent / "shared" / "data"):
        if folder and (Path(folder) / name).exists():
            return Path(folder) / name
    return ROOT.parent / "shared" / "data" / name
