#!/usr/bin/env bash
# The architecture `make build` builds for: ARCH when given, else the one the last guided deploy
# saved in samconfig.toml (parameter_overrides ... Architecture="arm64"), else x86_64. So a stack
# deployed for arm64 keeps getting arm64 binaries from a plain `make build` or `make update`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ -n "${ARCH:-}" ]; then
  echo "$ARCH"
  exit 0
fi
saved="$(sed -n 's/.*Architecture=\\"\([a-z0-9_]*\)\\".*/\1/p' "$root/samconfig.toml" | head -n1)"
echo "${saved:-x86_64}"
