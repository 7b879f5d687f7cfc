import dataclasses

import pytest
import torch

from sweep.plan.grid import expand
from sweep.train.checkpoint import unpack
from sweep.train.loop import Diverged, train
from sweep.train.resume import BranchStartMissing


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


def test_a_seeded_run_trains_to_its_pinned_losses(spec):
    """Losses of one seeded fp32 run on one CPU thread, two micro-batches a step: any change to what a step
    computes (the batch, its split, the lr, clipping, the optimizer) or to where the loop reads the loss moves
    them."""
    spec = _plan(spec, precision="fp32", compile="false", batch_size=4, micro_batch_size=2, n_steps=20,
                 val_every_steps=10, n_tokens=20 * 4 * spec.model.seq_len)
    result = train(spec)
    assert result.accumulation_steps == 2 and not result.compiled and result.precision == "fp32"
    assert [c["step"] for c in result.curves] == [5, 10, 15, 20]
    assert [c["train_loss"] for c in result.curves] == pytest.approx(
        [5.415703773498535, 4.809674263000488, 3.9485442638397217, 3.4563300609588623], rel=1e-6)
    assert result.final_val_loss == pytest.approx(3.3718197345733643, rel=1e-6)


class InterruptAfterSave:
    """A CheckpointIO that stops training (as a killed worker would) right after the first save."""

    def __init__(self):
        self.payload = None

    def candidates(self):
        return (lambda: self.payload,)

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
                                                               n_tokens=12 * 8 * spec.model.seq_len, precision="fp32"))
    whole = train(spec)
    split = train(dataclasses.replace(spec, train=dataclasses.replace(spec.train, micro_batch_size=2)))
    assert whole.accumulation_steps == 1 and split.accumulation_steps == 4
    assert split.final_train_loss == pytest.approx(whole.final_train_loss, rel=1e-5)
    assert split.final_val_loss == pytest.approx(whole.final_val_loss, rel=1e-5)


def test_a_memory_share_too_small_for_the_batch_accumulates(spec):
    from sweep.train.hardware import memory_bytes
    from sweep.train.memory import step_bytes

    spec = dataclasses.replace(spec, train=dataclasses.replace(spec.train, batch_size=8, n_steps=2, val_every_steps=2,
                                                               n_tokens=2 * 8 * spec.model.seq_len))
    fits_two = step_bytes(spec.model, 2, 4) / 0.85 * 1.01  # room for two sequences, not four
    result = train(spec, memory_fraction=fits_two / memory_bytes("cpu"))
    assert result.micro_batch_size == 2 and result.accumulation_steps == 4


def test_batches_built_by_worker_processes_train_identically(spec):
    inline = train(spec)
    prefetched = train(dataclasses.replace(spec, train=dataclasses.replace(spec.train, data_workers=2)))
    assert prefetched.data_workers == 2
    assert [c["train_loss"] for c in prefetched.curves] == [c["train_loss"] for c in inline.curves]
    assert prefetched.final_val_loss == inline.final_val_loss


# ---- what the loop applies: learning rate per step, weight-decay groups, gradient clipping -----------------

def _plan(spec, **changes):
    return dataclasses.replace(spec, train=dataclasses.replace(spec.train, **changes))


@pytest.fixture
def optimizer_steps():
    """Records every optimizer step taken meanwhile (a global torch pre-step hook: the loop is not touched):
    each group's lr, weight decay and parameters, and the gradients as the optimizer is about to use them."""
    records = []

    def hook(optimizer, args, kwargs):
        grads = [p.grad.detach().flatten().clone() for g in optimizer.param_groups for p in g["params"]
                 if p.grad is not None]
        records.append({"lr": [g["lr"] for g in optimizer.param_groups],
                        "weight_decay": [g["weight_decay"] for g in optimizer.param_groups],
                        "params": [list(g["params"]) for g in optimizer.param_groups],
                        "grad": torch.cat(grads)})

    from torch.optim.optimizer import register_optimizer_step_pre_hook

    handle = register_optimizer_step_pre_hook(hook)
    yield records
    handle.remove()


class Rows:
    def __init__(self):
        self.rows = []

    def log(self, row):
        self.rows.append(row)


