"""The sweep's configuration schema: plain dataclasses, the single source of keys, types and defaults.

Hydra registers these as structured configs (sweep/cli.py); the YAML files under conf/ only set
values. Nothing below the CLI sees a DictConfig: it gets these dataclasses. Validation of values
(beyond types) is in sweep/config/validate.py.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

# The values of every field that takes one of a fixed set of names. OmegaConf 2.3 refuses Literal annotations
# in structured configs ("Unexpected type annotation: Literal[...]"; support arrived after 2.3, omry/omegaconf
# PR 1272), so these fields are typed `str` and carry their Literal in the field's metadata (`choice`): one
# place for the names, read by sweep/config/validate.py (`allowed`) and checked against the code that
# implements them by tests/sweep/config/test_schema.py.
Positions = Literal["rope", "learned"]
Schedule = Literal["cosine", "linear", "wsd"]
CooldownShape = Literal["linear", "1-sqrt"]  # Hägele et al. 2024 sec. 3.2: 1-sqrt beats linear
Precision = Literal["auto", "fp32", "bf16"]  # auto: bf16 on a GPU or an AMX CPU, else fp32 (sweep/plan/device.py)
Compile = Literal["auto", "true", "false"]  # auto: GPU, and CPU runs long enough to pay for it
BranchPlan = Literal["batch", "largest", "smallest"]
RecipeSource = Literal["auto", "calibrate", "deepseek"]
CorpusFormat = Literal["auto", "text", "bin", "parquet"]  # auto: by extension (.bin, .parquet, else text)
BinDtype = Literal["uint16", "uint32"]  # token type of .bin files
ClusterKind = Literal["local", "ray"]  # local: start Ray in this process; ray: join cluster.address
Device = Literal["auto", "cpu", "cuda"]  # auto: cuda when the run holds a GPU
LoggerKind = Literal["wandb", "none"]
# auto: online only with an API key and a reachable server; disabled: no W&B at all (conf/logger/none.yaml)
LoggerMode = Literal["auto", "offline", "online", "disabled"]


def choice(default: str, names: Any) -> Any:
    """A str field whose value is one of the Literal `names` (kept in the field's metadata)."""
    assert default in typing.get_args(names), (default, names)
    return field(default=default, metadata={"choices": names})


def allowed(schema: type, name: str) -> tuple[str, ...]:
    """The names field `name` of dataclass `schema` may take (its `choice` Literal)."""
    found = {f.name: f for f in dataclasses.fields(schema)}[name]
    return typing.get_args(found.metadata["choices"])


def choice_fields(schema: type) -> list[str]:
    """The fields of `schema` that take one of a fixed set of names."""
    return [f.name for f in dataclasses.fields(schema) if "choices" in f.metadata]


@dataclass
class ModelSize:
    """One model size of the grid: an explicit shape, or a target non-embedding parameter count.

    Give n_layer and d_model (n_head optional: d_model / model.head_dim), or n_nonembed_params alone
    (a shape is then derived, see sweep.plan.grid.shape_for_params). The name is the tables' column of the
    same meaning (Kaplan's N, no embeddings); the tables' n_params and tokens_per_param count every
    parameter. The old key `n_params` is refused, naming this one (sweep/config/keys.py RENAMED).
    """

    name: str | None = None
    n_layer: int | None = None
    d_model: int | None = None
    n_head: int | None = None
    n_nonembed_params: float | None = None


@dataclass
class GridConfig:
    """Model sizes x token budgets x seeds.

    Budgets are absolute (`n_tokens`) and/or relative to each model's parameter count
    (`tokens_per_param`, D = ratio * N with N the total parameter count, as Chinchilla's 20:1).
    """

    models: list[ModelSize] = field(default_factory=list)
    n_tokens: list[float] = field(default_factory=list)
    tokens_per_param: list[float] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: [0])
    # WSD branches (sweep.plan.branches.branch_families, needs train.schedule=wsd): budgets of one size and seed
    # share one run, the trunk (their largest budget, stable at the peak learning rate until its own
    # cooldown); every smaller budget is a branch that starts from the trunk's checkpoint at the start of
    # its cooldown and decays to exactly its budget (Hägele et al. 2024). Each point costs its cooldown.
    branches: bool = False
    # Which budgets share a trunk and whose batch, peak learning rate and warm-up they take: batch (default:
    # a trunk per batch size the budgets derive, planned at its largest budget, so every branch trains at
    # its own budget's batch) | largest (one trunk per size, at the largest budget's plan: cheapest) |
    # smallest (one trunk, at the smallest budget's plan). bench/wsd_branches.py measures them.
    branch_plan: str = choice("batch", BranchPlan)


