#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests if it is missing (needs root or sudo).
set -euo pipefail
chromium_path="${PQF_CHROMIUM:-/usr/bin/chromium}"
# The phone-width card test measures text in Liberation Sans (Arial's widths).
fonts=/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf
[ -x "$chromium_path" ] && [ -e "$fonts" ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "Chromium (at $chromium_path) or the Liberation fonts are missing and apt-get is unavailable: the browser tests will be skipped or fail." >&2
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ -n "$sudo" ] && ! command -v sudo >/dev/null; then
  echo "Chromium or the Liberation fonts are missing and installing them needs root: the browser tests will be skipped or fail." >&2
  exit 0
fi
echo "Installing Debian's chromium and fonts-liberation for the browser tests..."
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium fonts-liberation >/dev/null
