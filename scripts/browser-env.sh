#!/usr/bin/env bash
# Headless Chromium and its WebDriver from Debian (`chromium`, `chromium-driver`), for the browser
# tests of the web UI. Idempotent; prints the chromedriver path as its last line.
# usage: scripts/browser-env.sh
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "browser-env: installing chromium and chromium-driver (apt)"
  $sudo apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || {
    $sudo apt-get update -q >/dev/null 2>&1
    $sudo apt-get install -y -q chromium chromium-driver >/dev/null \
      || { echo "browser-env: apt-get install chromium chromium-driver failed" >&2; exit 1; }
  }
fi
command -v chromedriver
