import pytest

from sweep.config.schema import LoggerConfig
from sweep.store.tracking import WandbSink, decide_wandb_mode


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for key in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    return monkeypatch


def test_no_key_means_offline(clean_env):
    mode, reason = decide_wandb_mode(LoggerConfig())
    assert mode == "offline" and "no W&B API key" in reason


def test_key_but_unreachable_server_means_offline_quickly(clean_env):
    import time

    clean_env.setenv("WANDB_API_KEY", "x" * 40)
    clean_env.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    t0 = time.perf_counter()
    mode, reason = decide_wandb_mode(LoggerConfig())
    assert mode == "offline" and "unreachable" in reason
    assert time.perf_counter() - t0 < 5


def test_disabled_and_environment_overrides(clean_env):
    assert decide_wandb_mode(LoggerConfig(kind="none"))[0] == "disabled"
    clean_env.setenv("WANDB_MODE", "disabled")
    assert decide_wandb_mode(LoggerConfig())[0] == "disabled"


def test_offline_sink_writes_a_real_offline_run(clean_env, tmp_path):
    clean_env.setenv("WANDB_MODE", "")  # an empty variable must not break the sink
    sink = WandbSink(mode="offline", project="p", entity=None, group="g", run_id="N1k-D2k-s0-abc",
                     config={"a": 1}, directory=str(tmp_path / "wb"))
    assert sink.run is not None
    sink.log({"step": 1, "train_loss": 2.0, "val_loss": None})
    sink.close()
    assert list((tmp_path / "wb" / "wandb").glob("offline-run-*N1k-D2k-s0-abc/*.wandb"))


def test_broken_wandb_never_raises(clean_env, tmp_path):
    sink = WandbSink(mode="not-a-mode", project="p", entity=None, group="g", run_id="r",
                     config={}, directory=str(tmp_path))
    assert sink.run is None
    sink.log({"step": 1, "train_loss": 1.0})
    sink.close()


def test_a_resumed_run_keeps_one_offline_w_and_b_run_with_every_step_once(clean_env, tmp_path):
    from sweep.store.tracking import offline_runs, sync_command

    directory = str(tmp_path / "wb")
    first = WandbSink(mode="offline", project="p", entity=None, group="g", run_id="N1k-D2k-s0-abc",
                      config={}, directory=directory)
    for step in range(1, 6):
        first.log({"step": step, "train_loss": 1.0 / step})
    first.close()
    other = WandbSink(mode="offline", project="p", entity=None, group="g", run_id="N1k-D2k-s0-other",
                      config={}, directory=directory)
    other.close()
    # the run is retried: the trainer replays the checkpoint's curves (steps 1-3), then goes on
    again = WandbSink(mode="offline", project="p", entity=None, group="g", run_id="N1k-D2k-s0-abc",
                      config={}, directory=directory)
    for step in range(1, 9):
        again.log({"step": step, "train_loss": 1.0 / step})
    again.close()
    runs = offline_runs(directory, "N1k-D2k-s0-abc")
    assert len(runs) == 1 and len(offline_runs(directory)) == 2  # the other run's directory is untouched
    assert sync_command(directory) == f"wandb sync --include-offline {tmp_path / 'wb' / 'wandb'}/offline-run-*"


def test_training_replays_the_resumed_curves_to_its_sinks(compose_cfg):
    import dataclasses

    import torch

    from sweep.plan.grid import expand
    from sweep.train.loop import train

    torch.set_num_threads(1)
    spec = min(expand(compose_cfg("grid=tiny", "train.log_every_steps=2")), key=lambda s: s.model.n_layer)
    spec = dataclasses.replace(spec, train=dataclasses.replace(spec.train, checkpoint_every_seconds=1e-9))
    saved = {}

    class StopAfterFirstSave:
        def candidates(self):
            return (lambda: saved.get("payload"),)

        def save(self, payload, step):
            if "payload" not in saved:
                saved["payload"] = payload
                raise KeyboardInterrupt

    class Rows:
        def __init__(self):
            self.steps = []

        def log(self, row):
            self.steps.append(row["step"])

    import pytest

    from sweep.train.loop import Interrupted

    with pytest.raises(Interrupted):
        train(spec, checkpoints=StopAfterFirstSave())
    rows = Rows()
    result = train(spec, sink=rows, checkpoints=StopAfterFirstSave())
    assert result.resumed_from_step > 0
    assert rows.steps == sorted(set(rows.steps)) == [c["step"] for c in result.curves]  # each step once, from 2


def test_tests_never_reach_the_users_accounts(isolated_home, tmp_path):
    """HOME is a fresh directory (no ~/.netrc with the user's API key), the user's WANDB_* settings are gone and
    W&B is offline, in this process and in every subprocess a test starts (the CLI tests, Ray's workers)."""
    import json
    import os
    import pwd
    import subprocess
    import sys

    assert os.environ["HOME"] == str(isolated_home) != pwd.getpwuid(os.getuid()).pw_dir
    # (wandb itself sets a few internal WANDB_* variables once a test has used it: those are not the user's)
    assert not {"WANDB_API_KEY", "WANDB_BASE_URL", "WANDB_ENTITY", "WANDB_PROJECT", "NETRC"} & set(os.environ)
    assert os.environ["WANDB_MODE"] == "offline"
    assert not (isolated_home / ".netrc").exists()
    assert decide_wandb_mode(LoggerConfig(mode="online"))[0] == "offline"
    code = ("import json, os; from pathlib import Path; "
            "print(json.dumps({'home': os.environ['HOME'], 'netrc': Path('~/.netrc').expanduser().exists(), "
            "'key': os.environ.get('WANDB_API_KEY'), 'mode': os.environ.get('WANDB_MODE')}))")
    child = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                      cwd=tmp_path).stdout)
    assert child == {"home": str(isolated_home), "netrc": False, "key": None, "mode": "offline"}
