"""The live table of `launch`: one row per grid point (pending / running / done / failed, stage, wall time, tokens/s)."""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

STATES = ("pending", "running", "done", "failed")


@dataclass
class Row:
    point: str
    state: str = "pending"
    stage: str = ""
    started: float | None = None
    ended: float | None = None
    tokens_per_s: float | None = None
    error: str = ""


def tokens_per_s(train_log: Path | None) -> float | None:
    """Tokens per second so far, from the last record of a train log (`tokens`, `time_s`)."""
    if train_log is None or not train_log.exists():
        return None
    try:
        with open(train_log, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 4096))
            lines = [line for line in f.read().decode(errors="replace").splitlines() if line.strip()]
        rec = json.loads(lines[-1]) if lines else None
    except (OSError, json.JSONDecodeError, IndexError):
        return None
    if not rec or not rec.get("time_s"):
        return None
    return rec["tokens"] / rec["time_s"]


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class Table:
    """Rows of points; `show` redraws in place on a terminal, else prints a line per change of state."""

    def __init__(self, points: list[str], out: TextIO = sys.stderr, live: bool | None = None):
        self.rows = {p: Row(p) for p in points}
        self.out = out
        self.live = out.isatty() if live is None else live
        self._drawn = 0
        self._seen: dict[str, tuple[str, str]] = {}
        self.t0 = time.time()

    def update(self, point: str, **fields) -> None:
        row = self.rows[point]
        for k, v in fields.items():
            setattr(row, k, v)

    def counts(self) -> dict[str, int]:
        return {s: sum(r.state == s for r in self.rows.values()) for s in STATES}

    def render(self, now: float | None = None) -> list[str]:
        now = time.time() if now is None else now
        width = max([5, *(len(p) for p in self.rows)])
        lines = [f"{'point':<{width}}  {'state':<7}  {'stage':<{width + 10}}  {'wall':>8}  {'tokens/s':>9}"]
        for r in self.rows.values():
            wall = None if r.started is None else (r.ended or now) - r.started
            tps = f"{r.tokens_per_s:,.0f}" if r.tokens_per_s else "-"
            lines.append(f"{r.point:<{width}}  {r.state:<7}  {r.stage:<{width + 10}}  {_clock(wall):>8}  {tps:>9}")
        c = self.counts()
        lines.append(f"{c['done']} done, {c['running']} running, {c['pending']} pending, {c['failed']} failed; "
                     f"{_clock(now - self.t0)} elapsed")
        return lines

    def show(self) -> None:
        if self.live:
            lines = self.render()
            if self._drawn:
                self.out.write(f"\x1b[{self._drawn}F\x1b[J")
            self.out.write("\n".join(lines) + "\n")
            self._drawn = len(lines)
        else:
            for r in self.rows.values():
                key = (r.state, r.stage)
                if self._seen.get(r.point) != key:
                    self._seen[r.point] = key
                    if r.state != "pending":
                        text = {"running": f"running {r.stage}", "failed": f"failed: {r.error}"}.get(r.state, r.state)
                        text = "submitted" if r.stage == "submitted" else text
                        self.out.write(f"[{_clock(time.time() - self.t0)}] {r.point}: {text}\n")
        self.out.flush()

    def summary(self) -> str:
        """The final table and one line naming every failed point and why."""
        lines = self.render()
        failed = [r for r in self.rows.values() if r.state == "failed"]
        lines += [f"failed: {r.point}: {r.error}" for r in failed]
        return "\n".join(lines)
