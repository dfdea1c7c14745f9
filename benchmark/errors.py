"""The exception a stage raises when its inputs cannot be used; `python -m benchmark` prints it as one line."""
from __future__ import annotations


class StageError(RuntimeError):
    """A stage cannot run on what it was given (missing or mismatched inputs); the message is one line
    naming the file, key or task to fix."""
