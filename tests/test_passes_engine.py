"""The pass engine against direct computations (spec/06_MODELS_AND_HOOKS.md §7): NLL
against torch.nn.functional.cross_entropy, option log-likelihoods against a forward of
each truncated window, fingerprints that differ refused, results ordered by key."""

from __future__ import annotations

import pickle
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from canon import CANON
from critspec.config.resolve import load_config
from critspec.errors import CheckFailed, DependencyError
from critspec.models.device import resolve_dtype
from critspec.models.from_config import load_entry
from critspec.passes.consumers import NllConsumer, OptionLogLikConsumer, TopKConsumer
from critspec.passes.consumers.nll import NLL
from critspec.passes.executors import InProcessExecutor, open_executor
from critspec.passes.intervention import Intervention, default_intervention
from critspec.passes.task import (
    FINGERPRINT_FIELDS,
    ModelRef,
    PassResult,
    PassTask,
    merge_results,
    run_pass,
)
from critspec.paths import project_root

ROLE = CANON.ENUM.MODEL_ROLE.INSTRUCT
CPU = CANON.ENUM.DEVICE.CPU
N, T, BATCH = 5, 12, 2


@pytest.fixture(scope="module")
def setup():
    config = load_config(project_root() / CANON.PATH.CONFIG_PIPELINE)
    entry = config.model_entry(ROLE)
    device = torch.device(CPU)
    loaded = load_entry(entry, device, resolve_dtype(CANON.ENUM.DTYPE.FP32, device))
    gen = torch.Generator().manual_seed(7)
    vocab = loaded.model.config.vocab_size
    ids = torch.randint(0, vocab, (N, T), generator=gen).numpy()
    return entry, loaded, ids


def _task(setup, consumers, intervention=None, **kw) -> PassTask:
    entry, loaded, ids = setup
    intervention = intervention or default_intervention(CANON.CONST.GAIN_BASELINE)
    fields = dict(
        key=intervention.key(),
        model=ModelRef(entry=entry, revision=loaded.info.revision),
        device=CPU,
        dtype=CANON.ENUM.DTYPE.FP32,
        torch_threads=1,
        batch_size=BATCH,
        input_ids=ids,
        intervention=intervention,
        consumers=tuple(consumers),
    )
    fields.update(kw)
    return PassTask(**fields)


def test_nll_matches_cross_entropy(setup):
    _, loaded, ids = setup
    intervention = Intervention(1.17, CANON.ENUM.SITE.ATTN_OUT, CANON.ENUM.LAYER_BAND.LATE)
    task = _task(setup, [NllConsumer()], intervention)
    assert pickle.loads(pickle.dumps(task)).key == task.key  # a task travels
    got = run_pass(task).arrays[0][NLL]
    assert got.shape == (N, T - 1) and got.dtype == np.float32
    from critspec.models.hooks import intervene

    x = torch.from_numpy(ids)
    with torch.no_grad(), intervene(loaded.sites, intervention):
        logits = loaded.model(input_ids=x).logits  # the whole slice at once, not in batches
    want = F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="none"
    ).reshape(N, T - 1)
    np.testing.assert_allclose(got, want.numpy(), rtol=3e-5, atol=3e-5)
    assert (got > 0).all()


def test_option_loglik_matches_truncated_windows(setup):
    _, loaded, ids = setup
    spans = np.array([[0, 3, 6], [1, 1, 2], [4, 8, 12], [3, 5, 7]], dtype=np.int64)
    out = run_pass(_task(setup, [OptionLogLikConsumer(spans)])).arrays[0]
    for (n, s, e), got in zip(spans, out["loglik"], strict=True):
        # Independent route: a forward of the window cut after the option, log p summed
        # token by token in a plain loop.
        window = torch.from_numpy(ids[n : n + 1, :e])
        with torch.no_grad():
            logp = torch.log_softmax(loaded.model(input_ids=window).logits[0].double(), -1)
        want = sum(float(logp[t - 1, ids[n, t]]) for t in range(s, e))
        assert got == pytest.approx(want, rel=3e-5, abs=3e-5)
    assert out["n_tokens"].tolist() == [3, 1, 4, 2]


def test_option_span_without_context_refused(setup):
    from critspec.errors import ConfigError

    with pytest.raises(ConfigError, match="context token"):
        run_pass(_task(setup, [OptionLogLikConsumer(np.array([[0, 0, 2]]))]))


