"""torch.compile for a worker that trains many runs, one after another, in one process.

Dynamo keeps compiled code per Python code object (the loss module's `forward`) with at most
`torch._dynamo.config.recompile_limit` (8) variants; past that it silently runs eagerly, so a worker
that compiles a ninth model shape would train every later run at eager speed. This module keeps
one variant alive at a time: consecutive runs of the same compile key (shape, micro-batch,
precision, device) reuse it outright (no tracing: a new model of the same shape passes its guards),
and a new key first clears dynamo's in-memory caches. What stays is inductor's on-disk caches
(FX graph and AOTAutograd caches, on by default), so a shape this machine compiled before is back
in about a second instead of 20-40 s. `dynamic=False`: one static graph per key, never the slower
dynamic-shape kernels dynamo falls back to after a second shape.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

import torch

BACKEND = "inductor"  # tests swap in "eager": the same dynamo caching, no code generation
_state: dict[str, Hashable] = {}


def compile_loss(loss: torch.nn.Module, key: Hashable) -> Callable:
    """`torch.compile(loss)` (a module computing the training loss), clearing dynamo's caches first
    when `key` changed."""
    import torch._dynamo

    if _state.get("key") != key:
        torch._dynamo.reset()
        _state["key"] = key
    return torch.compile(loss, dynamic=False, backend=BACKEND)


def forget() -> None:
    """Clear the caches (tests; or after a run failed mid-compile)."""
    import torch._dynamo

    torch._dynamo.reset()
    _state.clear()
