"""Leases: one worker trains a run at a time, across drivers; a dead owner's lease lapses."""

import threading
import time

from sweep.store.lease import acquire, held_by_other, live_lease
from sweep.store.runs import Store


def run_dir(tmp_path):
    return Store(str(tmp_path), "s").run_dir("r")


def test_a_live_lease_keeps_other_owners_out_and_lapses(tmp_path):
    run = run_dir(tmp_path)
    lease = acquire(run, "driver-a", seconds=0.6, settle=0)
    assert lease is not None and lease.mine()
    assert acquire(run, "driver-b", seconds=0.6, settle=0) is None
    assert held_by_other(run, "driver-b")["owner"] == "driver-a" and held_by_other(run, "driver-a") is None
    assert acquire(run, "driver-a", seconds=0.6, settle=0) is not None  # its own lost worker's lease
    time.sleep(0.7)
    assert live_lease(run) is None  # nobody renewed it: the owner died
    assert acquire(run, "driver-b", seconds=0.6, settle=0) is not None


def test_renewal_keeps_the_lease_alive_and_release_removes_it(tmp_path):
    run = run_dir(tmp_path)
    lease = acquire(run, "a", seconds=0.4, settle=0)
    with lease.renewing():
        time.sleep(1.0)  # 2.5 lease lengths
        assert lease.mine() and acquire(run, "b", seconds=0.4, settle=0) is None
    assert not run.exists("lease.json")


def test_of_two_owners_racing_for_a_run_exactly_one_wins(tmp_path):
    for attempt in range(5):
        run = Store(str(tmp_path), f"s{attempt}").run_dir("r")
        barrier, won = threading.Barrier(2), {}

        def take(owner, run=run, barrier=barrier, won=won):
            barrier.wait()
            won[owner] = acquire(run, owner, seconds=30, settle=0.3) is not None

        threads = [threading.Thread(target=take, args=(owner,)) for owner in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(won.values()) == 1, won
