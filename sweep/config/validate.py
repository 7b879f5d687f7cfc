"""The values of a composed SweepConfig: every problem found at once, each naming its key and a fix.

Types are checked by the structured config (OmegaConf); this checks values, the relations between them and
what the config points at on disk (corpus, tokenizer). Every float must be finite (`nonfinite_floats`); a
name outside its set (sweep.config.schema.allowed) is refused with the nearest valid one suggested. The plan's
checks (shapes, expanded runs) are in sweep/plan/checks.py, the results dir's and the cluster's in
sweep/preflight.py; the CLI reports all of them together.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from sweep.config.schema import (
    ClusterConfig,
    CorpusConfig,
    GridConfig,
    LoggerConfig,
    ModelConfig,
    RecipeConfig,
    SweepConfig,
    TrainConfig,
    allowed,
)
from sweep.tasks.corpus import check_corpus
from sweep.tasks.registry import build_generator
from sweep.tasks.tokenizer import BYTE, load_tokenizer

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

# Beyond anything this trainer can hold: the tables store counts as int64, and the largest models
# trained to date have ~1e12 parameters. A target above it is a typo (1e30 for 1e13...).
MAX_PARAMS = 1e13
MAX_TOKENS = 1e16

# Names that people write for a valid one (difflib cannot guess these).
_ALIASES = {"gpu": "cuda", "rotary": "rope", "absolute": "learned", "float32": "fp32", "bfloat16": "bf16",
            "fp16": "bf16", "cos": "cosine", "txt": "text"}


def suggest(value: Any, choices: Sequence[str]) -> str:
    """'; did you mean X?' for the valid name nearest `value` (difflib, or a known alias), else ''."""
    text = str(value)
    if _ALIASES.get(text.lower()) in choices:
        return f"; did you mean {_ALIASES[text.lower()]}?"
    close = difflib.get_close_matches(text, list(choices), n=1, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(text.lower(), list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def _one_of(out: list[str], key: str, value: Any, schema: type) -> None:
    """'key: value is not one of ...' unless `value` is one of the names the schema allows for `key`."""
    choices = allowed(schema, key.rsplit(".", 1)[-1])
    if value not in choices:
        out.append(f"{key}: {value!r} is not one of {', '.join(choices)}{suggest(value, choices)}")


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def nonfinite_floats(node: Any, prefix: str = "") -> list[tuple[str, float]]:
    """(key, value) of every NaN or infinite float in a config tree (dataclasses, lists, dicts)."""
    found: list[tuple[str, float]] = []
    if isinstance(node, float):
        if not math.isfinite(node):
            found.append((prefix, node))
    elif dataclasses.is_dataclass(node):
        for f in dataclasses.fields(node):
            found += nonfinite_floats(getattr(node, f.name), f"{prefix}.{f.name}" if prefix else f.name)
    elif isinstance(node, dict):
        for k, v in node.items():
            found += nonfinite_floats(v, f"{prefix}.{k}")
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            found += nonfinite_floats(v, f"{prefix}[{i}]")
    return found


class ConfigError(ValueError):
    """One or more invalid config values; `problems` lists them as 'key: message'."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid sweep config ({len(problems)} problem{'s' * (len(problems) != 1)}):\n{lines}")


def _check_size(key: str, size, model: ModelConfig, out: list[str]) -> None:
    """One grid size: an explicit shape that the model family can build, or a positive, plausible target count
    (whether a shape reaches it is sweep.plan.checks.shape_problems')."""
    explicit = size.n_layer is not None or size.d_model is not None
    if explicit and size.n_nonembed_params is not None:
        out.append(f"{key}: give either n_layer/d_model or n_nonembed_params, not both")
        return
    if not explicit and size.n_nonembed_params is None:
        out.append(f"{key}: give n_layer and d_model (and optionally n_head), or n_nonembed_params")
        return
    target = size.n_nonembed_params
    if target is not None:
        if not target > 0:
            out.append(f"{key}.n_nonembed_params: must be positive, got {target:g}")
        elif target > MAX_PARAMS:
            out.append(f"{key}.n_nonembed_params: {target:g} parameters is beyond what this trainer can hold "
                       f"(at most {MAX_PARAMS:g}); check the exponent")
        return
    if size.n_layer is None or size.d_model is None:
        out.append(f"{key}: n_layer and d_model go together; got n_layer={size.n_layer}, d_model={size.d_model}")
        return
    if size.n_layer < 1:
        out.append(f"{key}.n_layer: must be >= 1, got {size.n_layer}")
    if size.d_model < 1:
        out.append(f"{key}.d_model: must be >= 1, got {size.d_model}")
        return
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
    elif size.n_layer >= 1 and 12 * size.n_layer * size.d_model**2 > MAX_PARAMS:
        out.append(f"{key}: n_layer={size.n_layer}, d_model={size.d_model} is about "
                   f"{12 * size.n_layer * size.d_model**2:.2g} parameters, beyond what this trainer can hold "
                   f"(at most {MAX_PARAMS:g})")


