import pytest

from sweep.config import LoggerConfig
from sweep.tracking import WandbSink, decide_wandb_mode


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
