#!/usr/bin/env bash
# Print the path of a Python 3.10 interpreter (Rasa 3.6 refuses 3.11+), or explain and fail.
# Looks at $PYTHON, python3.10 on PATH, pyenv, then uv (which can install one).
set -euo pipefail

is_310() { "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; }

for candidate in "${PYTHON:-}" python3.10; do
  if [ -n "$candidate" ] && command -v "$candidate" >/dev/null && is_310 "$(command -v "$candidate")"; then
    command -v "$candidate"; exit 0
  fi
done
if command -v pyenv >/dev/null; then
  for version in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.10(\.|$)' | sort -rV); do
    candidate="$(pyenv prefix "$version")/bin/python"
    if is_310 "$candidate"; then echo "$candidate"; exit 0; fi
  done
fi
if command -v uv >/dev/null; then
  uv python install 3.10 >&2 && candidate="$(uv python find 3.10)" && is_310 "$candidate" && { echo "$candidate"; exit 0; }
fi
echo "No Python 3.10 found. Install one (python3.10 on PATH, 'pyenv install 3.10', or 'uv python install 3.10')," >&2
echo "or point PYTHON=/path/to/python3.10 at it. Rasa 3.6 does not run on 3.11 or newer." >&2
exit 1
