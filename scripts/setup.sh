#!/bin/sh
# Install what cctvhub needs to build, test and demo, on Debian 12, as root.
# Idempotent: packages already present are not touched, so a second run is quick.
set -eu

PKGS="build-essential cmake pkg-config clang clang-format libclang-rt-14-dev \
libuv1-dev libjansson-dev libcsv-dev libinih-dev libsqlite3-dev sqlite3 \
libcmocka-dev libsodium-dev libssl-dev curl python3 wrk nginx-light time openssl \
ffmpeg gstreamer1.0-tools gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gi \
python3-gst-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
gstreamer1.0-plugins-ugly gstreamer1.0-libav chromium nodejs fonts-nanum \
python3-prometheus-client mosquitto mosquitto-clients libmosquitto-dev libnss3-tools"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
# npm: Debian's package, unless a Node.js that bundles its own (NodeSource's) is installed:
# the two conflict.
if ! command -v npm >/dev/null 2>&1; then
    missing="$missing npm"
fi

if [ -n "$missing" ]; then
    echo "setup: installing:$missing"
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: need root to install packages (run as root or with sudo)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # nginx-light would start a daemon on :80 under policy-rc.d-less installs; we only need its binary.
    apt-get install -y -qq --no-install-recommends $missing
    # Our benchmarks start their own nginx; stop the packaged service if it came up.
    if command -v systemctl >/dev/null 2>&1; then systemctl disable --now nginx >/dev/null 2>&1 || true; fi
    if [ -x /usr/sbin/nginx ]; then pkill -x nginx >/dev/null 2>&1 || true; fi
fi

# The console's Leaflet and marker cluster plug-in (web/package-lock.json) and the browser
# tests' playwright-core (tests/browser/package-lock.json), from npm, only when missing. The
# few files the console loads are copied into web/vendor/, served at /console/vendor/
# (node_modules/ itself is never served).
top=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -s "$top/web/vendor/leaflet/leaflet.js" ] ||
    [ ! -s "$top/web/vendor/leaflet.markercluster/leaflet.markercluster.js" ]; then
    echo "setup: npm ci in web/ (Leaflet)"
    (cd "$top/web" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    mkdir -p "$top/web/vendor/leaflet/images" "$top/web/vendor/leaflet.markercluster"
    cp "$top/web/node_modules/leaflet/dist/leaflet.js" "$top/web/node_modules/leaflet/dist/leaflet.css" \
        "$top/web/vendor/leaflet/"
    cp "$top/web/node_modules/leaflet/dist/images/"*.png "$top/web/vendor/leaflet/images/"
    cp "$top/web/node_modules/leaflet.markercluster/dist/leaflet.markercluster.js" \
        "$top/web/node_modules/leaflet.markercluster/dist/MarkerCluster.css" \
        "$top/web/vendor/leaflet.markercluster/"
fi
if [ ! -s "$top/tests/browser/node_modules/playwright-core/package.json" ]; then
    echo "setup: npm ci in tests/browser/ (playwright-core)"
    (cd "$top/tests/browser" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
