"""The run-time WSD rules: a branch point goes once every branch that starts from it is finished."""

import dataclasses

from sweep.plan.grid import expand
from sweep.plan.run_id import run_id
from sweep.store.runs import Store

BRANCHES = ("grid=tiny", "grid.models=[{name: t1, n_layer: 1, d_model: 32, n_head: 2}]", "train.schedule=wsd",
            "grid.branches=true", "grid.branch_plan=largest")  # one trunk per size, whatever batches the budgets derive



def test_a_branch_point_is_deleted_once_every_branch_that_starts_from_it_is_finished(tmp_path, compose_cfg):
    from sweep.driver.branch_points import BranchPoints
    from sweep.store.runs import CheckpointFile

    trunk, *branches = expand(compose_cfg(*BRANCHES, "grid.n_tokens=[2e4,3e4,5e4]"))
    twin = dataclasses.replace(branches[0], n_eval=branches[0].n_eval + 1)  # another branch from the same point
    store = Store(str(tmp_path), "s")
    points = CheckpointFile(store.run_dir(run_id(trunk)))
    for step in trunk.branch_points:
        points.save_branch_point(b"x", step)
    rule = BranchPoints([trunk, *branches, twin], store)
    assert rule.release() == []  # nothing finished
    for spec, state in ((branches[0], "done"), (branches[1], "done"), (twin, "failed")):
        store.run_dir(run_id(spec)).end_attempt(run_id(spec), state)
    assert rule.release(branches[1]) == [(run_id(trunk), branches[1].branch_step)]
    assert points.has_branch_point(branches[0].branch_step)  # the failed twin still needs it
    store.run_dir(run_id(twin)).end_attempt(run_id(twin), "done")
    assert rule.release(trunk) == [(run_id(trunk), branches[0].branch_step)]
    assert not any(points.has_branch_point(step) for step in trunk.branch_points) and rule.release() == []
