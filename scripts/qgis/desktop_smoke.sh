#!/usr/bin/env bash
# Desktop smoke test: start the real `qgis` program under Xvfb with the plugin enabled, segment a
# small area of the NAIP scene, and save screenshots of the styled result (artifacts, never
# committed) into $S5GEO_SMOKE_OUT (default runs/qgis-smoke/). Exits non-zero when QGIS did not
# report success. Needs setup_env.sh (it installs xvfb and xauth) and the shared real data.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv-qgis"
DATA="${S5GEO_DATA:-$ROOT/../shared/data}"
export S5GEO_SMOKE_SCENE="$DATA/naip/m_4709963_se_14_1_20200831.tif"
export S5GEO_SMOKE_OUT="${S5GEO_SMOKE_OUT:-$ROOT/runs/qgis-smoke}"
[ -f "$S5GEO_SMOKE_SCENE" ] || { echo "desktop_smoke.sh: error: $S5GEO_SMOKE_SCENE missing" >&2; exit 1; }
command -v xvfb-run >/dev/null || { echo "desktop_smoke.sh: error: xvfb-run missing (setup_env.sh installs it)" >&2; exit 1; }

rm -rf "$S5GEO_SMOKE_OUT"
mkdir -p "$S5GEO_SMOKE_OUT"
scratch="$(mktemp -d "${TMPDIR:-/tmp}/s5geo-desktop.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/plugins" "$scratch/profiles/default/QGIS" && mkdir -m 0700 "$scratch/runtime"
ln -s "$ROOT/qgis_plugin" "$scratch/plugins/s5geo_plugin"
printf '[PythonPlugins]\ns5geo_plugin=true\n' > "$scratch/profiles/default/QGIS/QGIS3.ini"

export QGIS_PLUGINPATH="$scratch/plugins"
export XDG_RUNTIME_DIR="$scratch/runtime" XDG_CONFIG_HOME="$scratch/config"
export XDG_CACHE_HOME="$scratch/cache" XDG_DATA_HOME="$scratch/data"
# QGIS embeds Debian's Python; the venv's site-packages (s5geo, onnxruntime) are added to its path.
site="$("$VENV/bin/python" -c 'import site; print(site.getsitepackages()[0])')"
export PYTHONPATH="$site"
export PATH="$VENV/bin:/usr/bin:/bin:$PATH"
unset QT_QPA_PLATFORM VIRTUAL_ENV

timeout 300 xvfb-run -a -s "-screen 0 1400x900x24" \
    qgis --noversioncheck --nologo --profiles-path "$scratch" \
    --code "$ROOT/scripts/qgis/desktop_smoke.py" > "$S5GEO_SMOKE_OUT/qgis.log" 2>&1 || true

if ! grep -q '"status": "ok"' "$S5GEO_SMOKE_OUT/report.json" 2>/dev/null; then
    echo "desktop_smoke.sh: error: QGIS did not finish the smoke run; see $S5GEO_SMOKE_OUT" >&2
    cat "$S5GEO_SMOKE_OUT/report.json" 2>/dev/null >&2 || tail -n 30 "$S5GEO_SMOKE_OUT/qgis.log" >&2
    exit 1
fi
echo "desktop_smoke.sh: screenshots in $S5GEO_SMOKE_OUT"
