#!/usr/bin/env bash
# Command 1: set up, then serve notebooks/ in JupyterLab on the embedded sample store.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ ! -f data/sample/store.json ]; then
    .venv/bin/concursus-lab sample data/sample --parcels 2000 --seed 7
fi
exec .venv/bin/concursus-lab lab --no-browser "$@"
