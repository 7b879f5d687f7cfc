"""Per-sample evaluation of a trained model on held-out task problems.

Two passes per batch of problems that share prompt and answer lengths:
  * teacher-forced: log-probabilities and argmax correctness of every answer token
    (answer = target + TERMINATOR), giving token accuracy and target log-likelihood;
  * greedy generation from the prompt until TERMINATOR, giving the prediction and exact match.
Everything a metric needs is a column of the returned rows; aggregation is in sweep.metrics.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import torch

from sweep.tasks.problem import TERMINATOR, Problem
from sweep.tasks.tokenizer import decode, encode
from sweep.train.model import GPT

_TERMINATOR_ID = int(encode(TERMINATOR)[0])


@torch.no_grad()
def greedy_generate(model: GPT, prompts: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
    """Greedy continuation of equal-length prompts (B, T) -> (B, max_new_tokens).

    Stops early once every row has produced the terminator; tokens after a row's terminator are
    left as generated and ignored by the caller.
    """
    seq = prompts
    done = torch.zeros(prompts.shape[0], dtype=torch.bool, device=prompts.device)
    out = []
    for _ in range(max_new_tokens):
        next_token = model(seq)[:, -1].argmax(-1)
        out.append(next_token)
        done |= next_token == _TERMINATOR_ID
        seq = torch.cat([seq, next_token[:, None]], dim=1)
        if bool(done.all()):
            break
    return torch.stack(out, dim=1)


def _cut_at_terminator(tokens: np.ndarray) -> str:
    hits = np.nonzero(tokens == _TERMINATOR_ID)[0]
    return decode(tokens[: hits[0]] if len(hits) else tokens)


@torch.no_grad()
def evaluate_problems(model: GPT, task: str, problems: list[Problem], device: str,
                      max_target_chars: int, batch_size: int = 256) -> list[dict[str, Any]]:
    """One row per problem: prediction, exact match, per-token correctness and log-likelihood."""
    model.eval()
    seq_len = model.shape.seq_len
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    encoded = [(encode(p.prompt), encode(p.target + TERMINATOR)) for p in problems]
    for i, (prompt, answer) in enumerate(encoded):
        if len(prompt) + max(len(answer), max_target_chars + 1) > seq_len:
            raise ValueError(f"task {task!r}: problem {problems[i].prompt!r} with its answer exceeds "
                             f"the model's seq_len={seq_len}")
        groups[(len(prompt), len(answer))].append(i)

    rows: list[dict[str, Any] | None] = [None] * len(problems)
    for (prompt_len, answer_len), members in sorted(groups.items()):
        for start in range(0, len(members), batch_size):
            idx = members[start : start + batch_size]
            full = torch.from_numpy(np.stack([np.concatenate(encoded[i]) for i in idx]).astype(np.int64)).to(device)
            logits = model(full[:, :-1])[:, prompt_len - 1 :].float()
            answer = full[:, prompt_len:]
            logprobs = torch.log_softmax(logits, dim=-1).gather(-1, answer[..., None])[..., 0]
            token_correct = (logits.argmax(-1) == answer).float()
            generated = greedy_generate(model, full[:, :prompt_len], max_target_chars + 1).cpu().numpy()
            for j, i in enumerate(idx):
                prediction = _cut_at_terminator(generated[j])
                rows[i] = {
                    "task": task,
                    "sample_id": i,
                    "prompt": problems[i].prompt,
                    "target": problems[i].target,
                    "prediction": prediction,
                    "correct": prediction == problems[i].target,
                    "token_correct": float(token_correct[j].mean()),
                    "target_logprob": float(logprobs[j].sum()),
                    "n_target_tokens": answer_len,
                }
    model.train()
    return rows  # type: ignore[return-value]
