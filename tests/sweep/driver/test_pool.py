"""Which run goes to which worker: reuse per resource shape, bounded by capacity, narrow retries."""

import itertools

from sweep.driver.pool import Job, RunPool


class FakeCluster:
    """Workers are integers; a call's reference is (worker, job key)."""

    def __init__(self, capacity):
        self.cap, self.ids = capacity, itertools.count()
        self.started, self.stopped, self.calls = [], [], []

    def pool(self, max_retries=0):
        return RunPool(start=self.start, call=self.call, stop=self.stopped.append,
                       capacity=lambda shape: self.cap[shape], max_retries=max_retries)

    def start(self, shape):
        worker = next(self.ids)
        self.started.append((worker, shape))
        return worker

    def call(self, worker, job):
        self.calls.append((worker, job.key))
        return (worker, job.key)


def test_runs_reuse_workers_of_their_shape_within_capacity_and_idle_shapes_are_released():
    cluster = FakeCluster({"big": 1, "small": 2})
    pool = cluster.pool()
    for key, shape in [("b1", "big"), ("b2", "big"), ("s1", "small"), ("s2", "small"), ("s3", "small")]:
        pool.submit(Job(key, shape, None))
    pool.dispatch()
    assert [shape for _, shape in cluster.started] == ["big", "small", "small"]  # capacity bounds each shape
    assert sorted(k for _, k in cluster.calls) == ["b1", "s1", "s2"]
    big_worker = next(w for w, s in cluster.started if s == "big")

    pool.finished((big_worker, "b1"))
    pool.dispatch()
    assert cluster.calls[-1] == (big_worker, "b2")  # the same worker takes the next run of its shape
    assert len(cluster.started) == 3

    pool.finished((big_worker, "b2"))
    pool.dispatch()  # no big runs left: its worker is released for the others
    assert cluster.stopped == [big_worker]
    small = [w for w, s in cluster.started if s == "small"]
    pool.finished((small[0], "s1"))
    pool.dispatch()
    assert cluster.calls[-1] == (small[0], "s3") and len(cluster.started) == 3


def test_lost_workers_and_transient_errors_retry_at_the_front_until_the_limit():
    cluster = FakeCluster({"s": 1})
    pool = cluster.pool(max_retries=1)
    pool.submit(Job("a", "s", None))
    pool.submit(Job("b", "s", None))
    pool.dispatch()
    (first,) = cluster.started
    assert pool.failed((first[0], "a"), worker_lost=True) is None  # first failure: queued again, in front
    assert [j.key for j in pool.queue] == ["a", "b"]
    pool.dispatch()
    second = cluster.started[-1][0]
    assert second != first[0] and cluster.calls[-1] == (second, "a")  # a new worker replaced the lost one
    job = pool.failed((second, "a"), worker_lost=False)  # a transient error, second attempt: out of retries
    assert job is not None and job.key == "a" and job.attempts == 2
    pool.dispatch()
    assert cluster.calls[-1] == (second, "b")  # the worker survived the transient error and is reused


def test_shutdown_stops_idle_and_busy_workers():
    cluster = FakeCluster({"s": 2})
    pool = cluster.pool()
    for key in "abc":
        pool.submit(Job(key, "s", None))
    pool.dispatch()
    pool.finished((0, "a"))
    pool.shutdown()
    assert sorted(cluster.stopped) == [0, 1] and not pool.running and not pool.idle
