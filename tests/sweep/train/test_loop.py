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

    def save(self, payload):
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
        def save(self, payload):
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