def test_consumers_share_one_pass(setup):
    both = run_pass(_task(setup, [NllConsumer(), NllConsumer()])).arrays
    alone = run_pass(_task(setup, [NllConsumer()])).arrays[0]
    assert np.array_equal(both[0][NLL], alone[NLL])
    assert np.array_equal(both[1][NLL], alone[NLL])


def test_fingerprint_names_the_fields_and_the_executor_sorts_by_key(setup):
    tasks = [_task(setup, [NllConsumer()], default_intervention(g)) for g in (1.07, 0.94, 1.0)]
    with open_executor(CANON.ENUM.EXECUTOR.IN_PROCESS, runs_dir=project_root()) as ex:
        results = ex.map(tasks)
    assert [r.key for r in results] == [(0.94,), (1.0,), (1.07,)]
    fp = results[0].fingerprint
    assert tuple(fp) == FINGERPRINT_FIELDS
    assert fp["torch_threads"] == 1 and fp["batch_size"] == BATCH
    assert fp["dtype"] == CANON.ENUM.DTYPE.FP32 and fp["torch"] == torch.__version__


@pytest.mark.parametrize("field", FINGERPRINT_FIELDS)
def test_fingerprint_mismatch_refused(field):
    fp = {"torch": "2", "transformers": "5", "device_name": "cpu:x", "dtype": CANON.ENUM.DTYPE.FP32}
    fp |= {"torch_threads": 2, "batch_size": 8}
    other = dict(fp, **{field: "something else"})
    results = [PassResult((1.0,), ({},), fp), PassResult((0.94,), ({},), other)]
    with pytest.raises(CheckFailed, match=f"fingerprint field '{field}'") as exc:
        merge_results(results)
    assert exc.value.exit_code == CANON.CLI.EXIT.CONTRACT


def test_duplicate_keys_refused():
    with pytest.raises(CheckFailed, match="repeat a key"):
        merge_results([PassResult((1.0,), ()), PassResult((1.0,), ())])


def test_other_weights_refused(setup):
    task = _task(setup, [NllConsumer()])
    wrong = replace(task, model=replace(task.model, revision="0" * 64))
    with pytest.raises(DependencyError, match="weights differ"):
        InProcessExecutor().map([wrong])


def test_ray_address_without_ray_refused():
    from critspec.errors import ConfigError

    with (
        pytest.raises(ConfigError, match="--ray-address"),
        open_executor(CANON.ENUM.EXECUTOR.IN_PROCESS, runs_dir=project_root(), address="x:1"),
    ):
        pass


def test_row_lengths_cut_batches_without_changing_the_read_log_probs(setup):
    """Rows sorted by need and cut per batch (Phase 6 multiple choice) read the same log
    probabilities as the whole padded rows: a causal model ignores what follows."""
    from critspec.mc.consumer import LOGP, TokenReadsConsumer
    from runners.phase6_mc_eval import by_length

    _, _, ids = setup
    rng = np.random.default_rng(3)
    last = rng.integers(1, T - 1, N)  # the last position each row is read at
    reads = np.array([[n, int(p), int(ids[n, p + 1])] for n in range(N) for p in (0, last[n])])
    whole = run_pass(_task(setup, [TokenReadsConsumer(reads)])).arrays[0][LOGP]
    sorted_ids, moved, lengths = by_length(ids, reads)
    assert (np.diff(lengths) >= 0).all() and lengths.max() == last.max() + 1
    assert np.array_equal(sorted_ids[moved[:, 0]], ids[reads[:, 0]])  # rows moved with reads
    task = _task(setup, [TokenReadsConsumer(moved)], input_ids=sorted_ids, row_lengths=lengths)
    cut = run_pass(task).arrays[0][LOGP]
    tol = CANON.CONST.MC_LOGLIK_MATCH_TOL_ABS  # the agreement Phase 6 asks of option scores
    np.testing.assert_allclose(cut, whole, rtol=tol, atol=tol)
    u_consumer = TopKConsumer(np.zeros(1), np.ones(1), 0.0)  # refused before it starts
    with pytest.raises(CheckFailed, match="needs them whole"):
        run_pass(_task(setup, [u_consumer], row_lengths=np.full(N, T)))