@dataclass
class RecipeConfig:
    """Where each run's batch and peak learning rate come from when train.batch_size / train.lr are null.

    source: auto (calibrate where any run of the grid lies outside the published laws' fitted compute range,
    else the published laws) | calibrate (always) | deepseek (the published laws, DeepSeek LLM). Calibrating
    (sweep/plan/calibration.py) trains, before the grid, every batch factor x lr factor around the published optimum
    at `sizes` of the grid's sizes (the smallest and every k-th after it, over about two thirds of them, moved
    down to smaller sizes where that would cost more than `max_share` of the grid) at their `budgets` smallest
    budgets, and fits the laws there; the grid then derives its runs' batch and lr from
    the fitted laws.
    """

    source: str = choice("auto", RecipeSource)
    sizes: int = 3
    budgets: int = 1
    # every batch of batch_factors x the published optimum (or x twice train.min_batch_size where that is larger,
    # never below the floor) with every lr of lr_factors x the published lr
    batch_factors: list[float] = field(default_factory=lambda: [0.5, 1.0, 2.0])
    lr_factors: list[float] = field(default_factory=lambda: [0.5, 1.0, 2.0])
    seeds: list[int] = field(default_factory=lambda: [0])
    # the most the calibration may cost, as a share of the grid's training FLOPs: over it, its sizes move down
    # to smaller ones (its smallest sizes where even they cost more; the dry run states the share)
    max_share: float = 0.25


@dataclass
class ModelConfig:
    """The model family: everything about the architecture except its size."""

    positions: str = choice("rope", Positions)
    mlp_ratio: int = 4
    seq_len: int = 128
    tie_embeddings: bool = True
    head_dim: int = 32  # n_head = d_model / head_dim when a size gives no n_head
    aspect_ratio: float = 32.0  # preferred d_model / n_layer when a shape is derived from n_nonembed_params


@dataclass
class TrainConfig:
    # sequences per optimizer step; null = derived per run (sweep.plan.grid.derive_batch_size)
    batch_size: int | None = None
    max_batch_size: int = 4096  # cap of the derived batch size, in sequences
    # floor of the derived batch size, in sequences: below 8 whole batches jump by 1/7..1/1 between neighbouring
    # points (a third fewer steps from 2 to 3 sequences), the cliffs the 8-per-octave rounding avoids above it
    min_batch_size: int = 8
    lr: float | None = None  # peak learning rate; null = derived per run (sweep.plan.grid.derive_lr)
    lr_scale: float = 1.0  # multiplies the derived learning rate
    schedule: str = choice("cosine", Schedule)
    # wsd only: the decay is this fraction of each run's own steps (null: the last 20% of the steps after
    # warm-up, linear; grid.branches=true: 0.2, Hägele et al. 2024 sec. 4, where a 20% cooldown
    # matches cosine).
    cooldown_fraction: float | None = None
    cooldown_shape: str = choice("1-sqrt", CooldownShape)
    warmup_fraction: float = 0.05
    # Warm-up lasts at least this many steps (up to a quarter of the run); null: 2 / (1 - beta2), Adam's
    # second-moment horizon (Ma & Yarats 2021), 40 steps at beta2 = 0.95. 0: the fraction alone.
    min_warmup_steps: int | None = None
    max_warmup_steps: int = 1000
    final_lr_fraction: float = 0.1
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    precision: str = choice("auto", Precision)  # resolved at plan time: a run id hashes fp32 or bf16
    val_points: int = 8  # validation-loss evaluations along the run (the last at the final step)
    # Held-out sequences of every validation-loss evaluation: the same rows for every run of the sweep (fixed by
    # data.seed, whatever a run's batch), so runs are compared on one text.
    val_sequences: int = 256
    log_every_steps: int = 10
    diverge_loss: float = 12.0  # train loss above this (or NaN) marks the run diverged
    # Execution only: excluded from run_id (sweep.plan.run_id.EXCLUDED).
    compile: str = choice("auto", Compile)
    checkpoint_every_seconds: float = 120.0
    micro_batch_size: int | None = None  # sequences per forward/backward; null = the largest that fits memory
    data_workers: int | None = None  # batch-building processes; null = 0 on CPU, the run's CPUs - 1 on GPU


