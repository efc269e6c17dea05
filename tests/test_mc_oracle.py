"""Oracle: multiple-choice option log-likelihoods against lm-evaluation-harness
(spec/14_GENERALIZATION_MC_ABLATIONS.md "Batched scoring"; extra `oracle`).

The same questions are scored in both regimes by critspec (one engine pass, shared
contexts) and by lm-evaluation-harness's HFLM wrapping the same loaded model object, with
the gain intervention active for both. Every option's log-likelihood must agree within
CANON.CONST.MC_LOGLIK_MATCH_TOL_ABS, and so must acc and acc_norm.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from canon import CANON
from critspec.data.mc import gold_index, synthetic_cloze_questions
from critspec.mc.consumer import score_in_process
from critspec.mc.encode import encode_options
from critspec.mc.prompts import option_requests
from critspec.mc.score import predictions
from critspec.models.embedded import EmbeddedModelDef, materialize
from critspec.models.hooks import intervene
from critspec.models.loading import load_model
from critspec.passes.intervention import default_intervention

lm_eval = pytest.importorskip(
    "lm_eval",
    reason="lm-evaluation-harness is not installed (pip install -e .[oracle] in its own "
    "environment); the oracle comparison cannot run",
)

CPU = torch.device(CANON.ENUM.DEVICE.CPU)
SMALL = EmbeddedModelDef(n_layers=2, hidden=32, d_ff=48, n_heads=4, max_positions=64, seed=5)
REQUEST = "loglikelihood"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory):
    model_dir = materialize(SMALL, Path(tmp_path_factory.mktemp("oracle_model")))
    return load_model(
        source=CANON.ENUM.MODEL_SOURCE.EMBEDDED,
        device=CPU,
        dtype=torch.float32,
        local_dir=model_dir,
    )


@pytest.mark.parametrize("g", [CANON.CONST.GAIN_BASELINE, CANON.CONST.PHASE0_PROBE_GAIN])
@pytest.mark.parametrize("regime", [CANON.ENUM.MC_REGIME.LABEL, CANON.ENUM.MC_REGIME.TEXT])
def test_option_logliks_match_lm_evaluation_harness(loaded, regime: str, g: float) -> None:
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    questions = synthetic_cloze_questions(8, 4, seed=3)
    tok = loaded.tokenizer
    requests = [option_requests(q, regime, tok) for q in questions]
    encoded = [encode_options(tok, r, SMALL.max_positions, str(i)) for i, r in enumerate(requests)]
    iv = default_intervention(g)
    ours = score_in_process(loaded, encoded, batch_size=4, intervention=iv)

    lm = HFLM(pretrained=loaded.model, tokenizer=tok, batch_size=4)
    flat = [(r.context, r.continuation) for reqs in requests for r in reqs]
    instances = [
        Instance(request_type=REQUEST, doc={}, arguments=pair, idx=i) for i, pair in enumerate(flat)
    ]
    with intervene(loaded.sites, iv):
        theirs = np.array([ll for ll, _ in lm.loglikelihood(instances)])
    mine = np.concatenate([s.loglik for s in ours])
    np.testing.assert_allclose(mine, theirs, rtol=0, atol=CANON.CONST.MC_LOGLIK_MATCH_TOL_ABS)
    k = 0
    for q, reqs, s in zip(questions, requests, ours, strict=True):
        chars = [r.n_chars for r in reqs]
        ref = theirs[k : k + len(reqs)]
        k += len(reqs)
        assert predictions(s, chars) == (
            int(np.argmax(ref)),
            int(np.argmax(ref / np.asarray(chars, dtype=np.float64))),
        ), gold_index(q)
