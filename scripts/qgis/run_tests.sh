#!/usr/bin/env bash
# Run tests/qgis inside real QGIS 3.22 (Debian), headless. `make test` calls this after the normal
# test suite. It first runs setup_env.sh (installs QGIS from Debian when missing and builds
# .venv-qgis), so on a fresh CI machine it either runs the QGIS tests or fails loudly: a QGIS that
# cannot be installed, or a run in which no QGIS test executed, is an error, never a skip.
# Extra arguments go to pytest (e.g. -k cancel, -x).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv-qgis"

"$ROOT/scripts/qgis/setup_env.sh"

# Headless and hermetic: Qt's offscreen platform, and every QGIS/XDG folder in a throwaway place
# so nothing is written to $HOME.
scratch="$(mktemp -d "${TMPDIR:-/tmp}/s5geo-qgis.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
mkdir -m 0700 "$scratch/runtime"
export QT_QPA_PLATFORM=offscreen
export XDG_RUNTIME_DIR="$scratch/runtime"
export QGIS_CUSTOM_CONFIG_PATH="$scratch/qgis-config"
export XDG_CONFIG_HOME="$scratch/config" XDG_CACHE_HOME="$scratch/cache" XDG_DATA_HOME="$scratch/data"
# qgis_process embeds the first python3 on PATH: it must be the QGIS venv's (never a pyenv venv).
export PATH="$VENV/bin:/usr/bin:/bin:$PATH"
unset VIRTUAL_ENV PYTHONHOME
export PYTHONPATH=""

cd "$ROOT"
set +e
"$VENV/bin/python" -m pytest tests/qgis --qgis_disable_gui -p no:cacheprovider -rs "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "run_tests.sh: error: no QGIS test ran although QGIS is installed" >&2
    exit 1
fi
exit "$status"
