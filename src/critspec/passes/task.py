"""Pass tasks: a pure, picklable description of one forward pass, and the function that
runs it anywhere (spec/06_MODELS_AND_HOOKS.md §7, spec/07_RUNS_RECORDS_LOGGING.md §8).

`run_pass` loads the model (or reuses the one this process already holds for the same
entry, device and dtype), refuses weights other than the task's, sets determinism
itself (a worker process has no driver to do it), drives the pass and returns each
consumer's arrays plus a fingerprint of what could change the numbers.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from canon import CANON
from critspec.config.schema import ModelEntry
from critspec.errors import CheckFailed, DependencyError
from critspec.models.device import resolve_dtype
from critspec.passes.consumers.base import Consumer
from critspec.passes.engine import drive, model_forward
from critspec.passes.intervention import Intervention
from critspec.runtime import configure_determinism, package_versions

if TYPE_CHECKING:  # transformers is imported only where a model is loaded
    from critspec.models.loading import LoadedModel

FINGERPRINT_FIELDS = (
    "torch",
    "transformers",
    "device_name",
    "dtype",
    "torch_threads",
    "batch_size",
)


@dataclass(frozen=True)
class ModelRef:
    """A configured model entry and the revision (weights hash) it must load as."""

    entry: ModelEntry
    revision: str


@dataclass(frozen=True, eq=False)
class PassTask:
    """One forward pass over one slice under one intervention, for some consumers.

    key orders the results (the driver sorts by it); input_ids int64 [N, T]."""

    key: tuple
    model: ModelRef
    device: str
    dtype: str
    torch_threads: int
    batch_size: int
    input_ids: np.ndarray
    intervention: Intervention
    consumers: tuple[Consumer, ...]
    # Positions each row needs (logits consumers only; critspec.passes.engine.drive).
    row_lengths: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class PassResult:
    """The arrays of each consumer of a task (in the task's consumer order), the
    fingerprint of the process that ran it and the pass's wall time in seconds."""

    key: tuple
    arrays: tuple[dict[str, np.ndarray], ...]
    fingerprint: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


_MODELS: dict[tuple[str, str, str], LoadedModel] = {}


def _model_key(entry: ModelEntry, device: str, dtype: str) -> tuple[str, str, str]:
    return (entry.model_dump_json(), device, dtype)


@contextmanager
def reusing(entry: ModelEntry, loaded: LoadedModel) -> Iterator[None]:
    """While open, run_pass in this process reuses a model the caller already loaded
    (and forgets it on exit, so that a long process does not keep every model alive)."""
    key = _model_key(entry, torch.device(loaded.info.device).type, loaded.info.dtype)
    _MODELS[key] = loaded
    try:
        yield
    finally:
        _MODELS.pop(key, None)


def _model(task: PassTask) -> LoadedModel:
    key = _model_key(task.model.entry, task.device, task.dtype)
    loaded = _MODELS.get(key)
    if loaded is None:
        from critspec.models.from_config import load_entry

        device = torch.device(task.device)
        loaded = load_entry(task.model.entry, device, resolve_dtype(task.dtype, device))
        _MODELS[key] = loaded
    if loaded.info.revision != task.model.revision:
        raise DependencyError(
            f"model {loaded.info.model_id} loads as revision {loaded.info.revision[:12]}… on "
            f"{platform.node()}, the task needs {task.model.revision[:12]}…: the weights differ "
            "there; install the same weights on every worker"
        )
    return loaded


def device_name(device: torch.device) -> str:
    if device.type == CANON.ENUM.DEVICE.CUDA:
        return torch.cuda.get_device_name(device)
    return f"{device.type}:{platform.machine()}"


def fingerprint(task: PassTask, device: torch.device) -> dict[str, Any]:
    """What the numbers of a pass depend on besides the task itself."""
    versions = package_versions()
    return {
        "torch": versions["torch"],
        "transformers": versions["transformers"],
        "device_name": device_name(device),
        "dtype": task.dtype,
        "torch_threads": torch.get_num_threads(),
        "batch_size": task.batch_size,
    }


def run_pass(task: PassTask) -> PassResult:
    """Run one pass task in this process (spec/06_MODELS_AND_HOOKS.md §7)."""
    started = time.perf_counter()
    configure_determinism(task.torch_threads)
    loaded = _model(task)
    device = next(loaded.model.parameters()).device
    arrays = drive(
        model_forward(loaded),
        torch.from_numpy(np.ascontiguousarray(task.input_ids, dtype=np.int64)),
        n_layers=loaded.info.n_layers,
        d_ff=loaded.info.d_ff,
        batch_size=task.batch_size,
        intervention=task.intervention,
        consumers=task.consumers,
        device=device,
        row_lengths=task.row_lengths,
    )
    return PassResult(
        key=task.key,
        arrays=tuple(arrays),
        fingerprint=fingerprint(task, device),
        seconds=time.perf_counter() - started,
    )


def merge_results(results: Sequence[PassResult]) -> list[PassResult]:
    """The results sorted by key, after checking that every fingerprint is the same
    (exit 2 naming the first field that differs); duplicate keys are refused."""
    ordered = sorted(results, key=lambda r: r.key)
    keys = [r.key for r in ordered]
    if len(set(keys)) != len(keys):
        raise CheckFailed(f"pass results repeat a key ({keys}): each task runs once")
    if ordered:
        first = ordered[0]
        for r in ordered[1:]:
            for name in sorted(set(first.fingerprint) | set(r.fingerprint)):
                a, b = first.fingerprint.get(name), r.fingerprint.get(name)
                if a != b:
                    raise CheckFailed(
                        f"pass results disagree on fingerprint field {name!r}: {a!r} for task "
                        f"{first.key} vs {b!r} for task {r.key}; run every task on the same "
                        "software, device type, dtype and thread count"
                    )
    return ordered
