"""Results on object storage for real: a whole sweep and the offline analysis against a local
S3-compatible server (moto's server mode on loopback)."""

import os
import socket
import subprocess
import sys
import time

import pytest

moto_server = pytest.importorskip("moto.server")


@pytest.fixture
def s3(tmp_path):
    """An S3 endpoint on 127.0.0.1 with a bucket `sweeps`; AWS_* settings for the child processes."""
    import boto3

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    boto3.client("s3").create_bucket(Bucket="sweeps")
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    server.stop()


def keys(prefix: str) -> list[str]:
    import boto3

    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket="sweeps", Prefix=prefix)
    return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


def test_a_sweep_and_its_offline_analysis_on_s3(s3, tmp_path):
    env = {**os.environ, **s3}
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "sweep", "grid=tiny", "results_dir=s3://sweeps/team",
                           "tasks.n_eval=16", "logger=none", "analysis=false"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    sweep_seconds = time.monotonic() - t0
    assert proc.returncode == 0, proc.stdout + proc.stderr
    stored = keys("team/tiny/")
    for name in ("status.json", "run.parquet", "curves.parquet", "evals.parquet", "samples.parquet", "config.json"):
        assert sum(k.endswith(f"/{name}") for k in stored) == 2, (name, stored)
    assert "team/tiny/sweep.json" in stored
    assert not any(k.endswith("latest.pt") for k in stored)  # finished runs drop their checkpoints
    assert not (tmp_path / "s3:").exists() and not (tmp_path / "team").exists()  # nothing landed locally

    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "analysis", "s3://sweeps/team/tiny"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    analysis_seconds = time.monotonic() - t0
    assert proc.returncode == 0, proc.stdout + proc.stderr
    written = keys("team/tiny/analysis/")
    assert {"team/tiny/analysis/report.html", "team/tiny/analysis/fits.parquet"} <= set(written)

    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "sweep", "grid=tiny", "results_dir=s3://sweeps/team",
                           "tasks.n_eval=16", "logger=none", "analysis=false"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "2 already finished, 0 to train" in proc.stdout, proc.stdout
    print(f"\ns3 sweep (grid=tiny, 2 runs): {sweep_seconds:.1f} s; offline analysis {analysis_seconds:.1f} s; "
          f"rerun with nothing to train {time.monotonic() - t0:.1f} s")
