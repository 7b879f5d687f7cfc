import dataclasses

import pytest
import torch

from sweep.grid import expand
from sweep.train.checkpoint import unpack
from sweep.train.loop import Diverged, train


@pytest.fixture
def spec(compose_cfg):
    torch.set_num_threads(1)
    cfg = compose_cfg("grid=tiny", "grid.n_tokens=[6e4]", "train.val_points=3", "train.log_every_steps=5")
    return min(expand(cfg), key=lambda s: s.model.n_layer)


def test_training_lowers_loss_and_records_curves(spec):
    result = train(spec)
    curves = result.curves
    assert curves[-1]["step"] == spec.train.n_steps
    assert curves[-1]["tokens"] == spec.train.n_tokens
    assert curves[0]["train_loss"] > curves[-1]["train_loss"] + 0.5
    assert [c["val_loss"] is not None for c in curves].count(True) == 3
    assert result.final_val_loss < 5.0 < torch.log(torch.tensor(256.0)).item() + 0.1
    assert result.tokens_per_second > 0 and result.mfu is None  # no MFU on CPU


class InterruptAfterSave:
    """A CheckpointIO that stops training (as a killed worker would) right after the first save."""

    def __init__(self):
        self.payload = None

    def load(self):
        return self.payload

    def save(self, payload, step):
        self.payload = payload
        raise KeyboardInterrupt


def test_resume_from_checkpoint_reproduces_the_uninterrupted_run(spec):
    spec = dataclasses.replace(spec, train=dataclasses.replace(spec.train, checkpoint_every_seconds=1e-9))
    reference = train(spec)
    io = InterruptAfterSave()
    with pytest.raises(KeyboardInterrupt):
        train(spec, checkpoints=io)
    saved_step = unpack(io.payload)["step"]
    assert 0 < saved_step < spec.train.n_steps

    class Keep(InterruptAfterSave):
        def save(self, payload, step):
            self.payload = payload

    keep = Keep()
    keep.payload = io.payload
    resumed = train(spec, checkpoints=keep)
    assert resumed.resumed_from_step == saved_step
    assert resumed.final_val_loss == pytest.approx(reference.final_val_loss, rel=1e-6)
    assert [c["step"] for c in resumed.curves] == [c["step"] for c in reference.curves]


def test_divergence_is_detected(spec):
    spec = dataclasses.replace(spec, train=dataclasses.replace(spec.train, diverge_loss=1.0))
    with pytest.raises(Diverged) as info:
        train(spec)
    assert info.value.curves and "limit 1.0" in str(info.value)


def test_gradient_accumulation_gives_the_same_training(spec):
    # batch 8 in one piece vs four micro-batches of 2: the same gradient at every step (fp32, CPU)
    spec = dataclasses.replace(spec, train=dataclasses.replace(spec.train, batch_size=8, n_steps=12, val_every_steps=6,
                                                               n_tokens=12 * 8 * spec.model.seq_len))
    whole = train(spec)
    split = train(dataclasses.replace(spec, train=dataclasses.replace(spec.train, micro_batch_size=2)))
    assert whole.extra["accumulation_steps"] == 1 and split.extra["accumulation_steps"] == 4
    assert split.final_train_loss == pytest.approx(whole.final_train_loss, rel=1e-5)
    assert split.final_val_loss == pytest.approx(whole.final_val_loss, rel=1e-5)


def test_a_memory_share_too_small_for_the_batch_accumulates(spec):
    from sweep.train.hardware import memory_bytes
    from sweep.train.memory import step_bytes

    spec = dataclasses.replace(spec, train=dataclasses.replace(spec.train, batch_size=8, n_steps=2, val_every_steps=2,
                                                               n_tokens=2 * 8 * spec.model.seq_len))
    fits_two = step_bytes(spec.model, 2, 4) / 0.85 * 1.01  # room for two sequences, not four
    result = train(spec, memory_fraction=fits_two / memory_bytes("cpu"))
    assert result.extra["micro_batch_size"] == 2 and result.extra["accumulation_steps"] == 4


def test_batches_built_by_worker_processes_train_identically(spec):
    inline = train(spec)
    prefetched = train(dataclasses.replace(spec, train=dataclasses.replace(spec.train, data_workers=2)))
    assert prefetched.extra["data_workers"] == 2
    assert [c["train_loss"] for c in prefetched.curves] == [c["train_loss"] for c in inline.curves]
    assert prefetched.final_val_loss == inline.final_val_loss