def _check_grid(cfg: SweepConfig, out: list[str]) -> None:
    grid = cfg.grid
    if not grid.models:
        out.append("grid.models: empty; list at least one size, e.g. {n_layer: 2, d_model: 64} or "
                   "{n_nonembed_params: 1e6}")
    names = [m.name for m in grid.models if m.name]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        out.append(f"grid.models: the name {dup!r} is used twice; names must be unique")
    for i, size in enumerate(grid.models):
        _check_size(f"grid.models[{i}]", size, cfg.model, out)
    if not grid.n_tokens and not grid.tokens_per_param:
        out.append("grid.n_tokens: no token budget; set grid.n_tokens (absolute) or grid.tokens_per_param (ratios)")
    for i, d in enumerate(grid.n_tokens):
        if not d > 0:
            out.append(f"grid.n_tokens[{i}]: token budget must be positive, got {d:g}")
        elif d > MAX_TOKENS:
            out.append(f"grid.n_tokens[{i}]: {d:g} tokens is beyond any training run (at most {MAX_TOKENS:g}); "
                       "check the exponent")
    for i, r in enumerate(grid.tokens_per_param):
        if not r > 0:
            out.append(f"grid.tokens_per_param[{i}]: ratio must be positive, got {r:g}")
        elif r > 1e6:
            out.append(f"grid.tokens_per_param[{i}]: {r:g} tokens per parameter is not a ratio anyone trains at "
                       "(Chinchilla: 20); did you mean grid.n_tokens?")
    if not grid.seeds:
        out.append("grid.seeds: empty; give at least one seed, e.g. [0]")
    if len(set(grid.seeds)) != len(grid.seeds):
        out.append(f"grid.seeds: duplicates in {list(grid.seeds)}")
    if any(not s >= 0 for s in grid.seeds):
        out.append(f"grid.seeds: seeds must be >= 0, got {list(grid.seeds)}")


def _check_model(cfg: SweepConfig, out: list[str]) -> None:
    m = cfg.model
    _one_of(out, "model.positions", m.positions, ModelConfig)
    if m.mlp_ratio < 1:
        out.append(f"model.mlp_ratio: must be >= 1, got {m.mlp_ratio}")
    if m.seq_len < 8:
        out.append(f"model.seq_len: must be >= 8, got {m.seq_len}")
    if m.head_dim < 1 or (m.positions == "rope" and m.head_dim % 2):
        out.append(f"model.head_dim: must be a positive even number, got {m.head_dim}")
    if not m.aspect_ratio > 0:
        out.append(f"model.aspect_ratio: must be positive, got {m.aspect_ratio}")


