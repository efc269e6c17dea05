"""Executors of pass tasks: in-process (the default) and Ray
(spec/06_MODELS_AND_HOOKS.md §7 "Executors").

Every executor maps a list of PassTasks to PassResults and hands them back sorted by
key with their fingerprints checked equal (merge_results). Ray runs one Ray task per
PassTask (one GPU each on CUDA) on the cluster at `address`, or on a local cluster
started here, bound to CANON.CONST.RAY_LOCAL_HOST, whose temporary directory lies in the
runs directory's temp area and is reached through a short symlink (Unix socket paths
are limited to about 107 bytes, and Ray puts its sockets under that directory).
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from canon import CANON
from critspec.errors import CheckFailed, ConfigError, CritspecError
from critspec.passes.task import PassResult, PassTask, merge_results, run_pass

EXECUTOR = CANON.ENUM.EXECUTOR
OnResult = Callable[[PassResult], None]


def executor_names() -> list[str]:
    return [v for k, v in vars(EXECUTOR).items() if not k.startswith("_")]


class Executor(Protocol):
    """Runs pass tasks; map returns the results sorted by key, fingerprints checked."""

    name: str

    def map(
        self, tasks: Sequence[PassTask], on_result: OnResult | None = None
    ) -> list[PassResult]: ...


class InProcessExecutor:
    """Runs every task here, one after the other (reusing the model this process holds)."""

    name = EXECUTOR.IN_PROCESS

    def map(self, tasks: Sequence[PassTask], on_result: OnResult | None = None) -> list[PassResult]:
        results = []
        for task in tasks:
            result = run_pass(task)
            if on_result is not None:
                on_result(result)
            results.append(result)
        return merge_results(results)


def ray_available() -> bool:
    """Whether the Ray executor can be used here (the `distributed` extra is installed)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            f"executor {EXECUTOR.RAY!r} needs Ray: pip install -e '{CANON.CONST.DISTRIBUTED_EXTRA}'"
        ) from None
    return ray


def _worker_pythonpath() -> str:
    """This checkout's import roots first, so Ray workers run the driver's code."""
    import critspec
    from critspec.paths import project_root

    roots = [str(Path(critspec.__file__).resolve().parents[1]), str(project_root())]
    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return os.pathsep.join(dict.fromkeys(roots + rest))


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:300]


class RayExecutor:
    """One Ray task per PassTask; a dead worker or lost cluster is one line, exit 2."""

    name = EXECUTOR.RAY

    def __init__(self, ray: Any, cuda: bool) -> None:
        self._ray = ray
        self._cuda = cuda

    def map(self, tasks: Sequence[PassTask], on_result: OnResult | None = None) -> list[PassResult]:
        ray = self._ray
        results: list[PassResult] = []
        pending: dict[Any, PassTask] = {}
        for task in tasks:
            options: dict[str, Any] = {"max_retries": 0}
            if self._cuda:
                options.update(num_gpus=1, num_cpus=1)
            else:
                options.update(num_cpus=task.torch_threads)
            pending[_remote_run_pass(ray).options(**options).remote(task)] = task
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            task = pending.pop(done[0])
            try:
                result = ray.get(done[0])
            except ray.exceptions.RayTaskError as e:
                cause = getattr(e, "cause", None)
                if isinstance(cause, CritspecError):
                    raise cause from None
                raise CheckFailed(
                    f"Ray task {task.key} failed: {_one_line(cause or e)}; nothing was sealed"
                ) from None
            except ray.exceptions.RayError as e:
                raise CheckFailed(
                    f"Ray worker for task {task.key} died or the cluster was lost "
                    f"({type(e).__name__}: {_one_line(e)}); nothing was sealed"
                ) from None
            if on_result is not None:
                on_result(result)
            results.append(result)
        return merge_results(results)


_REMOTE: dict[int, Any] = {}


def _remote_run_pass(ray: Any) -> Any:
    key = id(ray)
    if key not in _REMOTE:
        _REMOTE[key] = ray.remote(run_pass)
    return _REMOTE[key]


