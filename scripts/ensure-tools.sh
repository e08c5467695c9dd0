#!/usr/bin/env bash
# Installs the build/deploy tools (aws-sam-cli, cfn-lint, cargo-lambda, ziglang: all PyPI wheels)
# into a venv under .tools/venv when missing, and prints the venv's bin folder for PATH.
# Usage: PATH="$(scripts/ensure-tools.sh):$PATH"   (or: scripts/ensure-tools.sh cargo-lambda)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.tools/venv"
# Pinned so every machine lints and builds with the same rules; bump together.
declare -A pkgs=(
  [sam]="aws-sam-cli==1.170.0"
  [cfn-lint]="cfn-lint==1.58.0"
  [cargo-lambda]="cargo-lambda==1.9.2"
  [python-zig]="ziglang==0.14.1"
)
want=("$@")
[ ${#want[@]} -eq 0 ] && want=(sam cfn-lint cargo-lambda python-zig)
if [ ! -x "$venv/bin/python" ]; then
  command -v python3 >/dev/null 2>&1 || { echo "the tools are installed with Python 3: install python3" >&2; exit 1; }
  echo "creating the tools venv in .tools/venv ..." >&2
  python3 -m venv "$venv" >&2
fi
missing=()
for tool in "${want[@]}"; do
  spec="${pkgs[$tool]:-}"
  [ -n "$spec" ] || { echo "unknown tool: $tool (known: ${!pkgs[*]})" >&2; exit 1; }
  case "$tool" in
    python-zig) "$venv/bin/python" -c "import ziglang" 2>/dev/null || missing+=("$spec") ;;
    *) [ -x "$venv/bin/$tool" ] || missing+=("$spec") ;;
  esac
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} into .tools/venv ..." >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${missing[@]}" >&2
fi
echo "$venv/bin"
