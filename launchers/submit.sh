#!/usr/bin/env bash
# Run a sweep's driver on a Ray cluster as a Ray job (it survives your laptop going to sleep):
#
#   launchers/submit.sh --address http://127.0.0.1:8265 grid=chinchilla results_dir=s3://bucket/sweeps
#
# Options, before the Hydra overrides (everything else is passed to `python -m sweep` unchanged):
#   --address URL   the cluster's dashboard (default: $RAY_API_SERVER_ADDRESS); `ray dashboard
#                   launchers/ray-cluster.yaml` or `kubectl port-forward svc/scaling-sweep-head-svc
#                   8265` makes it http://127.0.0.1:8265
#   --python PATH   the project's python on the cluster's head (default: $SWEEP_PYTHON there, which
#                   every launcher in launchers/ exports before `ray start`)
#   --no-wait       return once submitted; follow with `ray job logs -f <id> --address URL`
#   --dry-run       print the `ray job submit` command instead of running it
#
# This checkout (without .venv, results and other local outputs) is uploaded as the job's working
# directory: the driver and every Ray worker of the job import this code, with the packages of the
# cluster's venv. Results must go where the cluster can write: results_dir=s3://... or a path on the
# cluster's shared storage. Uses this checkout's venv for `ray job submit` (`make setup` installs
# ray[default], which provides it); a cluster with token authentication needs RAY_AUTH_MODE=token and
# its token (RAY_AUTH_TOKEN or ~/.ray/auth_token) here too.
set -euo pipefail

die() { echo "submit.sh: $*" >&2; exit 2; }

here=$(cd "$(dirname "$0")/.." && pwd)
address=${RAY_API_SERVER_ADDRESS:-}
python_env=
wait_flag=()
dry_run=false
while (($#)); do
  case $1 in
    --address) address=${2:?--address needs a URL}; shift 2 ;;
    --address=*) address=${1#*=}; shift ;;
    --python) python_env=${2:?--python needs a path}; shift 2 ;;
    --no-wait) wait_flag=(--no-wait); shift ;;
    --dry-run) dry_run=true; shift ;;
    --) shift; break ;;
    -*) die "unknown option $1 (see the top of $0)" ;;
    *) break ;;
  esac
done
[[ -n $address ]] || die "usage: $0 --address http://<head>:8265 [--python PATH] [--no-wait] [--dry-run] [hydra overrides...]"

ray=$here/.venv/bin/ray
if ! $dry_run; then
  [[ -x $ray ]] || die "no venv at $here/.venv: run 'make setup'"
  "$here/.venv/bin/python" -c 'import aiohttp, ray.dashboard.modules.job.sdk' 2>/dev/null ||
    die "'ray job submit' needs ray[default] in $here/.venv: .venv/bin/pip install -e '.[cluster]'"
fi

# The entrypoint, run by /bin/sh on the head: the project's python from SWEEP_PYTHON there (exported by
# every launcher before `ray start`; --python sets it through the job's environment), the overrides
# passed as separate arguments ("$@"), so they arrive exactly as typed here.
# shellcheck disable=SC2016  # expanded on the head
script='exec "${SWEEP_PYTHON:?is not set on the head: pass --python /path/to/the/project/.venv/bin/python}" -m sweep cluster=ray cluster.address=auto "$@"'
entrypoint=(sh -c "$script" submit.sh "$@")
# Local outputs stay here (Ray also leaves out what .gitignore lists).
excludes='".venv", ".git", "results", "outputs", "multirun", "wandb", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache"'
env_vars=
[[ -z $python_env ]] || env_vars=", \"env_vars\": {\"SWEEP_PYTHON\": $("$here/.venv/bin/python" -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$python_env")}"
runtime_env="{\"excludes\": [$excludes]$env_vars}"

command=("$ray" job submit --address "$address" --working-dir "$here" --runtime-env-json "$runtime_env"
  "${wait_flag[@]}" -- "${entrypoint[@]}")
if $dry_run; then
  printf '%q ' "${command[@]}"
  echo
  exit 0
fi
exec "${command[@]}"
