"""The pass engine: one forward pass, many consumers (spec/06_MODELS_AND_HOOKS.md §7).

Public API (stable; Phase 6 builds on it):
- `Intervention`, `Condition`, `COND_KEY_COLUMNS`, `default_intervention` (intervention.py)
- `PassTask`, `ModelRef`, `PassResult`, `run_pass` (task.py)
- `Consumer`, `Accumulator`, `PassShape` and the consumers in `critspec.passes.consumers`
- `Executor`, `open_executor`, `merge_results` (executors.py)
"""
