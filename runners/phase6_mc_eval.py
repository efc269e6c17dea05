"""Phase 6, multiple choice (spec/14_GENERALIZATION_MC_ABLATIONS.md §1, §3, §5), per model role:

1. consume Phase 1's calibration_stats (to check that the model is the one calibrated)
   and gstar (each re-hashed; exit 3 on a change);
2. load the ARC-format questions of the multiple-choice dataset role;
3. build every option's request in both regimes (label, text), tokenize the
   continuations, and plan the sequences (one per question when its options are single
   tokens after one shared context);
4. one pass task per evaluated gain (GAIN_BASELINE and every distinct gstar) over the
   sequences of both regimes, with the token-reads consumer;
5. acc and acc_norm per regime and gain with item-bootstrap CIs and the paired difference
   to the baseline over one resampling plan of questions; write mc_scores, mc_items and
   mc_summary (Parquet, CSV).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from canon import CANON
from critspec.analysis.paired import paired_columns, ratio_of_sums, resampling_plan
from critspec.data.mc import ID_FIELD, gold_index
from critspec.data.sources import load_mc_questions
from critspec.errors import ConfigError
from critspec.mc.consumer import LOGP, TokenReadsConsumer
from critspec.mc.encode import encode_options
from critspec.mc.prompts import option_requests
from critspec.mc.score import ScoringPlan, plan_scoring, predictions, question_scores
from critspec.orchestrate import PhaseContext
from critspec.passes.intervention import default_intervention
from critspec.passes.task import PassResult
from critspec.select.gstar import gstar_table
from critspec.store.writers import read_json, read_npz
from runners.common import (
    check_model_is_calibrated,
    gain_progress,
    load_role_model,
    map_passes,
    pass_task,
)
from runners.phase6_generalize_b import VS_BASELINE, evaluated_gains

EVENT = CANON.ENUM.LOG_EVENT
F = CANON.ENUM.ARC_FIELD


def run(ctx: PhaseContext) -> None:
    cfg = ctx.config.pipeline
    mc = cfg.multiple_choice
    if mc is None:
        raise ConfigError("the config has no `multiple_choice` section; Phase 6 needs it")
    calibration = ctx.upstream_of("calibration_stats")
    stats = read_npz(ctx.consume("calibration_stats"))
    gstar = gstar_table(read_json(ctx.consume("gstar")))
    loaded = load_role_model(ctx, ctx.model_role)
    ctx.run.model = loaded.info.to_record()
    check_model_is_calibrated(loaded, calibration, stats["mu"].shape)
    if mc.chat_template and ctx.model_role != CANON.ENUM.MODEL_ROLE.INSTRUCT:
        raise ConfigError(
            "multiple_choice.chat_template applies to the INSTRUCT role only; "
            f"turn it off to run {ctx.model_role}"
        )

    questions = load_mc_questions(ctx.config.dataset_entry(mc.dataset_role))
    ctx.run.log.event(
        EVENT.CHECK,
        {"check_id": CANON.ENUM.CHECK_ID.MC_ITEMS_VALID, "passed": True, "n": len(questions)},
    )
    max_len = int(loaded.model.config.max_position_embeddings)
    tok = loaded.tokenizer
    encoded = {
        regime: [
            encode_options(
                tok, option_requests(q, regime, tok, mc.chat_template), max_len, q[ID_FIELD]
            )
            for q in questions
        ]
        for regime in mc.regimes
    }
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
    plans = {regime: plan_scoring(encoded[regime], pad_id) for regime in mc.regimes}
    input_ids, reads, offsets = stack_plans([plans[r] for r in mc.regimes], pad_id)
    ctx.run.summary.update({"n_questions": len(questions), "n_sequences": int(input_ids.shape[0])})

    gains = evaluated_gains(cfg.calibration.gain_baseline, gstar)
    input_ids, reads, lengths = by_length(input_ids, reads)
    consumer = TokenReadsConsumer(reads)
    tasks = [
        pass_task(ctx, loaded, input_ids, default_intervention(g), (consumer,), lengths)
        for g in gains
    ]
    logp: dict[float, np.ndarray] = {}
    with gain_progress(ctx, len(tasks), "multiple choice") as progress:

        def reduce(result: PassResult) -> None:
            [g] = result.key
            logp[g] = result.arrays[0][LOGP]
            progress({"g": g, "seconds": result.seconds})

        map_passes(ctx, loaded, tasks, reduce)

    scores, items = [], []
    for i, regime in enumerate(mc.regimes):
        lo, hi = offsets[i], offsets[i + 1]
        for g in gains:
            per_q = question_scores(plans[regime], logp[g][lo:hi])
            s, it = regime_rows(regime, g, questions, encoded[regime], per_q)
            scores.append(s)
            items.append(it)
    score_frame = pd.concat(scores, ignore_index=True)
    item_frame = pd.concat(items, ignore_index=True)
    weights = resampling_plan(
        len(questions), cfg.analysis.bootstrap_reps, (mc.dataset_role,), CANON.CONST.BOOTSTRAP_SEED
    )
    summary = summary_table(item_frame, gstar, cfg.calibration.gain_baseline, weights, cfg.analysis)
    ctx.run.write_parquet("mc_scores", {c: score_frame[c].to_numpy() for c in score_frame})
    ctx.run.write_parquet("mc_items", {c: item_frame[c].to_numpy() for c in item_frame})
    ctx.run.write_table("mc_summary", "mc_summary_csv", summary)


def by_length(
    input_ids: np.ndarray, reads: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows sorted by the positions they need (the last read + 1; stable), the reads moved
    with their rows (their order, and so the order of the scores, unchanged), and those
    lengths: a batch is then cut to its own longest row (critspec.passes.engine.drive)."""
    need = np.ones(input_ids.shape[0], dtype=np.int64)
    np.maximum.at(need, reads[:, 0], reads[:, 1] + 1)
    order = np.argsort(need, kind="stable")
    where = np.empty_like(order)
    where[order] = np.arange(len(order))
    moved = reads.copy()
    moved[:, 0] = where[reads[:, 0]]
    return input_ids[order], moved, need[order]


