"""Progress of a long pass on stderr (spec/07_RUNS_RECORDS_LOGGING.md, "Logging").

On a terminal each pass over the gain grid is a tqdm bar; when stderr is not a terminal
(`make run > log`, CI) it is one line per gain with the elapsed time, so a log shows the
pass advancing. `-q` silences both, `-v` prints the lines on a terminal too. Progress is
reporting only: it never enters a result, a log file of a run or a run id.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm

QUIET = -1
NORMAL = 0
VERBOSE = 1
_level = NORMAL


def set_verbosity(level: int) -> None:
    """QUIET, NORMAL or VERBOSE for the rest of the process (the CLI's -q / -v)."""
    global _level
    _level = max(QUIET, min(VERBOSE, level))


def verbosity() -> int:
    return _level


class GainProgress:
    """One tick per finished gain: a bar on a terminal, else a line with the elapsed time."""

    def __init__(self, total: int, desc: str, stream: TextIO | None = None) -> None:
        self.total, self.desc = total, desc
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.start = time.monotonic()
        is_tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.lines = _level == VERBOSE or (_level == NORMAL and not is_tty)
        self.bar = (
            tqdm(total=total, desc=desc, unit="gain", leave=False, file=self.stream)
            if _level == NORMAL and is_tty
            else None
        )

    def tick(self, info: dict) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update()
        if self.lines:
            gain = f" (g = {info['g']:g})" if "g" in info else ""
            elapsed = time.monotonic() - self.start
            print(
                f"{self.desc}: gain {self.done}/{self.total}{gain} done, {elapsed:.1f} s elapsed",
                file=self.stream,
                flush=True,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
