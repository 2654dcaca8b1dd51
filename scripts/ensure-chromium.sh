#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests if it is missing (needs root or sudo).
# --pdf: also poppler-utils, whose pdftoppm draws a PDF's page for `make screenshots`.
set -euo pipefail
chromium_path="${PQF_CHROMIUM:-/usr/bin/chromium}"
# The phone-width card test measures text in Liberation Sans (Arial's widths).
fonts=/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf
packages="chromium fonts-liberation"
pdf_ready=yes
if [ "${1:-}" = "--pdf" ]; then
  packages="$packages poppler-utils"
  command -v pdftoppm >/dev/null || pdf_ready=no
fi
[ -x "$chromium_path" ] && [ -e "$fonts" ] && [ "$pdf_ready" = yes ] && exit 0
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
echo "Installing Debian's $packages for the browser tests..."
$sudo apt-get update -qq
# shellcheck disable=SC2086 # one word a package
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $packages >/dev/null