@dataclass
class TaskConfig:
    """One evaluation task: a generator `kind` with its `args`, filed under `name`."""

    name: str
    kind: str
    args: dict[str, Any] = field(default_factory=dict)
    train_weight: float = 1.0  # share of this task in the synthetic training mixture


@dataclass
class TasksConfig:
    suite: list[TaskConfig] = field(default_factory=list)
    n_eval: int = 256  # held-out problems per task (fewer when the task's space is smaller)
    eval_batch_size: int = 256  # execution only


@dataclass
class CorpusConfig:
    """A user corpus mixed into training: text file/folder, nanoGPT .bin tokens, or Parquet."""

    path: str = ""  # "" = none; a file or a folder
    format: str = choice("auto", CorpusFormat)
    dtype: str = choice("uint16", BinDtype)
    text_column: str = "text"  # Parquet only
    weight: float = 0.0  # share of training rows drawn from the corpus; the rest come from the tasks
    cache_dir: str = ""  # where tokenized copies go ("" = ~/.cache/scaling-sweep/corpus)


@dataclass
class DataConfig:
    tokenizer: str = "byte"  # byte (offline default) | path to a tokenizer.json (Hugging Face tokenizers)
    heldout_fraction: float = 0.1  # share of each task's problems (and of the corpus) held out
    seed: int = 1234  # fixes the held-out validation batches and evaluation problems
    corpus: CorpusConfig = field(default_factory=CorpusConfig)


@dataclass
class ClusterConfig:
    kind: str = choice("local", ClusterKind)
    address: str | None = None  # auto | ray://host:port | host:port (kind=ray)
    num_cpus: int | None = None  # local only: CPUs for the embedded Ray (null = all)
    num_gpus: int | None = None  # local only
    # What each run asks Ray for. null = auto, per run (sweep.plan.resources.run_resources): GPUs: 0 on a
    # cluster without GPUs, else a power-of-two share (1/8 .. 1) by the run's work per optimizer step;
    # CPUs: 1 for a CPU run, a GPU run's share of its node's CPUs. A number applies to every run.
    cpus_per_run: float | None = None
    gpus_per_run: float | None = None  # e.g. 0.25 packs four runs on each GPU, 1 gives each run a GPU
    max_runs_per_gpu: int = 8  # auto packing puts at most this many runs on one GPU (a power of two)
    full_gpu_flops_per_step: float = 1.4e13  # FLOPs per optimizer step at which one run fills a GPU (H200)
    device: str = choice("auto", Device)
    max_retries: int = 2  # retries after a lost worker or node (never after a config error or divergence)
    # a run's lease (sweep/store/lease.py) lapses this long after its worker stops renewing
    lease_seconds: float = 120.0
    # cluster=ray: the `ray up` cluster YAML whose node types the autoscaler may add (ray up leaves it on the
    # head as ~/ray_bootstrap_config.yaml); resource checks and GPU shares count those types as nodes.
    # An autoscaler that reports its node groups to Ray (KubeRay, autoscaler v2) is read from Ray instead.
    autoscaler_config: str | None = None  # conf/cluster/ray.yaml: ~/ray_bootstrap_config.yaml
    runtime_env: dict[str, Any] = field(default_factory=dict)  # passed to ray.init
    log_to_driver: bool = True  # show workers' warnings and errors in the driver's terminal


@dataclass
class LoggerConfig:
    kind: str = choice("wandb", LoggerKind)
    mode: str = choice("auto", LoggerMode)
    project: str = "scaling-sweep"
    entity: str | None = None


@dataclass
class SweepConfig:
    name: str = "default"  # the sweep's directory under results_dir
    results_dir: str = "results"  # local path or pyarrow.fs URI (s3://, gs://)
    dry_run: bool = False  # print the run table and launch nothing
    analysis: bool = True  # run the analysis stage after the sweep
    grid: GridConfig = field(default_factory=GridConfig)
    recipe: RecipeConfig = field(default_factory=RecipeConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    tasks: TasksConfig = field(default_factory=TasksConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