@pytest.mark.parametrize("schedule, mid_lr", [("cosine", 0.55e-3), ("linear", 0.55e-3), ("wsd", 1e-3)])
def test_the_optimizer_applies_the_scheduled_learning_rate_at_every_step(spec, optimizer_steps, schedule, mid_lr):
    """21 steps, 4 of warm-up, peak 1e-3, floor 10%: the lr each optimizer step used, written out by hand."""
    spec = _plan(spec, n_steps=21, n_tokens=21 * 2 * spec.model.seq_len, batch_size=2, lr=1e-3, warmup_steps=4,
                 final_lr_fraction=0.1, schedule=schedule, log_every_steps=1, val_every_steps=21)
    sink = Rows()
    train(spec, sink=sink)
    lrs = [r["lr"] for r in optimizer_steps]
    assert len(lrs) == 21 and all(a == b for a, b in lrs)  # both groups, every step
    applied = [a for a, _ in lrs]
    assert applied[:4] == pytest.approx([0.25e-3, 0.5e-3, 0.75e-3, 1e-3])  # linear warm-up, (step + 1) / 4
    assert applied[4] == pytest.approx(1e-3)  # decay starts at the peak
    assert applied[12] == pytest.approx(mid_lr)  # half-way through the 16 decay steps
    assert applied[20] == pytest.approx(1e-4)  # the floor exactly at the last step (the token budget)
    assert all(a >= b - 1e-15 for a, b in zip(applied[3:], applied[4:]))  # never rises after the warm-up
    assert [r["lr"] for r in sink.rows] == applied  # the curves record the lr that was applied


def test_weight_decay_groups_are_the_matrices_and_embedding_not_the_gains(spec, optimizer_steps):
    from sweep.train.model import GPT
    from sweep.train.steps import param_groups

    model = GPT(spec.model)
    names = {id(p): n for n, p in model.named_parameters()}
    decay, no_decay = param_groups(model, 0.3)
    assert decay["weight_decay"] == 0.3 and no_decay["weight_decay"] == 0.0
    assert sorted(names[id(p)] for p in decay["params"]) == [
        "blocks.0.attn.proj.weight", "blocks.0.attn.qkv.weight", "blocks.0.mlp.down.weight",
        "blocks.0.mlp.up.weight", "tok_emb.weight"]  # the embedding (tied to the output layer) decays
    assert sorted(names[id(p)] for p in no_decay["params"]) == ["blocks.0.norm1.weight", "blocks.0.norm2.weight",
                                                               "norm.weight"]
    # ... with a real effect: one AdamW step on zero gradients only shrinks the decayed group, by lr x wd
    optimizer = torch.optim.AdamW([decay, no_decay], lr=0.1)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    for n, p in model.named_parameters():
        factor = 1 - 0.1 * 0.3 if p.dim() >= 2 else 1.0
        assert torch.allclose(p.detach(), before[n] * factor), n
    # and the loop trains with exactly these groups and the run's weight decay
    optimizer_steps.clear()  # (the step above was recorded too)
    train(_plan(spec, n_steps=1, n_tokens=2 * spec.model.seq_len, val_every_steps=1, weight_decay=0.2))
    [step] = optimizer_steps
    assert step["weight_decay"] == [0.2, 0.0]
    assert [p.dim() >= 2 for p in step["params"][0]] == [True] * 5
    assert [p.dim() for p in step["params"][1]] == [1, 1, 1]


def test_gradient_clipping_bounds_the_norm_and_keeps_the_direction(spec, optimizer_steps):
    one_step = dict(n_steps=1, n_tokens=2 * spec.model.seq_len, val_every_steps=1)
    train(_plan(spec, grad_clip=0.0, **one_step))  # clipping off: the raw gradient
    raw = optimizer_steps[-1]["grad"]
    assert raw.norm() > 0.01  # far above the clip below: clipping has work to do
    train(_plan(spec, grad_clip=1e-3, **one_step))  # same seed, same batch: the same raw gradient, clipped
    clipped = optimizer_steps[-1]["grad"]
    assert clipped.norm().item() == pytest.approx(1e-3, rel=1e-4)
    assert torch.allclose(clipped, raw * (1e-3 / raw.norm()), rtol=1e-4, atol=1e-9)  # scaled, not bent
    train(_plan(spec, grad_clip=1e3, **one_step))  # a clip above the norm leaves the gradient alone
    assert torch.allclose(optimizer_steps[-1]["grad"], raw)


