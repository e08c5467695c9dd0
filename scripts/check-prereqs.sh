#!/usr/bin/env bash
# The system tools `make run` and `make test` need and cannot install themselves, checked in a
# second or two before anything builds: each missing one is named with its Debian/Ubuntu package,
# and the script exits 1. What the project installs itself (the tools venv, cargo-lambda, DynamoDB
# Local, the local AWS emulator, Chromium) is not checked here; its own script installs it.
# Usage: scripts/check-prereqs.sh run|deploy-local|test
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
missing=()
need() { # need <command> <what it is and its package>
  command -v "$1" >/dev/null 2>&1 || missing+=("$1: $2")
}
# version_at_least <have> <want>: dotted versions, numerically.
version_at_least() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

[ "$(uname -s)" = Linux ] || missing+=("Linux: the scripts and the local stack run on Linux (uname says $(uname -s))")
[ "${BASH_VERSINFO[0]}" -ge 4 ] || missing+=("bash 4 or newer (have $BASH_VERSION): apt-get install bash")

need cargo "Rust (rustup, https://rustup.rs: rustup toolchain install stable)"
if command -v rustc >/dev/null 2>&1; then
  want_rust="$(sed -n 's/^rust-version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)"
  have_rust="$(rustc --version | awk '{print $2}')"
  version_at_least "$have_rust" "$want_rust" ||
    missing+=("rustc $want_rust or newer (have $have_rust): rustup update stable")
fi
need cc "a C toolchain (aws-lc and ring compile C): apt-get install build-essential"
# make deploy-local's DynamoDB is the emulator's: it needs neither Java nor Node.
if [ "${1:-run}" != deploy-local ]; then
  need java "Java 17 or newer for DynamoDB Local: apt-get install openjdk-17-jre-headless"
  need npm "npm, which installs DynamoDB Local: apt-get install nodejs npm"
  if command -v node >/dev/null 2>&1; then
    have_node="$(node --version | tr -d v)"
    version_at_least "$have_node" 18.2 || missing+=("Node.js 18.2 or newer (have $have_node): apt-get install nodejs")
  else
    missing+=("node: Node.js 18.2 or newer: apt-get install nodejs")
  fi
fi
need python3 "Python 3.10 or newer for the tools venv: apt-get install python3 python3-venv"
if command -v python3 >/dev/null 2>&1; then
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
    missing+=("Python 3.10 or newer (have $(python3 --version 2>&1)): apt-get install python3")
  python3 -c 'import ensurepip, venv' 2>/dev/null ||
    missing+=("python3-venv (python3 cannot make a venv with pip): apt-get install python3-venv")
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "error: make ${1:-run} needs what this machine lacks:" >&2
  for m in "${missing[@]}"; do echo "  - $m" >&2; done
  echo "On Debian/Ubuntu, as root: apt-get install -y build-essential openjdk-17-jre-headless nodejs npm python3 python3-venv (Rust: https://rustup.rs)" >&2
  exit 1
fi
