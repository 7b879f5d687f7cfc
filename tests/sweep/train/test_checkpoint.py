"""Checkpoints are untrusted input: nothing in one may run code, and a bad one restarts the run."""

import dataclasses
import io
import os
import pickle

import pytest
import torch

from sweep.plan.grid import expand
from sweep.train.checkpoint import CheckpointRejected, first_usable, pack, unpack
from sweep.train.loop import train


class Marker:
    """Unpickling this with weights_only=False would create a file: proof that code ran."""

    path = ""

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def planted_checkpoint(marker_path: str) -> bytes:
    """A torch.save file whose pickle calls os.mkdir(marker_path) when unpickled unsafely."""
    evil = Marker()
    evil.path = marker_path
    buffer = io.BytesIO()
    torch.save({"model": {}, "optimizer": {}, "curves": [], "step": 1, "payload": evil}, buffer)
    return buffer.getvalue()


class Given:
    """A CheckpointIO holding one payload; records what training saves."""

    def __init__(self, payload):
        self.payload, self.saved = payload, []

    def candidates(self):
        return (lambda: self.payload,)

    def save(self, payload, step):
        self.saved.append(payload)


@pytest.fixture
def spec(compose_cfg):
    torch.set_num_threads(1)
    cfg = compose_cfg("grid=tiny", "grid.n_tokens=[2e4]", "train.val_points=2")
    return min(expand(cfg), key=lambda s: s.model.n_layer)


def test_the_planted_checkpoint_would_run_code_when_loaded_unsafely(tmp_path):
    # The negative control: the payload really is an exploit under weights_only=False.
    marker = tmp_path / "pwned"
    torch.load(io.BytesIO(planted_checkpoint(str(marker))), weights_only=False)
    assert marker.exists()


def test_unpack_refuses_a_checkpoint_that_would_run_code(tmp_path):
    marker = tmp_path / "pwned"
    with pytest.raises(CheckpointRejected, match="not a safe, complete checkpoint"):
        unpack(planted_checkpoint(str(marker)))
    assert not marker.exists()


def test_unpack_refuses_truncated_and_malformed_checkpoints():
    good = pack({"model": {"w": torch.ones(3)}, "optimizer": {}, "curves": [{"step": 1, "val_loss": None}],
                 "step": 5})
    assert unpack(good)["step"] == 5
    with pytest.raises(CheckpointRejected, match="not a safe, complete"):
        unpack(good[: len(good) // 2])
    with pytest.raises(CheckpointRejected, match="not a safe, complete"):
        unpack(b"")
    with pytest.raises(CheckpointRejected, match="expected the keys"):
        unpack(pack({"model": {}}))
    with pytest.raises(CheckpointRejected, match="malformed step"):
        unpack(pack({"model": {}, "optimizer": {}, "curves": [], "step": -1}))


def test_training_with_a_planted_checkpoint_restarts_from_scratch_and_runs_nothing(tmp_path, spec):
    marker = tmp_path / "pwned"
    reference = train(spec)
    with pytest.warns(UserWarning, match="checkpoint rejected, the run restarts from step 0"):
        result = train(spec, checkpoints=Given(planted_checkpoint(str(marker))))
    assert not marker.exists()
    assert result.resumed_from_step == 0 and "not a safe" in result.checkpoint_rejected
    assert result.final_val_loss == pytest.approx(reference.final_val_loss, rel=1e-6)


def test_a_checkpoint_of_another_shape_or_past_the_end_is_rejected_not_used(spec):
    other = dataclasses.replace(spec, model=dataclasses.replace(spec.model, d_model=64, n_head=2))
    io_ = Given(None)
    other = dataclasses.replace(other, train=dataclasses.replace(other.train, checkpoint_every_seconds=1e-9))
    train(other, checkpoints=io_)
    with pytest.warns(UserWarning, match="does not fit this run's model"):
        result = train(spec, checkpoints=Given(io_.saved[0]))
    assert result.resumed_from_step == 0 and result.checkpoint_rejected
    state = unpack(io_.saved[0])
    state["step"] = 10**6
    with pytest.warns(UserWarning, match="is not before the run's last step"):
        assert train(spec, checkpoints=Given(pack(state))).resumed_from_step == 0


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickle_protocol_objects_are_not_an_escape_hatch(tmp_path):
    # A raw pickle (not a torch zip file) with a reduce payload is refused as well.
    marker = tmp_path / "pwned2"
    evil = Marker()
    evil.path = str(marker)
    with pytest.raises(CheckpointRejected):
        unpack(pickle.dumps({"model": evil}))
    assert not marker.exists()


def test_the_first_usable_candidate_is_used_and_only_the_last_ones_rejection_counts():
    """A broken candidate is passed over when another follows (a WSD branch's own checkpoint, then its trunk's);
    the last one's rejection is the run's; nothing anywhere is no checkpoint."""
    good = pack({"model": {}, "optimizer": {}, "curves": [], "step": 7})
    read = []

    def candidate(payload):
        return lambda: read.append(payload) or payload

    assert first_usable([]) is None and first_usable([candidate(None), candidate(None)]) is None
    read.clear()
    assert first_usable([candidate(good), candidate(b"never read")])["step"] == 7
    assert read == [good]  # read only when asked
    assert first_usable([candidate(b"cut sho"), candidate(good)])["step"] == 7
    assert first_usable([candidate(b"cut sho"), candidate(None)]) is None
    with pytest.raises(CheckpointRejected, match="not a safe, complete checkpoint"):
        first_usable([candidate(good[:-9])])
    with pytest.raises(CheckpointRejected, match="expected the keys"):
        first_usable([candidate(b"cut sho"), candidate(pack({"step": 3}))])
