#!/usr/bin/env bash
# Installs the build/deploy tools (aws-sam-cli, cfn-lint, cargo-lambda, ziglang), all from PyPI, into a
# venv under .tools/venv when missing, and prints the venv's bin folder for PATH.
# Usage: PATH="$(scripts/ensure-tools.sh):$PATH"   (or: scripts/ensure-tools.sh cargo-lambda)
# The emulator alone: scripts/ensure-tools.sh ministack (its own venv, .tools/ministack).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.tools/venv"
# The local AWS emulator (make deploy-local, the deployed_stack tests) has its own venv: ministack pins
# botocore exactly, which the SAM CLI's own botocore must not be held to. One command, so pip resolves
# the pin together with the SAM transform it needs (docs/deploy-local.md).
if [ "${1:-}" = ministack ]; then
  venv="$root/.tools/ministack"
  spec=(ministack==1.5.33 aws-sam-translator==1.115.0)
  mkdir -p "$root/.tools"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$root/.tools/.ensure-ministack.lock"
    flock 9
  fi
  if [ ! -x "$venv/bin/ministack" ] || ! "$venv/bin/python" -c 'import samtranslator' 2>/dev/null; then
    command -v python3 >/dev/null 2>&1 || { echo "error: the emulator is installed with Python 3: apt-get install python3 python3-venv" >&2; exit 1; }
    python3 -c 'import ensurepip' 2>/dev/null || { echo "error: python3 cannot make a venv with pip: apt-get install python3-venv" >&2; exit 1; }
    echo "installing ${spec[*]} into .tools/ministack ..." >&2
    python3 -m venv --clear "$venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${spec[@]}" >&2
  fi
  echo "$venv/bin"
  exit 0
fi
# Pinned so every machine lints and builds with the same rules; bump together.
declare -A pkgs=(
  [sam]="aws-sam-cli==1.170.0"
  [cfn-lint]="cfn-lint==1.58.0"
  [cargo-lambda]="cargo-lambda==1.9.2"
  [python-zig]="ziglang==0.14.1"
)
# Test processes may ask at once: one install at a time (flock is util-linux; elsewhere, no lock).
mkdir -p "$root/.tools"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$root/.tools/.ensure-tools.lock"
  flock 9
fi
want=("$@")
[ ${#want[@]} -eq 0 ] && want=(sam cfn-lint cargo-lambda python-zig)
# A venv left half made by an earlier failure (no python, or no pip) is made again.
if ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
  command -v python3 >/dev/null 2>&1 || { echo "error: the tools are installed with Python 3: apt-get install python3 python3-venv" >&2; exit 1; }
  python3 -c 'import ensurepip' 2>/dev/null || { echo "error: python3 cannot make a venv with pip: apt-get install python3-venv" >&2; exit 1; }
  echo "creating the tools venv in .tools/venv ..." >&2
  python3 -m venv --clear "$venv" >&2
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
