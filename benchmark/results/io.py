"""Small file helpers: every write is atomic (temp file + rename) and follows the umask, so a crash never leaves
half a file. The one place the project writes files atomically."""
from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator


def umask() -> int:
    """The process umask (read without changing it for longer than two calls)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def follow_umask(path: str | Path) -> None:
    """Give `path` (a file, or a folder and everything in it) the modes a plain open() would have: 0644/0755
    under umask 022. mkstemp and some writers (safetensors) create files 0600 whatever the umask."""
    path, mask = Path(path), umask()
    if path.is_dir():
        for p in [path, *path.rglob("*")]:
            os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~mask)
    else:
        os.chmod(path, 0o666 & ~mask)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` for a writer to fill (a file or a folder); on success it gets the
    umask's modes and replaces `path` in one rename, on an error it is removed and `path` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    _remove(tmp)
    try:
        yield tmp
        follow_umask(tmp)
        if tmp.is_dir() and path.is_dir():  # a folder cannot replace a non-empty folder: move the old one aside
            old = path.with_name(f".{path.name}.{os.getpid()}.old")
            _remove(old)
            os.replace(path, old)
            os.replace(tmp, path)
            _remove(old)
        else:
            os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def write_text_atomic(path: str | Path, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def dump_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n"


def write_json_atomic(path: str | Path, obj: Any) -> None:
    write_text_atomic(path, dump_json(obj))


class FileFormatError(ValueError):
    """A file is not what it should be (truncated JSON, not UTF-8); the message names the file and line."""


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; a truncated or invalid one raises FileFormatError naming path:line:column."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise FileFormatError(f"{path}:{e.lineno}:{e.colno}: not valid JSON ({e.msg})") from None
    except UnicodeDecodeError as e:
        raise FileFormatError(f"{path}: not UTF-8 (byte {e.start})") from None


def write_jsonl_atomic(path: str | Path, rows: Iterable[dict]) -> None:
    write_text_atomic(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


def read_jsonl(path: str | Path) -> list[dict]:
    out = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, start=1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise FileFormatError(f"{path}:{i}:{e.colno}: not valid JSON ({e.msg})") from None
    return out
