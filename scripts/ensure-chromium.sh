#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests if it is missing (needs root or sudo).
set -euo pipefail
chromium_path="${PQF_CHROMIUM:-/usr/bin/chromium}"
[ -x "$chromium_path" ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "Chromium is not at $chromium_path and apt-get is unavailable: the browser tests will be skipped." >&2
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ -n "$sudo" ] && ! command -v sudo >/dev/null; then
  echo "Chromium is missing and installing it needs root: the browser tests will be skipped." >&2
  exit 0
fi
echo "Installing Debian's chromium for the browser tests..."
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
