"""Pydantic models of the config files (spec/00_OVERVIEW.md): unknown keys and wrong types rejected.

Values arrive already resolved (CANON references replaced); each file is
validated on its own so that an error names the file and the key path. Every number
that sizes memory or time has an upper bound in CANON.CONST.CONFIG_LIMIT, and the
windows and resamples a CI needs a lower one (spec/07_RUNS_RECORDS_LOGGING.md §1): a
config outside them is refused at load, before anything is allocated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from canon import CANON
from critspec.config.limits import at_least, at_most
from critspec.data.sources import DatasetEntry

ModelSource = Literal[
    CANON.ENUM.MODEL_SOURCE.EMBEDDED,
    CANON.ENUM.MODEL_SOURCE.HUB,
    CANON.ENUM.MODEL_SOURCE.LOCAL_DIR,
    CANON.ENUM.MODEL_SOURCE.GGUF_PACKAGE,
]
ModelRole = Literal[CANON.ENUM.MODEL_ROLE.INSTRUCT, CANON.ENUM.MODEL_ROLE.BASE]
Device = Literal[CANON.ENUM.DEVICE.AUTO, CANON.ENUM.DEVICE.CPU, CANON.ENUM.DEVICE.CUDA]
Dtype = Literal[
    CANON.ENUM.DTYPE.AUTO, CANON.ENUM.DTYPE.FP32, CANON.ENUM.DTYPE.BF16, CANON.ENUM.DTYPE.FP16
]
Executor = Literal[CANON.ENUM.EXECUTOR.IN_PROCESS, CANON.ENUM.EXECUTOR.RAY]
SpikeDef = Literal[CANON.ENUM.SPIKE_DEF_ID.ONE_SIDED_POS, CANON.ENUM.SPIKE_DEF_ID.TWO_SIDED_ABS]
DatasetRole = Literal[
    CANON.ENUM.DATASET_ROLE.A, CANON.ENUM.DATASET_ROLE.B, CANON.ENUM.DATASET_ROLE.MC
]
Profile = Literal[
    CANON.ENUM.PROFILE.EMBEDDED_DEFAULT,
    CANON.ENUM.PROFILE.PAPER_SCALE,
    CANON.ENUM.PROFILE.SMOLLM2,
    CANON.ENUM.PROFILE.CUSTOM,
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelEntry(_Strict):
    """One model: embedded (materialized from its definition), a hub id, a local directory,
    or a GGUF file inside an installed wheel (converted into the cache)."""

    SOURCE: ModelSource
    ARCH: str | None = None
    N_LAYERS: int | None = Field(default=None, ge=1)
    HIDDEN: int | None = Field(default=None, ge=1)
    D_FF: int | None = Field(default=None, ge=1)
    N_HEADS: int | None = Field(default=None, ge=1)
    MAX_POSITIONS: int | None = Field(default=None, ge=1)
    SEED: int | None = None
    MATERIALIZER: int | None = None
    HF_ID: str | None = None
    REVISION: str | None = None
    PATH: Path | None = None
    ALLOW_HUB: bool = False
    DISTRIBUTION: str | None = None
    VERSION: str | None = None
    FILE: str | None = None
    SHA256: str | None = Field(default=None, pattern="^[0-9a-f]{64}$")
    CONVERTER: int | None = None

    @model_validator(mode="after")
    def _complete(self) -> ModelEntry:
        need = {
            CANON.ENUM.MODEL_SOURCE.EMBEDDED: (
                "N_LAYERS",
                "HIDDEN",
                "D_FF",
                "N_HEADS",
                "MAX_POSITIONS",
                "SEED",
                "MATERIALIZER",
            ),
            CANON.ENUM.MODEL_SOURCE.HUB: ("HF_ID",),
            CANON.ENUM.MODEL_SOURCE.LOCAL_DIR: ("PATH",),
            CANON.ENUM.MODEL_SOURCE.GGUF_PACKAGE: (
                "DISTRIBUTION",
                "VERSION",
                "FILE",
                "SHA256",
                "CONVERTER",
            ),
        }[self.SOURCE]
        missing = [k for k in need if getattr(self, k) is None]
        if missing:
            raise ValueError(f"SOURCE {self.SOURCE} needs {', '.join(missing)}")
        if self.SOURCE == CANON.ENUM.MODEL_SOURCE.EMBEDDED:
            self._embedded_size()
        return self

    def _embedded_size(self) -> None:
        """An embedded model is materialized in memory: its size is bounded up front."""
        layers, hidden, d_ff = int(self.N_LAYERS or 0), int(self.HIDDEN or 0), int(self.D_FF or 0)
        at_most(layers, "EMBEDDED_N_LAYERS_MAX", "N_LAYERS", "it sizes the model")
        for key in ("HIDDEN", "D_FF", "N_HEADS", "MAX_POSITIONS"):
            at_most(int(getattr(self, key) or 0), "EMBEDDED_WIDTH_MAX", key, "it sizes the model")
        # Attention (4 H^2) and gated MLP (3 H D) weights per layer.
        params = layers * (4 * hidden * hidden + 3 * hidden * d_ff)
        at_most(
            params,
            "EMBEDDED_PARAMS_MAX",
            "N_LAYERS x (4 HIDDEN^2 + 3 HIDDEN D_FF)",
            "the model would not fit in memory",
        )


class ModelBinding(_Strict):
    role: ModelRole
    entry: ModelEntry


class DatasetBinding(_Strict):
    role: DatasetRole
    entry: DatasetEntry


class ModelsFile(_Strict):
    models: tuple[ModelBinding, ...]

    @model_validator(mode="after")
    def _roles_once(self) -> ModelsFile:
        roles = [m.role for m in self.models]
        if len(set(roles)) != len(roles):
            raise ValueError("each model role may appear once")
        return self


class DatasetsFile(_Strict):
    datasets: tuple[DatasetBinding, ...]


class Runtime(_Strict):
    device: Device
    dtype: Dtype
    torch_threads: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    # Who runs the pass tasks (spec/06_MODELS_AND_HOOKS.md §7); `--executor` overrides it.
    executor: Executor = CANON.ENUM.EXECUTOR.IN_PROCESS

    @model_validator(mode="after")
    def _bounded(self) -> Runtime:
        at_most(self.torch_threads, "TORCH_THREADS_MAX", "torch_threads", "threads cost memory")
        at_most(self.batch_size, "BATCH_SIZE_MAX", "batch_size", "it sizes the activations held")
        return self


class Calibration(_Strict):
    dataset_role: DatasetRole
    n_windows: int = Field(ge=1)
    seq_len_tokens: int = Field(ge=2)
    tau0: float
    eps: float = Field(gt=0)
    gain_baseline: float = Field(gt=0)
    target_rates: tuple[float, ...] = Field(min_length=1)
    spike_def_ids: tuple[SpikeDef, ...] = Field(min_length=1)
    min_cal_samples: int = Field(ge=1)

    @model_validator(mode="after")
    def _rates(self) -> Calibration:
        if any(not 0 < r < 1 for r in self.target_rates):
            raise ValueError("target_rates must lie in (0, 1)")
        if len(set(self.target_rates)) != len(self.target_rates):
            raise ValueError("target_rates must be distinct")
        if len(set(self.spike_def_ids)) != len(self.spike_def_ids):
            raise ValueError("spike_def_ids must be distinct")
        at_most(self.n_windows, "N_WINDOWS_MAX", "n_windows", "it sizes the slice")
        at_most(self.seq_len_tokens, "SEQ_LEN_TOKENS_MAX", "seq_len_tokens", "it sizes the slice")
        at_most(
            self.n_windows * self.seq_len_tokens,
            "SLICE_TOKENS_MAX",
            "n_windows x seq_len_tokens",
            "it sizes the slice's activations",
        )
        at_most(len(self.target_rates), "TARGET_RATES_MAX", "len(target_rates)", "each is a pass")
        return self


class GainGrid(_Strict):
    gains: tuple[float, ...] = Field(min_length=1)
    rate_match_tol_abs: float = Field(gt=0)
    null_id: Literal[CANON.ENUM.NULL_ID.TIME_PERM]

    @model_validator(mode="after")
    def _gains(self) -> GainGrid:
        if any(g <= 0 for g in self.gains) or len(set(self.gains)) != len(self.gains):
            raise ValueError("gains must be positive and distinct")
        at_most(len(self.gains), "GAINS_MAX", "len(gains)", "each gain is a forward pass")
        return self


class SelectGstar(_Strict):
    method: str
    selection_inputs: tuple[str, ...] = Field(min_length=1)
    tie_tol_abs: float = Field(ge=0)


class Phase0(_Strict):
    u_hook_match_tol_abs: float = Field(gt=0)
    check_windows: int = Field(ge=1)
    probe_gain: float = Field(gt=0)

    @model_validator(mode="after")
    def _bounded(self) -> Phase0:
        at_most(self.check_windows, "CHECK_WINDOWS_MAX", "check_windows", "each is a pass")
        return self


NullId = Literal[
    CANON.ENUM.NULL_ID.TIME_PERM,
    CANON.ENUM.NULL_ID.CIRCULAR_SHIFT,
    CANON.ENUM.NULL_ID.TOKEN_SHUFFLE,
]
Adjacency = Literal[CANON.ENUM.ADJACENCY.ADJ_4N, CANON.ENUM.ADJACENCY.ADJ_8N]
TailAlternative = Literal[
    CANON.ENUM.TAIL_ALTERNATIVE.LOGNORMAL, CANON.ENUM.TAIL_ALTERNATIVE.EXPONENTIAL
]


def _distinct(values: tuple, what: str) -> None:
    if len(set(values)) != len(values):
        raise ValueError(f"{what} must be distinct")


def _every(values: tuple, group: type, what: str) -> None:
    """Phase 5 writes a contracted column or row for every member of the CANON group."""
    _distinct(values, what)
    members = {v for k, v in vars(group).items() if not k.startswith("_")}
    if set(values) != members:
        raise ValueError(
            f"{what} must list every one of {sorted(members)} (Phase 5's tables have a "
            f"column or row for each); got {list(values)}"
        )


class Rasters(_Strict):
    """Phase 3: the held-out raster slice of Dataset A (spec/00_OVERVIEW.md)."""

    dataset_role: DatasetRole
    n_windows: int = Field(ge=1)

    @model_validator(mode="after")
    def _bounded(self) -> Rasters:
        at_least(
            self.n_windows,
            "RASTER_WINDOWS_MIN",
            "n_windows",
            "the bootstrap resamples windows, so its CIs need more than one",
        )
        at_most(self.n_windows, "N_WINDOWS_MAX", "n_windows", "it sizes the rasters")
        return self


class Nulls(_Strict):
    """Phase 4: which nulls are built from the rasters (spec/00_OVERVIEW.md)."""

    null_ids: tuple[NullId, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _ids(self) -> Nulls:
        _every(self.null_ids, CANON.ENUM.NULL_ID, "null_ids")
        return self


class Analysis(_Strict):
    """Phase 5: bootstrap, avalanche and fit settings (spec/00_OVERVIEW.md)."""

    bootstrap_reps: int = Field(ge=1)
    ci_percentiles: tuple[float, float]
    ci_width_max: float = Field(gt=0)
    chi_eps: float = Field(gt=0)
    cc_max_components_per_seq: int = Field(ge=1)
    crackling_min_points: int = Field(ge=2)
    crackling_d_range_min: int = Field(ge=1)
    crackling_d_range_max: int = Field(ge=1)
    tail_fit_min_tail_samples: int = Field(ge=1)
    adjacencies: tuple[Adjacency, ...] = Field(min_length=1)
    tail_alternatives: tuple[TailAlternative, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _ranges(self) -> Analysis:
        lo, hi = self.ci_percentiles
        if not 0 <= lo < hi <= 100:
            raise ValueError("ci_percentiles must be (low, high) with 0 <= low < high <= 100")
        if self.crackling_d_range_min > self.crackling_d_range_max:
            raise ValueError("crackling_d_range_min must not exceed crackling_d_range_max")
        _every(self.adjacencies, CANON.ENUM.ADJACENCY, "adjacencies")
        _every(self.tail_alternatives, CANON.ENUM.TAIL_ALTERNATIVE, "tail_alternatives")
        why = "a percentile CI needs replicates beyond its bounds"
        at_least(self.bootstrap_reps, "BOOTSTRAP_REPS_MIN", "bootstrap_reps", why)
        at_most(self.bootstrap_reps, "BOOTSTRAP_REPS_MAX", "bootstrap_reps", "it sizes memory")
        tail = min(lo, 100 - hi)
        if tail > 0 and self.bootstrap_reps * tail < 100:
            raise ValueError(
                f"bootstrap_reps {self.bootstrap_reps} leaves no replicate beyond the "
                f"{tail:g}% tail of ci_percentiles {list(self.ci_percentiles)}; {why}"
            )
        at_most(
            self.cc_max_components_per_seq,
            "CC_MAX_COMPONENTS_MAX",
            "cc_max_components_per_seq",
            "it sizes the avalanche table",
        )
        return self


McRegime = Literal[CANON.ENUM.MC_REGIME.LABEL, CANON.ENUM.MC_REGIME.TEXT]
AblationId = Literal[
    CANON.ENUM.ABLATION_ID.MLP_ALL,
    CANON.ENUM.ABLATION_ID.ATTN_ALL,
    CANON.ENUM.ABLATION_ID.MLP_EARLY,
    CANON.ENUM.ABLATION_ID.MLP_MIDDLE,
    CANON.ENUM.ABLATION_ID.MLP_LATE,
]


class Generalization(_Strict):
    """Phase 6 on Dataset B (spec/14_GENERALIZATION_MC_ABLATIONS.md §2)."""

    dataset_role: DatasetRole
    n_windows: int = Field(ge=1)


class MultipleChoice(_Strict):
    """Phase 6 multiple choice (spec/14_GENERALIZATION_MC_ABLATIONS.md §3)."""

    dataset_role: DatasetRole
    prompt_template_id: Literal[CANON.ENUM.MC_PROMPT_TEMPLATE_ID.ARC_LABEL]
    regimes: tuple[McRegime, ...] = Field(min_length=1)
    chat_template: bool

    @model_validator(mode="after")
    def _both(self) -> MultipleChoice:
        _every(self.regimes, CANON.ENUM.MC_REGIME, "multiple_choice.regimes")
        return self


class Ablations(_Strict):
    """Phase 6 ablations at gstar (spec/14_GENERALIZATION_MC_ABLATIONS.md §4)."""

    ablation_ids: tuple[AblationId, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _reference_first(self) -> Ablations:
        _distinct(self.ablation_ids, "ablations.ablation_ids")
        if self.ablation_ids[0] != CANON.ENUM.ABLATION_ID.MLP_ALL:
            raise ValueError(
                "ablations.ablation_ids must start with the MLP-global gain, the reference "
                "every other ablation is paired with"
            )
        return self


class PipelineFile(_Strict):
    profile: Profile
    models_file: Path
    datasets_file: Path
    runtime: Runtime
    calibration: Calibration
    gain_grid: GainGrid
    select_gstar: SelectGstar
    phase0: Phase0
    rasters: Rasters
    nulls: Nulls
    analysis: Analysis
    # Phase 6: optional so that a profile may stop at Phase 5; its commands refuse
    # (exit 2) when their section is absent.
    generalization: Generalization | None = None
    multiple_choice: MultipleChoice | None = None
    ablations: Ablations | None = None

    @model_validator(mode="after")
    def _held_out_from_the_same_cut(self) -> PipelineFile:
        if self.rasters.dataset_role != self.calibration.dataset_role:
            raise ValueError(
                "rasters.dataset_role must equal calibration.dataset_role: the raster slice "
                "is held out from the calibration slice's windows of the same dataset"
            )
        if self.calibration.gain_baseline not in self.gain_grid.gains:
            raise ValueError(
                f"gain_grid.gains {list(self.gain_grid.gains)} must include "
                f"calibration.gain_baseline ({self.calibration.gain_baseline:g}): gstar and "
                "every summary are read against the baseline gain"
            )
        at_most(
            self.rasters.n_windows * self.calibration.seq_len_tokens,
            "SLICE_TOKENS_MAX",
            "rasters.n_windows x calibration.seq_len_tokens",
            "it sizes the rasters",
        )
        at_most(
            self.rasters.n_windows * self.analysis.bootstrap_reps,
            "BOOTSTRAP_CELLS_MAX",
            "rasters.n_windows x analysis.bootstrap_reps",
            "it sizes the bootstrap's index matrix",
        )
        return self
