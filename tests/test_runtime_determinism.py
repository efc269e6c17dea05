"""configure_determinism (spec/07_RUNS_RECORDS_LOGGING.md): the flags it sets are the ones
torch.use_deterministic_algorithms(True) sets, without loading the torch.compile stack.
Each case runs in a fresh interpreter, so no other test's imports or flags leak in."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
import torch
{setup}
out = {{
    "enabled": torch.are_deterministic_algorithms_enabled(),
    "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
    # Deterministic mode fills fresh memory with NaN (torch.utils.deterministic):
    # an effect eager kernels show, read here without asking the flag.
    "empty_is_nan": bool(torch.empty(64).isnan().all()),
    "inductor_loaded": "torch._inductor.config" in sys.modules,
    "inductor_deterministic": (
        sys.modules["torch._inductor.config"].deterministic
        if "torch._inductor.config" in sys.modules else None
    ),
}}
print(json.dumps(out))
"""

OURS = "from critspec.runtime import configure_determinism; configure_determinism(1)"
PUBLIC = "torch.use_deterministic_algorithms(True); torch.set_num_threads(1)"


def probe(setup: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(setup=setup)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout)


def test_same_eager_flags_as_the_public_call_without_the_compile_stack() -> None:
    ours, public = probe(OURS), probe(PUBLIC)
    for key in ("enabled", "warn_only", "empty_is_nan"):
        assert ours[key] == public[key], (key, ours, public)
    assert ours["enabled"] and ours["empty_is_nan"] and not ours["warn_only"]
    # The public call loads torch._inductor.config; ours does not.
    assert public["inductor_loaded"] and public["inductor_deterministic"] is True
    assert not ours["inductor_loaded"]


def test_an_already_loaded_inductor_config_is_set_too() -> None:
    out = probe("import torch._inductor.config\n" + OURS)
    assert out["inductor_loaded"] and out["inductor_deterministic"] is True
    assert out["enabled"]


def test_off_by_default_so_the_probe_can_tell() -> None:
    out = probe("")
    assert not out["enabled"] and not out["empty_is_nan"]
