#!/usr/bin/env bash
# The prepared device check (benchmarks/gpu_check.py says what each stage measures).
#
#   bash benchmarks/gpu_check.sh --fetch-wheels   # here, once: the wheels the GPU machine lacks, into .whl/ (git-ignored)
#   bash benchmarks/gpu_check.sh --dry-run        # here: every stage on the CPU at tiny sizes
#   bash benchmarks/gpu_check.sh                  # on the GPU machine (the device tool's run, carry [".whl"],
#                                                 # timeout_s 600): about 8 minutes; results land in $OUT
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${PYTHON:-}" ]; then
    py=$PYTHON
elif [ -x .venv/bin/python ]; then
    py=.venv/bin/python   # a developer's checkout
else
    py=python3            # the GPU machine's, with torch preinstalled
fi
exec "$py" benchmarks/gpu_check.py "$@"
