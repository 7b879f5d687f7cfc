#!/usr/bin/env bash
# Run a sweep's driver on a remote Ray cluster as a Ray job (it survives your laptop going to sleep):
#   launchers/submit.sh --address http://head:8265 grid=chinchilla results_dir=s3://bucket/sweeps
# Everything after the address is passed to `python -m sweep` as Hydra overrides.
set -euo pipefail
if [[ "${1:-}" != "--address" || -z "${2:-}" ]]; then
  echo "usage: $0 --address http://<head>:8265 [hydra overrides...]" >&2
  exit 2
fi
address=$2
shift 2
here=$(cd "$(dirname "$0")/.." && pwd)
ray=${RAY:-$here/.venv/bin/ray}
# The working directory is uploaded; results must go to storage the cluster can reach (results_dir=s3://...).
exec "$ray" job submit --address "$address" --working-dir "$here" \
  --runtime-env-json '{"excludes": [".venv", "results", ".git"]}' \
  -- python -m sweep cluster=ray cluster.address=auto "$@"
