"""Interrupts (spec/07_RUNS_RECORDS_LOGGING.md §3): a stop signal at any moment ends a
command with one line and exit CANON.CLI.EXIT.INTERRUPTED, and says truthfully which runs
were sealed before it.

SIGINT (Ctrl-C), SIGTERM and SIGHUP all raise KeyboardInterrupt in the main thread, so a
run being built is kept as a failed attempt with its log. The seal (the rename of a
finished run into place) and the note that it happened are one step: stop signals are
held while it runs and delivered right after, so a run is never sealed without being
reported sealed, nor reported unsealed when it was.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_SEALED: list[Path] = []


def note_sealed(run_dir: Path) -> None:
    _SEALED.append(run_dir)


def sealed_count() -> int:
    return len(_SEALED)


def sealed_since(count: int) -> list[Path]:
    """The runs this process sealed after `sealed_count()` returned `count`."""
    return list(_SEALED[count:])


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _raise(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def set_handlers(handler: Callable[[int, Any], Any] | int) -> None:
    """`handler` for every stop signal (only the main thread may set handlers)."""
    if _in_main_thread():
        for sig in STOP_SIGNALS:
            signal.signal(sig, handler)


def raise_on_stop() -> None:
    """Every stop signal raises KeyboardInterrupt, as SIGINT does by default."""
    set_handlers(_raise)


def ignore_stop() -> None:
    """After a command's outcome is reported, nothing may change its exit code."""
    set_handlers(signal.SIG_IGN)


@contextmanager
def held() -> Iterator[None]:
    """Stop signals wait until the block is done, then act as they would have."""
    if not _in_main_thread():
        yield
        return
    pending: list[int] = []
    saved = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda signum, _frame: pending.append(signum))
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        if pending:
            _deliver(pending[0], saved[pending[0]])


def _deliver(signum: int, handler: Any) -> None:
    if callable(handler):
        handler(signum, None)
    elif handler in (signal.SIG_DFL, None):
        os.kill(os.getpid(), signum)
