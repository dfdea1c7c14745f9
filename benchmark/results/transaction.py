"""All-or-nothing updates of several files (the DuckDB file, parquet, JSON): a stage's whole record or none of it.

Each new file is written in full beside its target under a temporary name; then one journal file, written
atomically, lists every (temporary, target) pair: that write is the commit. The renames follow and the
journal is removed. A process killed before the journal leaves only temporary files, which `recover`
deletes (the old state); killed after it, `recover` finishes the renames (the new state). `db.connect`
recovers first, so every reader and writer of the leaderboard sees a whole state.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from benchmark.results import io

JOURNAL = ".transaction.json"
MARK = ".txn-"  # in every temporary file's name


class Transaction:
    """Files staged for one commit; the journal lives in `folder` (the leaderboard folder)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.pairs: list[tuple[Path, Path]] = []

    def stage(self, target: str | Path) -> Path:
        """A temporary path beside `target` for the new content (written by the caller)."""
        target = Path(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}{MARK}{os.getpid()}")
        tmp.unlink(missing_ok=True)
        self.pairs.append((tmp, target))
        return tmp

    def stage_copy(self, target: str | Path) -> Path:
        """Like stage, starting from a copy of the current `target` (if any): for a database that is edited."""
        tmp = self.stage(target)
        if Path(target).exists():
            shutil.copyfile(target, tmp)
        return tmp

    def commit(self) -> None:
        for tmp, _ in self.pairs:
            if not tmp.exists():
                raise FileNotFoundError(2, "staged file was never written", str(tmp))
            io.follow_umask(tmp)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        rel = [[os.path.relpath(t, self.folder), os.path.relpath(d, self.folder)] for t, d in self.pairs]
        io.write_json_atomic(self.folder / JOURNAL, rel)  # the commit point
        _apply(self.folder, rel)

    def abort(self) -> None:
        for tmp, _ in self.pairs:
            tmp.unlink(missing_ok=True)
            Path(f"{tmp}.wal").unlink(missing_ok=True)

    def __enter__(self) -> "Transaction":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def _apply(folder: Path, pairs: list[list[str]]) -> None:
    for tmp, target in pairs:
        src, dst = folder / tmp, folder / target
        if src.exists():
            Path(f"{dst}.wal").unlink(missing_ok=True)  # a DuckDB log of the old file must not replay onto the new
            try:
                os.replace(src, dst)
            except FileNotFoundError:  # another process recovering the same journal moved it first
                pass
    _fsync_dirs({(folder / t).parent for _, t in pairs})
    (folder / JOURNAL).unlink(missing_ok=True)


def _fsync_dirs(dirs: set[Path]) -> None:
    for d in dirs:
        try:
            fd = os.open(d, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def process_alive(pid) -> bool:
    """Whether process `pid` on this host still runs. A zombie (killed, its parent gone, not yet reaped: what
    PID 1 of many containers leaves behind) has ended, though `kill(pid, 0)` still finds it."""
    try:
        pid = int(pid)
    except (TypeError, ValueError):
        return False
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # Linux: the state is the field after the command name, which is in parentheses and may hold spaces
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (macOS) or it vanished meanwhile: trust kill()
    return state not in ("Z", "X", "x")


def recover(folder: str | Path) -> str | None:
    """Finish a committed transaction or discard an uncommitted one in `folder`; returns what was done."""
    folder = Path(folder)
    journal = folder / JOURNAL
    done = None
    if journal.exists():
        try:
            pairs = json.loads(journal.read_text())
        except (ValueError, OSError):  # cannot happen with an atomic write; refuse to guess
            raise io.FileFormatError(f"{journal}: unreadable transaction journal; restore the leaderboard "
                                     "with `dvc checkout` or re-run collect and fit") from None
        _apply(folder, pairs)
        done = "committed"
    if folder.is_dir():
        for d in (folder, *[p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]):
            for tmp in d.glob(f".*{MARK}*"):
                if tmp.is_file() and not process_alive(tmp.name.split(MARK)[-1].split(".")[0]):
                    tmp.unlink(missing_ok=True)
                    done = done or "discarded"
    return done
