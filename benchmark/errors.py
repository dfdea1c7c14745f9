"""The exceptions a stage or command raises when its inputs cannot be used; `python -m benchmark` prints each as one line."""
from __future__ import annotations


class StageError(RuntimeError):
    """A stage cannot run on what it was given (missing or mismatched inputs); the message is one line
    naming the file, key or task to fix."""


class CommandError(Exception):
    """A refusal or failure reported as one line; `code` is the exit status (2 local check, 1 Hub/network)."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code
