"""logs/<phase>.jsonl: one JSON object per line (spec/07_RUNS_RECORDS_LOGGING.md)."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


def _finite(value: Any) -> Any:
    """JSON has no NaN/Infinity: non-finite floats are logged as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


class PhaseLog:
    def __init__(self, path: Path, run_id: str) -> None:
        self.path = path
        self.run_id = run_id

    def event(self, event_type: str, payload: dict[str, Any]) -> None:
        line = {
            "ts_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "run_id": self.run_id,
            "event_type": event_type,
            "payload": _finite(payload),
        }
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(line, sort_keys=True, default=str, allow_nan=False) + "\n")