def _check_train(cfg: SweepConfig, out: list[str]) -> None:
    t = cfg.train
    for key in ("batch_size", "micro_batch_size"):
        value = getattr(t, key)
        if value is not None and value < 1:
            out.append(f"train.{key}: must be >= 1 (or null to derive it), got {value}")
    if t.batch_size and t.micro_batch_size and t.batch_size % t.micro_batch_size:
        out.append(f"train.micro_batch_size: {t.micro_batch_size} does not divide train.batch_size={t.batch_size}")
    if not 1 <= t.min_batch_size <= t.max_batch_size:
        out.append(f"train.min_batch_size: must be between 1 and train.max_batch_size ({t.max_batch_size}), got "
                   f"{t.min_batch_size}")
    if t.data_workers is not None and not t.data_workers >= 0:
        out.append(f"train.data_workers: must be >= 0 (or null), got {t.data_workers}")
    positive = {"max_batch_size": t.max_batch_size, "lr_scale": t.lr_scale, "val_points": t.val_points,
                "val_sequences": t.val_sequences, "log_every_steps": t.log_every_steps,
                "diverge_loss": t.diverge_loss, "checkpoint_every_seconds": t.checkpoint_every_seconds}
    for key, value in positive.items():
        if not value > 0:
            out.append(f"train.{key}: must be positive, got {value}")
    if t.lr is not None and not t.lr > 0:
        out.append(f"train.lr: must be positive (or null to derive it from the model size), got {t.lr}")
    _one_of(out, "train.schedule", t.schedule, TrainConfig)
    if cfg.grid.branches and t.schedule != "wsd":
        out.append(f"grid.branches: needs train.schedule=wsd (a warmup-stable-decay run can branch into "
                   f"cooldowns), got {t.schedule!r}")
    if t.cooldown_fraction is not None and not 0 < t.cooldown_fraction < 1:
        out.append(f"train.cooldown_fraction: must be in (0, 1) (or null), got {t.cooldown_fraction}")
    _one_of(out, "train.cooldown_shape", t.cooldown_shape, TrainConfig)
    _one_of(out, "grid.branch_plan", cfg.grid.branch_plan, GridConfig)
    if not 0 <= t.warmup_fraction < 1:
        out.append(f"train.warmup_fraction: must be in [0, 1), got {t.warmup_fraction}")
    if t.min_warmup_steps is not None and t.min_warmup_steps < 0:
        out.append(f"train.min_warmup_steps: must be >= 0 or null, got {t.min_warmup_steps}")
    if t.max_warmup_steps < 1:
        out.append(f"train.max_warmup_steps: must be >= 1, got {t.max_warmup_steps}")
    if not 0 <= t.final_lr_fraction <= 1:
        out.append(f"train.final_lr_fraction: must be in [0, 1], got {t.final_lr_fraction}")
    if not t.weight_decay >= 0:
        out.append(f"train.weight_decay: must be >= 0, got {t.weight_decay}")
    for key in ("beta1", "beta2"):
        if not 0 <= getattr(t, key) < 1:
            out.append(f"train.{key}: must be in [0, 1), got {getattr(t, key)}")
    if not t.grad_clip >= 0:
        out.append(f"train.grad_clip: must be >= 0 (0 disables clipping), got {t.grad_clip}")
    _one_of(out, "train.precision", t.precision, TrainConfig)
    if str(t.compile).lower() not in allowed(TrainConfig, "compile"):  # YAML's true/false arrive as True/False
        _one_of(out, "train.compile", t.compile, TrainConfig)


def _check_recipe(cfg: SweepConfig, out: list[str]) -> None:
    r = cfg.recipe
    _one_of(out, "recipe.source", r.source, RecipeConfig)
    out += [f"recipe.{key}: must be >= 1 (the grid's {key} to calibrate at), got {getattr(r, key)}"
            for key in ("sizes", "budgets") if not getattr(r, key) >= 1]
    for key in ("batch_factors", "lr_factors"):
        values = getattr(r, key)
        if any(not (_finite(v) and v > 0) for v in values):
            out.append(f"recipe.{key}: every factor must be a number > 0, got {list(values)}")
        elif len(set(values)) < 3:
            out.append(f"recipe.{key}: needs at least 3 distinct factors to place an optimum between them (a bowl "
                       f"has a bottom and two sides), got {list(values)} (e.g. [0.5, 1, 2])")
    if not r.seeds:
        out.append("recipe.seeds: empty; give at least one seed, e.g. [0]")
    if not (_finite(r.max_share) and 0 < r.max_share <= 1):
        out.append(f"recipe.max_share: a share of the grid's FLOPs, in (0, 1], got {r.max_share}")


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
        if not SAFE_NAME.match(task.name or ""):
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
        if not task.train_weight >= 0:
            out.append(f"{key}.train_weight: must be >= 0, got {task.train_weight}")
    if cfg.tasks.n_eval < 1:
        out.append(f"tasks.n_eval: must be >= 1, got {cfg.tasks.n_eval}")
    if cfg.tasks.eval_batch_size < 1:
        out.append(f"tasks.eval_batch_size: must be >= 1, got {cfg.tasks.eval_batch_size}")


