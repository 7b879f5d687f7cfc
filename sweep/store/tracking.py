"""Metric sinks: where a run's curves are mirrored besides Parquet (which is the truth).

The W&B mode is decided once per sweep by the driver (`decide_wandb_mode`) and handed to every run,
so an unreachable server costs one short probe, not an init timeout per run. W&B is imported lazily
and every call into it is guarded: a W&B failure is reported once and never fails a run.
"""

from __future__ import annotations

import logging
import netrc
import os
import shutil
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from sweep.config.schema import LoggerConfig

log = logging.getLogger(__name__)

ONLINE, OFFLINE, DISABLED = "online", "offline", "disabled"


def _has_api_key(host: str) -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def _reachable(host: str, port: int, seconds: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=seconds):
            return True
    except OSError:
        return False


def decide_wandb_mode(cfg: LoggerConfig) -> tuple[str, str]:
    """(mode, reason) for the whole sweep: online only with a key and a server that answers."""
    if cfg.kind == "none" or cfg.mode == DISABLED:
        return DISABLED, "logger disabled in config"
    env_mode = os.environ.get("WANDB_MODE", "").lower()
    if env_mode in (OFFLINE, DISABLED, "dryrun"):
        return (DISABLED if env_mode == DISABLED else OFFLINE), f"WANDB_MODE={env_mode} in the environment"
    if cfg.mode == OFFLINE:
        return OFFLINE, "logger.mode=offline"
    url = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai"))
    host, port = url.hostname or "api.wandb.ai", url.port or (443 if url.scheme == "https" else 80)
    if not _has_api_key(host):
        return OFFLINE, "no W&B API key (set WANDB_API_KEY or run `wandb login` to sync online)"
    if not _reachable(host, port):
        return OFFLINE, f"W&B server {host}:{port} unreachable; logging offline (sync later with `wandb sync`)"
    return ONLINE, f"API key found and {host} reachable"


def wandb_id(run_id: str) -> str:
    return run_id.replace(".", "_")


def offline_runs(directory: str, run_id: str | None = None) -> list[Path]:
    """The offline W&B run directories under `directory` (of one run, or all)."""
    pattern = f"offline-run-*-{wandb_id(run_id)}" if run_id else "offline-run-*"
    return sorted((Path(directory) / "wandb").glob(pattern))


def sync_command(directory: str) -> str | None:
    """The command that uploads a sweep's offline W&B runs, or None when there are none."""
    if not offline_runs(directory):
        return None
    return f"wandb sync --include-offline {Path(directory) / 'wandb'}/offline-run-*"


class WandbSink:
    """Mirrors curve rows into a W&B run whose id is the run_id: one W&B run per run, however many
    attempts. Offline, an attempt replaces the earlier attempts' offline directories of the run (the
    trainer replays the curves it resumed with, so the new directory holds the whole run and
    `wandb sync` logs every step once); online, the run resumes and rows before its step are skipped."""

    def __init__(self, *, mode: str, project: str, entity: str | None, group: str, run_id: str,
                 config: dict[str, Any], directory: str):
        self.run = None
        self.first_step = 0
        if mode == DISABLED:
            return
        try:
            import wandb

            os.makedirs(directory, exist_ok=True)
            if mode == OFFLINE:
                for earlier in offline_runs(directory, run_id):
                    shutil.rmtree(earlier, ignore_errors=True)
            os.environ["WANDB_MODE"] = mode  # the sweep decided; a stray (even empty) WANDB_MODE must not override
            self.run = wandb.init(project=project, entity=entity, group=group, name=run_id,
                                  id=wandb_id(run_id), resume="allow", config=config, dir=directory,
                                  mode=mode, reinit="finish_previous",
                                  settings=wandb.Settings(silent=True, console="off", init_timeout=60))
            if mode == ONLINE and self.run.resumed:
                self.first_step = int(self.run.step)
        except Exception as exc:  # W&B is a mirror: never fail the run for it
            log.warning("W&B init failed for %s (%s); continuing without W&B", run_id, exc)
            self.run = None

    def log(self, row: dict[str, Any]) -> None:
        if self.run is None or int(row["step"]) < self.first_step:
            return
        try:
            self.run.log({k: v for k, v in row.items() if v is not None and k != "step"}, step=int(row["step"]))
        except Exception as exc:
            log.warning("W&B log failed (%s); W&B disabled for this run", exc)
            self.close(failed=True)

    def summarize(self, values: dict[str, Any]) -> None:
        if self.run is None:
            return
        try:
            self.run.summary.update({k: v for k, v in values.items() if v is not None})
        except Exception as exc:
            log.warning("W&B summary failed (%s)", exc)

    def close(self, failed: bool = False) -> None:
        run, self.run = self.run, None
        if run is None:
            return
        try:
            run.finish(exit_code=1 if failed else 0)
        except Exception as exc:
            log.warning("W&B finish failed (%s)", exc)


class FanOut:
    """Several sinks as one."""

    def __init__(self, *sinks):
        self.sinks = [s for s in sinks if s is not None]

    def log(self, row: dict[str, Any]) -> None:
        for sink in self.sinks:
            sink.log(row)