def ray_tmp_paths(runs_dir: Path) -> tuple[Path, Path]:
    """(real temp dir in the runs dir's temp area, short symlink Ray is given)."""
    pid = os.getpid()
    real = runs_dir / f"{CANON.PATH.TMP_RUN_PREFIX}{CANON.CONST.RAY_TMP_DIRNAME}.{pid}"
    return real.resolve(), Path(f"{CANON.CONST.RAY_TMP_LINK_PREFIX}{pid}")


def _probe(address: str) -> None:
    """One TCP connection to host:port of the address, or CheckFailed (exit 2)."""
    hostport = address.split("://", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return  # e.g. "auto": Ray finds the cluster itself
    try:
        with socket.create_connection((host, int(port)), CANON.CONST.RAY_CONNECT_TIMEOUT_S):
            pass
    except OSError as e:
        raise CheckFailed(
            f"cannot reach the Ray cluster at {address} ({e.strerror or type(e).__name__}); "
            "check --ray-address and that the cluster runs"
        ) from None


@contextmanager
def _ray_cluster(ray: Any, runs_dir: Path, address: str | None) -> Iterator[None]:
    env = {"env_vars": {"PYTHONPATH": _worker_pythonpath()}}
    common: dict[str, Any] = {
        "runtime_env": env,
        "include_dashboard": False,
        "log_to_driver": False,
        "configure_logging": False,
    }
    if address is not None:
        _probe(address)
        try:
            ray.init(address=address, **common)
        except Exception as e:  # ConnectionError, TimeoutError, RuntimeError, ValueError
            raise CheckFailed(
                f"cannot reach the Ray cluster at {address} ({type(e).__name__}: "
                f"{_one_line(e)}); check --ray-address and that the cluster runs"
            ) from None
        try:
            yield
        finally:
            ray.shutdown()
        return
    real, link = ray_tmp_paths(runs_dir)
    real.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(real, target_is_directory=True)
    try:
        try:
            ray.init(
                num_cpus=os.cpu_count() or 1,
                _node_ip_address=CANON.CONST.RAY_LOCAL_HOST,
                _temp_dir=str(link),
                **common,
            )
        except Exception as e:
            raise CheckFailed(
                f"cannot start a local Ray cluster ({type(e).__name__}: {_one_line(e)}); "
                f"its temp files were under {real}"
            ) from None
        try:
            yield
        finally:
            ray.shutdown()
    finally:
        link.unlink(missing_ok=True)
        shutil.rmtree(real, ignore_errors=True)


def check_address(name: str, address: str | None) -> None:
    """--ray-address only with the Ray executor (a flag that cannot be honoured is refused)."""
    if address is not None and name != EXECUTOR.RAY:
        raise ConfigError(
            f"--ray-address is for executor {EXECUTOR.RAY!r}, not {name!r}: pass "
            f"--executor {EXECUTOR.RAY} or drop --ray-address"
        )


@contextmanager
def open_executor(
    name: str, *, runs_dir: Path, address: str | None = None, device: str = ""
) -> Iterator[Executor]:
    """The named CANON.ENUM.EXECUTOR, ready to map; a Ray cluster is shut down on exit."""
    check_address(name, address)
    if name == EXECUTOR.IN_PROCESS:
        yield InProcessExecutor()
        return
    if name != EXECUTOR.RAY:
        raise ConfigError(f"unknown executor {name!r}; use one of {executor_names()}")
    ray = _import_ray()
    if ray.is_initialized():
        yield RayExecutor(ray, device == CANON.ENUM.DEVICE.CUDA)
        return
    with _ray_cluster(ray, runs_dir, address):
        yield RayExecutor(ray, device == CANON.ENUM.DEVICE.CUDA)


@contextmanager
def session(name: str, *, runs_dir: Path, address: str | None = None) -> Iterator[None]:
    """One Ray cluster for a block of phases (run-all): every open_executor inside reuses
    it instead of starting its own; nothing to do for the in-process executor."""
    check_address(name, address)
    if name != EXECUTOR.RAY:
        yield
        return
    ray = _import_ray()
    if ray.is_initialized():
        yield
        return
    with _ray_cluster(ray, runs_dir, address):
        yield
