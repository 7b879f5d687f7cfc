"""Fault injection for CLI tests, in every process of a sweep (the driver and Ray's workers alike).

A test puts this directory on PYTHONPATH and SWEEP_TEST_FAULTS=<plan.json> in the environment of
`python -m sweep`; Python imports `sitecustomize` at start-up in the driver and in every Ray worker
(they inherit the environment). Nothing of the project is edited: once `sweep.train.loop` or
`analysis.report.pipeline` is imported, its `train` / `analyze_sweep` is wrapped to follow the plan:

    {"dir": "<flags directory>",
     "transient": "<label>",    the run of this size label raises ConnectionError on its first attempt
     "fail": "<label>",         the run of this size label raises ValueError (a bug in its own code)
     "fail_once": true,         ... only on its first attempt (a flag file remembers it)
     "analysis_fails": true}    analyze_sweep raises RuntimeError

Each injected fault leaves a file in "dir" (transient-<label>, fail-<label>) so the test can count them.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import json
import os
import sys

PLAN = os.environ.get("SWEEP_TEST_FAULTS")


def _plan() -> dict:
    with open(PLAN) as handle:
        return json.load(handle)


def _first_time(name: str) -> bool:
    """True the first time `name` is asked for across all processes (O_EXCL: one winner)."""
    try:
        os.close(os.open(os.path.join(_plan()["dir"], name), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False


def _wrap_train(original):
    def train(spec, *args, **kwargs):
        plan = _plan()
        if spec.label == plan.get("transient") and _first_time(f"transient-{spec.label}"):
            raise ConnectionError("injected: the object store hiccupped")
        if spec.label == plan.get("fail"):
            if _first_time(f"fail-{spec.label}") or not plan.get("fail_once"):
                raise ValueError("injected: a bug in this run's own code")
        return original(spec, *args, **kwargs)
    return train


def _wrap_analysis(original):
    def analyze_sweep(*args, **kwargs):
        if _plan().get("analysis_fails"):
            raise RuntimeError("injected: the analysis broke")
        return original(*args, **kwargs)
    return analyze_sweep


PATCHES = {"sweep.train.loop": ("train", _wrap_train), "analysis.report.pipeline": ("analyze_sweep", _wrap_analysis)}


class _Patcher(importlib.abc.MetaPathFinder):
    """Finds the real module with the other finders, and patches it right after it has executed."""

    def find_spec(self, name, path=None, target=None):
        if name not in PATCHES:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        attribute, wrap = PATCHES[name]
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            setattr(module, attribute, wrap(getattr(module, attribute)))

        spec.loader.exec_module = exec_module
        return spec


if PLAN:
    sys.meta_path.insert(0, _Patcher())
