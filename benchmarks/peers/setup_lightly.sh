#!/usr/bin/env bash
# The peer's own venv: torch 2.14.1 / torchvision 0.29.1 (as ours), lightly 1.6.0, and this
# package (editable, so lightly_simclr.py builds our network, LARS and probes from the same code).
#   bash benchmarks/peers/setup_lightly.sh        # creates benchmarks/peers/.venv-lightly
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${VENV_LIGHTLY:-$here/.venv-lightly}"
python="${PYTHON:-python3}"
test -x "$venv/bin/python" || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q torch==2.14.1 torchvision==0.29.1 lightly==1.6.0
"$venv/bin/python" -m pip install -q -e "$root"
"$venv/bin/python" - <<'PY'
import importlib.metadata as m
print(" ".join(f"{p}=={m.version(p)}" for p in ("torch", "torchvision", "lightly", "simclr-torch")))
PY
