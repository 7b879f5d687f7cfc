"""Validation of a composed SweepConfig: every problem found at once, each naming its key and a fix.

Types are already checked by the structured config (OmegaConf); this checks values and the
relations between them. Runs before anything is launched.
"""

from __future__ import annotations

import re

import numpy as np

from sweep.config import SweepConfig
from sweep.tasks.corpus import BIN_DTYPES, CORPUS_FORMATS, corpus_files
from sweep.tasks.registry import build_generator
from sweep.tasks.tokenizer import load_tokenizer
from sweep.train.schedule import SCHEDULES

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class ConfigError(ValueError):
    """One or more invalid config values; `problems` lists them as 'key: message'."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid sweep config ({len(problems)} problem{'s' * (len(problems) != 1)}):\n{lines}")


def _check_grid(cfg: SweepConfig, out: list[str]) -> None:
    grid, model = cfg.grid, cfg.model
    if not grid.models:
        out.append("grid.models: empty; list at least one size, e.g. {n_layer: 2, d_model: 64} or {n_params: 1e6}")
    names = [m.name for m in grid.models if m.name]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        out.append(f"grid.models: the name {dup!r} is used twice; names must be unique")
    for i, size in enumerate(grid.models):
        key = f"grid.models[{i}]"
        explicit = size.n_layer is not None or size.d_model is not None
        if explicit and size.n_params is not None:
            out.append(f"{key}: give either n_layer/d_model or n_params, not both")
            continue
        if not explicit and size.n_params is None:
            out.append(f"{key}: give n_layer and d_model (and optionally n_head), or n_params")
            continue
        if size.n_params is not None:
            if size.n_params <= 0:
                out.append(f"{key}.n_params: must be positive, got {size.n_params:g}")
            continue
        if size.n_layer is None or size.d_model is None:
            out.append(f"{key}: n_layer and d_model go together; got n_layer={size.n_layer}, d_model={size.d_model}")
            continue
        if size.n_layer < 1:
            out.append(f"{key}.n_layer: must be >= 1, got {size.n_layer}")
        if size.d_model < 1:
            out.append(f"{key}.d_model: must be >= 1, got {size.d_model}")
            continue
        n_head = size.n_head if size.n_head is not None else size.d_model // max(model.head_dim, 1)
        if size.n_head is None and size.d_model % max(model.head_dim, 1):
            out.append(f"{key}.d_model: {size.d_model} is not a multiple of model.head_dim={model.head_dim}; "
                       "give n_head explicitly or change d_model")
        elif n_head < 1:
            out.append(f"{key}.n_head: must be >= 1, got {n_head}")
        elif size.d_model % n_head:
            out.append(f"{key}.n_head: n_head={n_head} does not divide d_model={size.d_model}; "
                       f"pick n_head among the divisors of {size.d_model}")
        elif model.positions == "rope" and (size.d_model // n_head) % 2:
            out.append(f"{key}: head dimension d_model/n_head={size.d_model // n_head} is odd; RoPE needs it even")
    if not grid.n_tokens and not grid.tokens_per_param:
        out.append("grid.n_tokens: no token budget; set grid.n_tokens (absolute) or grid.tokens_per_param (ratios)")
    for i, d in enumerate(grid.n_tokens):
        if not d > 0:
            out.append(f"grid.n_tokens[{i}]: token budget must be positive, got {d:g}")
    for i, r in enumerate(grid.tokens_per_param):
        if not r > 0:
            out.append(f"grid.tokens_per_param[{i}]: ratio must be positive, got {r:g}")
    if not grid.seeds:
        out.append("grid.seeds: empty; give at least one seed, e.g. [0]")
    if len(set(grid.seeds)) != len(grid.seeds):
        out.append(f"grid.seeds: duplicates in {list(grid.seeds)}")
    if any(s < 0 for s in grid.seeds):
        out.append(f"grid.seeds: seeds must be >= 0, got {list(grid.seeds)}")


def _check_model(cfg: SweepConfig, out: list[str]) -> None:
    m = cfg.model
    if m.positions not in ("rope", "learned"):
        out.append(f"model.positions: {m.positions!r} is not one of rope, learned")
    if m.mlp_ratio < 1:
        out.append(f"model.mlp_ratio: must be >= 1, got {m.mlp_ratio}")
    if m.seq_len < 8:
        out.append(f"model.seq_len: must be >= 8, got {m.seq_len}")
    if m.head_dim < 1 or (m.positions == "rope" and m.head_dim % 2):
        out.append(f"model.head_dim: must be a positive even number, got {m.head_dim}")
    if m.aspect_ratio <= 0:
        out.append(f"model.aspect_ratio: must be positive, got {m.aspect_ratio}")


def _check_train(cfg: SweepConfig, out: list[str]) -> None:
    t = cfg.train
    for key in ("batch_size", "micro_batch_size"):
        value = getattr(t, key)
        if value is not None and value < 1:
            out.append(f"train.{key}: must be >= 1 (or null to derive it), got {value}")
    if t.batch_size and t.micro_batch_size and t.batch_size % t.micro_batch_size:
        out.append(f"train.micro_batch_size: {t.micro_batch_size} does not divide train.batch_size={t.batch_size}")
    if t.data_workers is not None and t.data_workers < 0:
        out.append(f"train.data_workers: must be >= 0 (or null), got {t.data_workers}")
    positive = {"max_batch_size": t.max_batch_size, "lr_scale": t.lr_scale, "val_points": t.val_points,
                "val_batches": t.val_batches, "log_every_steps": t.log_every_steps,
                "diverge_loss": t.diverge_loss, "checkpoint_every_seconds": t.checkpoint_every_seconds}
    for key, value in positive.items():
        if not value > 0:
            out.append(f"train.{key}: must be positive, got {value}")
    if t.lr is not None and not t.lr > 0:
        out.append(f"train.lr: must be positive (or null to derive it from the model size), got {t.lr}")
    if t.schedule not in SCHEDULES:
        out.append(f"train.schedule: {t.schedule!r} is not one of {', '.join(SCHEDULES)}")
    if not 0 <= t.warmup_fraction < 1:
        out.append(f"train.warmup_fraction: must be in [0, 1), got {t.warmup_fraction}")
    if t.max_warmup_steps < 1:
        out.append(f"train.max_warmup_steps: must be >= 1, got {t.max_warmup_steps}")
    if not 0 <= t.final_lr_fraction <= 1:
        out.append(f"train.final_lr_fraction: must be in [0, 1], got {t.final_lr_fraction}")
    if t.weight_decay < 0:
        out.append(f"train.weight_decay: must be >= 0, got {t.weight_decay}")
    for key in ("beta1", "beta2"):
        if not 0 <= getattr(t, key) < 1:
            out.append(f"train.{key}: must be in [0, 1), got {getattr(t, key)}")
    if t.grad_clip < 0:
        out.append(f"train.grad_clip: must be >= 0 (0 disables clipping), got {t.grad_clip}")
    if t.precision not in ("auto", "fp32", "bf16"):
        out.append(f"train.precision: {t.precision!r} is not one of auto, fp32, bf16")
    if str(t.compile).lower() not in ("auto", "true", "false"):
        out.append(f"train.compile: {t.compile!r} is not one of auto, true, false")


def _longest_problem(generator) -> int:
    """Bytes of the longest prompt seen in a fixed sample, plus the longest answer and its terminator."""
    problems = generator.sample(np.random.default_rng(0), 64)
    return max(len(p.prompt.encode()) for p in problems) + generator.max_target_chars + 1


def _check_tasks(cfg: SweepConfig, out: list[str]) -> None:
    suite = cfg.tasks.suite
    if not suite:
        out.append("tasks.suite: empty; pick a task group (tasks=arithmetic) or list tasks")
    names = [t.name for t in suite]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        out.append(f"tasks.suite: the task name {dup!r} is used twice")
    for i, task in enumerate(suite):
        key = f"tasks.suite[{i}]"
        if not _SAFE_NAME.match(task.name or ""):
            out.append(f"{key}.name: {task.name!r} must be letters, digits, '.', '_' or '-'")
        try:
            generator = build_generator(task.kind, dict(task.args))
        except ValueError as exc:
            out.append(f"{key} ({task.name}): {exc}")
            continue
        longest = _longest_problem(generator)
        if longest > cfg.model.seq_len:
            out.append(f"{key} ({task.name}): a prompt with its answer takes up to {longest} bytes, more than "
                       f"model.seq_len={cfg.model.seq_len}; raise model.seq_len or make the task smaller")
        if task.train_weight < 0:
            out.append(f"{key}.train_weight: must be >= 0, got {task.train_weight}")
    if cfg.tasks.n_eval < 1:
        out.append(f"tasks.n_eval: must be >= 1, got {cfg.tasks.n_eval}")
    if cfg.tasks.eval_batch_size < 1:
        out.append(f"tasks.eval_batch_size: must be >= 1, got {cfg.tasks.eval_batch_size}")


def _check_data(cfg: SweepConfig, out: list[str]) -> None:
    d, corpus = cfg.data, cfg.data.corpus
    try:
        load_tokenizer(d.tokenizer)
    except ValueError as exc:
        out.append(str(exc))
    if not 0 < d.heldout_fraction < 1:
        out.append(f"data.heldout_fraction: must be in (0, 1), got {d.heldout_fraction}")
    if not 0 <= corpus.weight <= 1:
        out.append(f"data.corpus.weight: must be in [0, 1], got {corpus.weight}")
    if corpus.format not in CORPUS_FORMATS:
        out.append(f"data.corpus.format: {corpus.format!r} is not one of {', '.join(CORPUS_FORMATS)}")
    if corpus.dtype not in BIN_DTYPES:
        out.append(f"data.corpus.dtype: {corpus.dtype!r} is not one of {', '.join(BIN_DTYPES)}")
    if corpus.weight > 0:
        if not corpus.path:
            out.append("data.corpus.path: corpus.weight > 0 but no path; give a text file/folder, .bin or .parquet")
        else:
            try:
                corpus_files(corpus.path)
            except ValueError as exc:
                out.append(str(exc))
    elif corpus.path:
        out.append(f"data.corpus.weight: a corpus path is set ({corpus.path!r}) but weight is 0; "
                   "set data.corpus.weight (share of training rows) or drop the path")
    if cfg.tasks.suite and corpus.weight < 1 and not any(t.train_weight > 0 for t in cfg.tasks.suite):
        out.append("tasks.suite: every train_weight is 0; at least one task must feed the training mixture "
                   "(or set data.corpus.weight: 1)")


def _check_cluster_and_logger(cfg: SweepConfig, out: list[str]) -> None:
    c, lg = cfg.cluster, cfg.logger
    if c.kind not in ("local", "ray"):
        out.append(f"cluster.kind: {c.kind!r} is not one of local, ray")
    if c.kind == "ray" and not c.address:
        out.append("cluster.address: cluster=ray needs an address (auto, host:port or ray://host:port)")
    if c.cpus_per_run is not None and not c.cpus_per_run > 0:
        out.append(f"cluster.cpus_per_run: must be positive (or null: auto), got {c.cpus_per_run}")
    if c.gpus_per_run is not None and c.gpus_per_run < 0:
        out.append(f"cluster.gpus_per_run: must be >= 0 (or null: auto, by each run's size), got {c.gpus_per_run}")
    if c.gpus_per_run is not None and c.gpus_per_run > 1 and c.gpus_per_run != int(c.gpus_per_run):
        out.append(f"cluster.gpus_per_run: above 1 it must be a whole number, got {c.gpus_per_run}")
    if c.max_runs_per_gpu < 1 or c.max_runs_per_gpu & (c.max_runs_per_gpu - 1):
        out.append(f"cluster.max_runs_per_gpu: must be a power of two (1, 2, 4, 8, ...: GPU shares are 1/2^k), "
                   f"got {c.max_runs_per_gpu}")
    if not c.full_gpu_flops_per_step > 0:
        out.append(f"cluster.full_gpu_flops_per_step: must be positive (FLOPs per optimizer step that fill one GPU, "
                   f"1.4e13 on an H200), got {c.full_gpu_flops_per_step}")
    if c.device not in ("auto", "cpu", "cuda"):
        out.append(f"cluster.device: {c.device!r} is not one of auto, cpu, cuda")
    if c.device == "cuda" and c.gpus_per_run is not None and c.gpus_per_run <= 0:
        out.append("cluster.device: cuda needs cluster.gpus_per_run > 0 or null (Ray hides GPUs from runs that hold "
                   "none)")
    if c.kind == "local":  # the node's size is in the config: check the per-run numbers against it now
        if c.num_cpus is not None and c.cpus_per_run is not None and c.cpus_per_run > c.num_cpus:
            out.append(f"cluster.cpus_per_run: {c.cpus_per_run:g} is more than the node has (cluster.num_cpus="
                       f"{c.num_cpus}); no run could start")
        if c.num_gpus is not None and c.gpus_per_run is not None and c.gpus_per_run > c.num_gpus:
            out.append(f"cluster.gpus_per_run: {c.gpus_per_run:g} is more than the node has (cluster.num_gpus="
                       f"{c.num_gpus}); no run could start")
        if c.num_gpus == 0 and c.device == "cuda":
            out.append("cluster.device: cuda but cluster.num_gpus=0; set cluster.device=auto or give GPUs")
    if c.max_retries < 0:
        out.append(f"cluster.max_retries: must be >= 0, got {c.max_retries}")
    if not c.lease_seconds >= 10:
        out.append(f"cluster.lease_seconds: must be >= 10 (a lease is renewed every quarter of it), "
                   f"got {c.lease_seconds}")
    for key in ("num_cpus", "num_gpus"):
        value = getattr(c, key)
        if value is not None and value < 0:
            out.append(f"cluster.{key}: must be >= 0, got {value}")
    if lg.kind not in ("wandb", "none"):
        out.append(f"logger.kind: {lg.kind!r} is not one of wandb, none")
    if lg.mode not in ("auto", "offline", "online", "disabled"):
        out.append(f"logger.mode: {lg.mode!r} is not one of auto, offline, online, disabled")


def validate(cfg: SweepConfig) -> None:
    """Raise ConfigError listing every problem; return None when the config is valid."""
    problems: list[str] = []
    if not _SAFE_NAME.match(cfg.name or ""):
        problems.append(f"name: {cfg.name!r} must be letters, digits, '.', '_' or '-' (it names a directory)")
    if not cfg.results_dir:
        problems.append("results_dir: empty; give a directory or URI")
    for check in (_check_grid, _check_model, _check_train, _check_tasks, _check_data, _check_cluster_and_logger):
        check(cfg, problems)
    if problems:
        raise ConfigError(problems)


MIN_EVAL_PROBLEMS = 100  # below this an exact-match value moves in steps of 1% or more


def advisories(cfg: SweepConfig) -> list[str]:
    """Things that are legal but probably not what the user wants; printed before launch, never fatal.
    Call after validate(). Today: tasks whose held-out split is too small to evaluate well."""
    from sweep.tasks.mixture import eval_problems, named_tasks

    out = []
    for i, task in enumerate(named_tasks(cfg.tasks.suite)):
        wanted = min(cfg.tasks.n_eval, MIN_EVAL_PROBLEMS)
        found = len(eval_problems(task, wanted, cfg.data.seed, cfg.data.heldout_fraction))
        if found < wanted:
            out.append(f"tasks.suite[{i}] ({task.name}): only {found} held-out problems to evaluate (its problem "
                       f"space is small; data.heldout_fraction={cfg.data.heldout_fraction}): exact match moves in "
                       f"steps of {1 / max(found, 1):.2g}; a larger task (more digits, keys) measures better")
    return out
