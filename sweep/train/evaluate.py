"""Per-sample evaluation of a trained model on held-out task problems, batched.

Two passes, each over batches of problems of equal length (so no padding is needed):
  * greedy generation from the prompt with a KV cache until the terminator (or the task's longest
    answer), giving the prediction and exact match on its final answer;
  * teacher forcing over prompt + target + terminator, giving per-token correctness, the target's
    log-likelihood, the per-token Brier score and, for multiple choice, the option-letter
    distribution at the answer position.
String metrics (edit similarity, numeric error) are computed from these rows in sweep.tasks.metrics.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import torch

from sweep.tasks.problem import TERMINATOR, Problem
from sweep.tasks.tokenizer import Tokenizer
from sweep.train.model import GPT, KVCache


@torch.no_grad()
def greedy_generate(model: GPT, prompts: torch.Tensor, max_new_tokens: int, stop_id: int) -> torch.Tensor:
    """Greedy continuation of equal-length prompts (B, T) -> (B, <= max_new_tokens), KV-cached.

    Stops once every row has produced `stop_id`; tokens after a row's stop are ignored by callers.
    """
    batch, prompt_len = prompts.shape
    cache = KVCache.empty(model.shape, batch, prompt_len + max_new_tokens, prompts.device,
                          dtype=next(model.parameters()).dtype)
    logits = model(prompts, cache)[:, -1]
    done = torch.zeros(batch, dtype=torch.bool, device=prompts.device)
    out = []
    for step in range(max_new_tokens):
        token = logits.argmax(-1)
        out.append(token)
        done |= token == stop_id
        if bool(done.all()) or step == max_new_tokens - 1:
            break
        logits = model(token[:, None], cache)[:, -1]
    return torch.stack(out, dim=1)


def _until_stop(tokens: np.ndarray, stop_id: int) -> np.ndarray:
    hits = np.nonzero(tokens == stop_id)[0]
    return tokens[: hits[0]] if len(hits) else tokens


def _groups(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Indices grouped by equal length, then cut into batches."""
    by_length: dict[int, list[int]] = defaultdict(list)
    for i, n in enumerate(lengths):
        by_length[n].append(i)
    return [members[s : s + batch_size] for _, members in sorted(by_length.items())
            for s in range(0, len(members), batch_size)]


@torch.no_grad()
def evaluate_problems(model: GPT, task: str, problems: list[Problem], tokenizer: Tokenizer, device: str,
                      max_target_tokens: int, batch_size: int = 256) -> list[dict[str, Any]]:
    """One row per problem with everything the metrics need (see sweep.tasks.metrics)."""
    model.eval()
    seq_len = model.shape.seq_len
    stop = tokenizer.terminator_id
    prompts = [tokenizer.encode(p.prompt).astype(np.int64) for p in problems]
    answers = [tokenizer.encode(p.target + TERMINATOR).astype(np.int64) for p in problems]
    budget = max_target_tokens + 1
    for p, prompt, answer in zip(problems, prompts, answers):
        if len(prompt) + max(len(answer), budget) > seq_len:
            raise ValueError(f"task {task!r}: problem {p.prompt!r} with its answer exceeds the model's "
                             f"seq_len={seq_len}; raise model.seq_len or shorten the task")
    rows: list[dict[str, Any]] = [{"task": task, "sample_id": i, "prompt": p.prompt, "target": p.target,
                                   "answer": p.answer, "n_target_tokens": len(answers[i])}
                                  for i, p in enumerate(problems)]

    for idx in _groups([len(p) for p in prompts], batch_size):
        batch = torch.from_numpy(np.stack([prompts[i] for i in idx])).to(device)
        generated = greedy_generate(model, batch, budget, stop).cpu().numpy()
        for j, i in enumerate(idx):
            prediction = tokenizer.decode(_until_stop(generated[j], stop))
            rows[i]["prediction"] = prediction
            rows[i]["correct"] = problems[i].answer_in(prediction) == problems[i].answer

    for idx in _groups([len(p) + len(a) for p, a in zip(prompts, answers)], batch_size):
        full = torch.from_numpy(np.stack([np.concatenate([prompts[i], answers[i]]) for i in idx])).to(device)
        logits = model(full[:, :-1]).float()
        log_probs = torch.log_softmax(logits, dim=-1)
        for j, i in enumerate(idx):
            start = len(prompts[i]) - 1
            rows[i].update(teacher_forced_scores(log_probs[j, start:], full[j, start + 1 :]))
            if problems[i].choices:
                rows[i].update(_choice_scores(problems[i], log_probs[j, start], tokenizer))
    model.train()
    return rows


def teacher_forced_scores(log_probs: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Scores of one answer from the model's log-probabilities at its positions (T, V) and its tokens (T,).

    token_correct: share of positions whose argmax is the target token (ties go to the lowest id);
    target_logprob: sum of the target tokens' log-probabilities; token_brier: mean over positions of
    the Brier score against the one-hot target over the whole vocabulary, sum_v (p_v - 1[v = t])^2.
    """
    token_lp = log_probs.gather(-1, target[:, None])[:, 0]
    probs = log_probs.exp()
    brier = probs.pow(2).sum(-1) - 2 * token_lp.exp() + 1
    return {"token_correct": float((log_probs.argmax(-1) == target).float().mean()),
            "target_logprob": float(token_lp.sum()), "token_brier": float(brier.mean())}


def _choice_scores(problem: Problem, log_probs: torch.Tensor, tokenizer: Tokenizer) -> dict[str, Any]:
    """Multiple choice: the model's distribution over the option labels' first tokens (a tie goes to the
    first label), its argmax's correctness and its Brier score against the one-hot answer."""
    ids = [int(tokenizer.encode(label)[0]) for label in problem.choices]
    p = torch.softmax(log_probs[ids], dim=-1)
    truth = torch.tensor([label == problem.target for label in problem.choices], dtype=p.dtype, device=p.device)
    return {"mc_correct": problem.choices[int(p.argmax())] == problem.target,
            "mc_brier": float(((p - truth) ** 2).sum())}