def stack_plans(plans: list[ScoringPlan], pad_id: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """One [S, W] array of every plan's sequences and their reads (rows shifted); offsets
    [len(plans) + 1] delimit each plan's reads."""
    width = max(p.input_ids.shape[1] for p in plans)
    ids, reads, offsets, row = [], [], [0], 0
    for p in plans:
        padded = np.full((p.n_sequences, width), pad_id, dtype=np.int64)
        padded[:, : p.input_ids.shape[1]] = p.input_ids
        ids.append(padded)
        shifted = p.reads.copy()
        shifted[:, 0] += row
        reads.append(shifted)
        offsets.append(offsets[-1] + len(p.reads))
        row += p.n_sequences
    return np.concatenate(ids), np.concatenate(reads), offsets


def regime_rows(
    regime: str, g: float, questions: list[dict[str, Any]], encoded, per_q
) -> tuple[pd.DataFrame, pd.DataFrame]:
    score_rows, item_rows = [], []
    for q, (question, opts, sc) in enumerate(zip(questions, encoded, per_q, strict=True)):
        gold = gold_index(question)
        n_chars = [o.n_chars for o in opts]
        pred, pred_norm = predictions(sc, n_chars)
        for k, label in enumerate(question[F.CHOICES][F.LABEL]):
            score_rows.append(
                {
                    "mc_regime": regime,
                    "g": g,
                    "item_index": q,
                    "option_index": k,
                    "option_label": label,
                    "loglik": float(sc.loglik[k]),
                    "n_tokens": int(sc.n_tokens[k]),
                    "n_chars": int(n_chars[k]),
                    "is_gold": k == gold,
                }
            )
        item_rows.append(
            {
                "mc_regime": regime,
                "g": g,
                "item_index": q,
                "item_id": question[ID_FIELD],
                "n_options": len(opts),
                "gold": gold,
                "pred": pred,
                "pred_norm": pred_norm,
                "correct": pred == gold,
                "correct_norm": pred_norm == gold,
            }
        )
    return pd.DataFrame(score_rows), pd.DataFrame(item_rows)


def summary_table(items: pd.DataFrame, gstar, baseline: float, weights, an) -> pd.DataFrame:
    """One row per (regime, g): acc and acc_norm with CIs and paired differences."""
    gstars = set(gstar.values())
    meas: dict[tuple[str, float], dict] = {}
    for (regime, g), rows in items.groupby(["mc_regime", "g"], sort=True):
        rows = rows.sort_values("item_index")
        ones = np.ones(len(rows))
        meas[(regime, g)] = {
            name: (
                float(rows[col].mean()),
                ratio_of_sums(rows[col].to_numpy(dtype=np.float64), ones, weights),
            )
            for name, col in (("acc", "correct"), ("acc_norm", "correct_norm"))
        }
    out = []
    for (regime, g), m in meas.items():
        out.append(
            {
                "mc_regime": regime,
                "g": g,
                "is_baseline": g == baseline,
                "is_gstar": g in gstars,
                "n_items": int(weights.shape[1]),
                **paired_columns(m, meas[(regime, baseline)], VS_BASELINE, an.ci_percentiles),
            }
        )
    return pd.DataFrame(out)
