"""`RunSpec`: everything one training run needs, fully resolved; what the trainer and store consume.

Built only by sweep.plan.grid.expand (a WSD family's runs by sweep.plan.branches.family_specs). Plain frozen
dataclasses (picklable, JSON-able with asdict), so a spec crosses to a Ray worker and lands in the run's config.json
unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sweep.config.schema import CorpusConfig, DataConfig, TaskConfig
from sweep.train.shape import ModelShape


@dataclass(frozen=True)
class TrainPlan:
    """Resolved optimisation settings of one run (derivations in sweep.plan.grid.plan_training)."""

    batch_size: int
    n_steps: int
    n_tokens: int  # tokens actually trained on: n_steps * batch_size * seq_len
    lr: float
    schedule: str
    warmup_steps: int
    final_lr_fraction: float
    weight_decay: float
    beta1: float
    beta2: float
    grad_clip: float
    precision: str
    val_every_steps: int
    val_sequences: int
    diverge_loss: float
    # Execution only (excluded from run_id):
    log_every_steps: int
    compile: str
    checkpoint_every_seconds: float
    micro_batch_size: int | None = None  # None: the largest divisor of batch_size that fits memory
    data_workers: int | None = None  # None: sweep.train.batches.data_workers decides
    recipe: str = ""  # where batch_size and lr come from (sweep.plan.grid.recipe_name); the values are what is hashed
    # schedule=wsd with an exact cooldown (train.cooldown_fraction, grid.branches): the last
    # `cooldown_steps` steps decay from the peak to the floor with `cooldown_shape`. None: the older wsd
    # rule (sweep.train.schedule.lr_at); hashed into run_id only when set.
    cooldown_steps: int | None = None
    cooldown_shape: str | None = None

    @property
    def stable_steps(self) -> int:
        """Steps before the cooldown starts (wsd with cooldown_steps)."""
        return self.n_steps - (self.cooldown_steps or 0)


@dataclass(frozen=True)
class RunSpec:
    model: ModelShape
    train: TrainPlan
    data: DataConfig
    tasks: tuple[TaskConfig, ...]
    n_eval: int
    seed: int
    n_tokens_budget: int  # the grid's requested budget D; train.n_tokens rounds it up to whole steps
    label: str  # the size's display name (excluded from run_id)
    eval_batch_size: int  # execution only
    data_fingerprint: str = "byte"  # tokenizer and corpus contents (sweep.plan.grid.data_fingerprint)
    # WSD branches (sweep.plan.branches); hashed into run_id only when set.
    # A trunk: the steps after which it keeps a checkpoint for a branch (checkpoint/branch-<step>.pt);
    # never hashed (sweep.plan.run_id.EXCLUDED): where it keeps checkpoints, not what it computes.
    branch_points: tuple[int, ...] = ()
    # A branch: the trunk it starts from and the trunk step it starts at (its cooldown's first step).
    trunk_run_id: str | None = None
    branch_step: int | None = None

    @property
    def role(self) -> str:
        """'branch', 'trunk' or 'independent' (a run trained from scratch on its own)."""
        if self.trunk_run_id is not None:
            return "branch"
        return "trunk" if self.branch_points else "independent"

    @property
    def first_step(self) -> int:
        """The first optimizer step this run trains itself (a branch starts from its trunk's checkpoint)."""
        return self.branch_step or 0

    def tokens_from(self, first_step: int | None = None) -> int:
        """Tokens of the steps from `first_step` to the end. None: from self.first_step, the tokens this run
        trains on itself (all of them, or a branch's cooldown: the rest are its trunk's); 0: all (a WSD
        branch that trains its trunk's stable phase itself, sweep.store.runs.BranchCheckpoints.first_step)."""
        first = self.first_step if first_step is None else first_step
        return (self.train.n_steps - first) * self.train.batch_size * self.model.seq_len

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> RunSpec:
        return RunSpec(
            model=ModelShape(**d["model"]),
            train=TrainPlan(**d["train"]),
            data=DataConfig(**{**d["data"], "corpus": CorpusConfig(**d["data"]["corpus"])}),
            tasks=tuple(TaskConfig(**t) for t in d["tasks"]),
            **{k: d[k] for k in ("n_eval", "seed", "n_tokens_budget", "label", "eval_batch_size", "data_fingerprint")},
            branch_points=tuple(d.get("branch_points", ())),
            trunk_run_id=d.get("trunk_run_id"),
            branch_step=d.get("branch_step"),
        )
