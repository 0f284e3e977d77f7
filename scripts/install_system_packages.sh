#!/usr/bin/env bash
# Install the Debian packages in system-packages.txt that are missing. As root with apt-get
# it installs them; otherwise it prints the command to run and carries on.
set -euo pipefail
cd "$(dirname "$0")/.."
wanted=$(grep -v '^\s*#' system-packages.txt | tr -s ' \n' ' ')
missing=""
for package in $wanted; do
  dpkg -s "$package" >/dev/null 2>&1 || missing="$missing $package"
done
[ -z "$missing" ] && exit 0
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
else
  echo "optional system packages missing:$missing (install: sudo apt-get install$missing)" >&2
fi