def test_clipping_holds_over_a_whole_run(spec, optimizer_steps):
    train(_plan(spec, grad_clip=0.05, n_steps=12, n_tokens=12 * 2 * spec.model.seq_len, val_every_steps=12))
    norms = [r["grad"].norm().item() for r in optimizer_steps]
    assert len(norms) == 12 and max(norms) <= 0.05 * (1 + 1e-4)


# ---- WSD branches ---------------------------------------------------------------------------------------

class MemoryCheckpoints:
    """A CheckpointIO in memory, keeping a trunk's branch points."""

    def __init__(self, payload=None):
        self.payload, self.points = payload, {}

    def candidates(self):
        return (lambda: self.payload,)

    def save(self, payload, step):
        self.payload = payload

    def save_branch_point(self, payload, step):
        self.points[step] = payload


@pytest.fixture
def trunk_and_branch(compose_cfg):
    torch.set_num_threads(1)
    cfg = compose_cfg("grid=tiny", "grid.models=[{name: t1, n_layer: 1, d_model: 32, n_head: 2}]",
                      "grid.n_tokens=[2e4,4e4]", "train.schedule=wsd", "grid.branches=true",
                      "grid.branch_plan=largest", "train.val_points=2", "train.log_every_steps=5")
    specs = expand(cfg)
    return next(s for s in specs if s.role == "trunk"), next(s for s in specs if s.role == "branch")


def test_a_branch_from_its_trunk_checkpoint_is_the_run_trained_from_scratch(trunk_and_branch):
    """The trunk keeps its state at the branch step; the branch resumes there and decays to its budget.
    Same data (batches are a function of seed and step), same learning rates up to the branch step: the
    branch's final loss is that of the same wsd run trained from step 0."""
    trunk, branch = trunk_and_branch
    io = MemoryCheckpoints()
    trunk_result = train(trunk, checkpoints=io)
    assert sorted(io.points) == list(trunk.branch_points) == [branch.branch_step]
    assert unpack(io.points[branch.branch_step])["step"] == branch.branch_step
    assert trunk_result.curves[-1]["step"] == trunk.train.n_steps

    result = train(branch, checkpoints=MemoryCheckpoints(io.points[branch.branch_step]))
    assert result.resumed_from_step == branch.branch_step
    assert result.curves[-1]["step"] == branch.train.n_steps  # ends at its own budget
    assert result.curves[-1]["tokens"] == branch.train.n_tokens
    assert result.curves[-1]["lr"] == pytest.approx(branch.train.lr * branch.train.final_lr_fraction)
    scratch = dataclasses.replace(branch, trunk_run_id=None, branch_step=None)
    reference = train(scratch)
    assert result.final_val_loss == reference.final_val_loss  # bit for bit on one CPU thread
    assert [r["lr"] for r in result.curves] == [r["lr"] for r in reference.curves]


def test_a_branch_never_trains_from_step_0_without_its_trunk_checkpoint(trunk_and_branch):
    _, branch = trunk_and_branch
    with pytest.raises(BranchStartMissing, match=f"step {branch.branch_step}"):
        train(branch)
    with pytest.raises(BranchStartMissing, match="not a safe, complete checkpoint"):
        train(branch, checkpoints=MemoryCheckpoints(b"not a checkpoint"))


def test_a_branch_trains_its_trunks_stable_phase_itself_only_when_told(trunk_and_branch):
    """No trunk checkpoint: the branch fails (BranchStartMissing), unless the driver's store says the trunk is
    done without it (first_step=0): then it trains from step 0, the same run as from the trunk's checkpoint."""
    _, branch = trunk_and_branch
    with pytest.raises(BranchStartMissing, match=f"branch-{branch.branch_step}.pt"):
        train(branch, checkpoints=MemoryCheckpoints())
    result = train(branch, checkpoints=MemoryCheckpoints(), first_step=0)
    assert result.resumed_from_step == 0 and result.curves[-1]["step"] == branch.train.n_steps
    reference = train(dataclasses.replace(branch, trunk_run_id=None, branch_step=None))
    assert result.final_val_loss == reference.final_val_loss
