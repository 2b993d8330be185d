#!/usr/bin/env bash
# Prepare everything the QGIS tests need, idempotently:
#   1. QGIS 3.22 from Debian (apt) when `dpkg -s qgis` says it is missing;
#   2. the QGIS venv .venv-qgis on Debian's /usr/bin/python3 (the only Python that loads QGIS's
#      bindings), with numpy<2 and attrs>=24 (Debian's GDAL/scipy need numpy 1.x; Debian's attrs 22
#      breaks affine), the project's deployment install (no torch), pytest and pytest-qgis.
# xvfb and xauth come along for the desktop smoke test (desktop_smoke.sh).
# Any failure exits non-zero with a message: CI must never silently lose the QGIS tests.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv-qgis"

die() { echo "setup_env.sh: error: $*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else die "need root (or sudo) to run: $*"
    fi
}

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    # Another process may hold the dpkg lock for a while (unattended upgrades, a parallel job).
    as_root apt-get -o DPkg::Lock::Timeout=600 update -q \
        || die "apt-get update failed"
    as_root apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "$@" \
        || die "apt-get install $* failed"
}

missing=()
for pkg in qgis python3-qgis python3-venv xvfb xauth; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup_env.sh: installing ${missing[*]} from Debian (QGIS takes a few minutes)"
    apt_install "${missing[@]}"
fi
[ -x /usr/bin/qgis_process.bin ] || die "/usr/bin/qgis_process.bin is missing after installing qgis"

# Rebuild the venv's packages only when the project's dependencies changed.
stamp="$VENV/.s5geo-stamp"
want="$(cat "$ROOT/pyproject.toml" "$0" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ]; then
    /usr/bin/python3 -m venv --system-site-packages "$VENV" || die "cannot create $VENV"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log="$VENV/pip-install.log"
    echo "setup_env.sh: installing s5geo (deployment), pytest and pytest-qgis into $VENV"
    if ! "$VENV/bin/python" -m pip install --upgrade pip "numpy<2" "attrs>=24" -e "$ROOT" \
            pytest "pytest-qgis==5.0.2" > "$log" 2>&1; then
        tail -n 40 "$log" >&2
        die "pip install into $VENV failed (full log: $log)"
    fi
    echo "$want" > "$stamp"
fi

"$VENV/bin/python" -c "import qgis.core, onnxruntime, rasterio, s5geo" \
    || die "QGIS's Python in $VENV cannot import qgis.core, onnxruntime, rasterio and s5geo"
echo "setup_env.sh: QGIS $(/usr/bin/python3 -c 'from qgis.core import Qgis; print(Qgis.version())') and $VENV ready"
