"""Phase 0 acceptance: the environment report (spec/06_MODELS_AND_HOOKS.md)."""

from __future__ import annotations

from acceptance.checks import CheckContext, check
from canon import CANON
from critspec.store.writers import read_json
from critspec.validate.run import load_config

PER_ROLE = (
    CANON.ENUM.CHECK_ID.MODEL_LOAD,
    CANON.ENUM.CHECK_ID.TOKENIZER_LOAD,
    CANON.ENUM.CHECK_ID.HOOK_U_MATCH,
    CANON.ENUM.CHECK_ID.GAIN_IDENTITY,
    CANON.ENUM.CHECK_ID.GAIN_CHANGES,
    CANON.ENUM.CHECK_ID.SLICE_HASH_STABLE,
)


@check("env_all_checks_passed")
def env_all_checks_passed(ctx: CheckContext) -> None:
    report = read_json(ctx.run_a / CANON.OUTPUT.SUBDIR.RESULTS / CANON.OUTPUT.ARTIFACT.ENV_REPORT)
    failed = [c for c in report["checks"] if not c["passed"]]
    assert report["all_passed"] and not failed, f"{ctx.run_a}: failed checks {failed}"
    seen = {(c["check_id"], c["model_role"]) for c in report["checks"]}
    for role in [m["role"] for m in load_config(ctx.run_a)["models"]]:
        for check_id in PER_ROLE:
            assert (check_id, role) in seen, f"{ctx.run_a}: no {check_id} check for {role}"
    hook = [c for c in report["checks"] if c["check_id"] == CANON.ENUM.CHECK_ID.HOOK_U_MATCH]
    assert all(c["value"] <= CANON.CONST.U_HOOK_MATCH_TOL_ABS for c in hook), hook