def _check_data(cfg: SweepConfig, out: list[str]) -> None:
    d, corpus = cfg.data, cfg.data.corpus
    tokenizer = None
    try:
        tokenizer = load_tokenizer(d.tokenizer)
    except ValueError as exc:
        out.append(str(exc))
    if not 0 < d.heldout_fraction < 1:
        out.append(f"data.heldout_fraction: must be in (0, 1), got {d.heldout_fraction}")
    if not 0 <= corpus.weight <= 1:
        out.append(f"data.corpus.weight: must be in [0, 1], got {corpus.weight}")
    _one_of(out, "data.corpus.format", corpus.format, CorpusConfig)
    _one_of(out, "data.corpus.dtype", corpus.dtype, CorpusConfig)
    if corpus.weight > 0:
        if not corpus.path:
            out.append("data.corpus.path: corpus.weight > 0 but no path; give a text file/folder, .bin or .parquet")
        elif corpus.format in allowed(CorpusConfig, "format") and corpus.dtype in allowed(CorpusConfig, "dtype"):
            settled = 0 < d.heldout_fraction < 1 and cfg.model.seq_len >= 8
            out += check_corpus(corpus.path, corpus.format, corpus.dtype, corpus.text_column,
                                row_tokens=cfg.model.seq_len + 1 if settled else None,
                                heldout_fraction=d.heldout_fraction if settled else 0.1,
                                byte_tokens=d.tokenizer == BYTE,
                                vocab_size=tokenizer.vocab_size if tokenizer is not None else None)
    elif corpus.path:
        out.append(f"data.corpus.weight: a corpus path is set ({corpus.path!r}) but weight is 0; "
                   "set data.corpus.weight (share of training rows) or drop the path")
    if cfg.tasks.suite and corpus.weight < 1 and not any(t.train_weight > 0 for t in cfg.tasks.suite):
        out.append("tasks.suite: every train_weight is 0; at least one task must feed the training mixture "
                   "(or set data.corpus.weight: 1)")


def _check_cluster_and_logger(cfg: SweepConfig, out: list[str]) -> None:
    c, lg = cfg.cluster, cfg.logger
    _one_of(out, "cluster.kind", c.kind, ClusterConfig)
    if c.kind == "ray" and not c.address:
        out.append("cluster.address: cluster=ray needs an address (auto, host:port or ray://host:port)")
    if c.cpus_per_run is not None and not c.cpus_per_run > 0:
        out.append(f"cluster.cpus_per_run: must be positive (or null: auto), got {c.cpus_per_run}")
    if c.gpus_per_run is not None and not c.gpus_per_run >= 0:
        out.append(f"cluster.gpus_per_run: must be >= 0 (or null: auto, by each run's size), got {c.gpus_per_run}")
    if _finite(c.gpus_per_run) and c.gpus_per_run > 1 and c.gpus_per_run != int(c.gpus_per_run):
        out.append(f"cluster.gpus_per_run: above 1 it must be a whole number, got {c.gpus_per_run}")
    if c.max_runs_per_gpu < 1 or c.max_runs_per_gpu & (c.max_runs_per_gpu - 1):
        out.append(f"cluster.max_runs_per_gpu: must be a power of two (1, 2, 4, 8, ...: GPU shares are 1/2^k), "
                   f"got {c.max_runs_per_gpu}")
    if not c.full_gpu_flops_per_step > 0:
        out.append(f"cluster.full_gpu_flops_per_step: must be positive (FLOPs per optimizer step that fill one GPU, "
                   f"1.4e13 on an H200), got {c.full_gpu_flops_per_step}")
    _one_of(out, "cluster.device", c.device, ClusterConfig)
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
    _one_of(out, "logger.kind", lg.kind, LoggerConfig)
    _one_of(out, "logger.mode", lg.mode, LoggerConfig)


def problems(cfg: SweepConfig) -> list[str]:
    """Every problem of the config's values, one 'key: what is wrong; the fix' line each ([] when valid)."""
    nonfinite = nonfinite_floats(cfg)
    found: list[str] = [f"{key}: must be a finite number, got {value}" for key, value in nonfinite]
    checked: list[str] = []
    if not SAFE_NAME.match(cfg.name or ""):
        checked.append(f"name: {cfg.name!r} must be letters, digits, '.', '_' or '-' (it names a directory)")
    if not cfg.results_dir:
        checked.append("results_dir: empty; give a directory or URI")
    for check in (_check_grid, _check_recipe, _check_model, _check_train, _check_tasks, _check_data,
                  _check_cluster_and_logger):
        check(cfg, checked)
    # A NaN also fails its key's own range check: report it once, as not finite.
    bad = {key for key, _ in nonfinite}
    return found + [p for p in checked if p.split(":", 1)[0].split(" ", 1)[0] not in bad]


def validate(cfg: SweepConfig) -> None:
    """Raise ConfigError listing every problem of the config's values; return None when they are valid."""
    found = problems(cfg)
    if found:
        raise ConfigError(found)


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
