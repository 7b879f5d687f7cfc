"""Data-parallel training (two gloo ranks on this CPU) trains the run exactly as one process does."""

import dataclasses
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from sweep.plan.spec import RunSpec
from sweep.train.loop import train


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, world: int, port: int, spec_dict: dict, queue) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        result = train(RunSpec.from_dict(spec_dict))
        queue.put((rank, [c["train_loss"] for c in result.curves], result.final_val_loss,
                   result.world_size, result.micro_batch_size))
    finally:
        dist.destroy_process_group()


@pytest.fixture
def spec(data_parallel_spec):
    # Its moderate learning rate (2e-3): at high ones Adam amplifies float-rounding differences (the order of
    # the gradient sums) into visible ones within ten steps, for gradient accumulation in one process too.
    return data_parallel_spec(1e4, "train.log_every_steps=2")


@pytest.mark.parametrize("micro_batch_size", [None, 2])
def test_two_ranks_train_the_run_as_one_process_does(spec, micro_batch_size):
    spec = dataclasses.replace(spec, train=dataclasses.replace(spec.train, micro_batch_size=micro_batch_size))
    single = train(spec)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_rank, args=(r, 2, port, spec.to_dict(), queue)) for r in range(2)]
    for p in procs:
        p.start()
    results = sorted(queue.get(timeout=300) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    for _rank_index, losses, val_loss, world, micro in results:
        assert world == 2 and micro == (micro_batch_size or 4)
        # every rank reports the global mean loss, equal to the single-process run's
        assert losses == pytest.approx([c["train_loss"] for c in single.curves], rel=1e-4)
        assert val_loss == pytest.approx(single.final_val_loss, rel=1e-4)
