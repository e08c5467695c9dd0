#!/usr/bin/env bash
# make bench: installs the peer SDKs when missing (into .tools/, git-ignored), runs the criterion hot
# path, builds the release bootstraps, then runs the report (bench/src/main.rs), which prints the table
# and writes bench/results.json. BENCH_ONLY=hot,cold,flows,burst,deployed limits the report to some sections
# (burst: make run's stack with 4 instances per function, 200 users and 100 clicks at once).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_REGION="${AWS_REGION:-us-east-1}"

lark_version="1.7.5"
node_sdk_version="1.74.0"
venv=".tools/bench-venv"
node_dir=".tools/bench-node"

# A missing peer is not fatal: its ratio prints n/a. --clear makes a half-made venv (a full disk,
# an interrupted install) again instead of failing on its missing pip.
if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('lark-oapi') != '$lark_version')" 2>/dev/null; then
  echo "installing lark-oapi==$lark_version into $venv ..." >&2
  { python3 -m venv --clear "$venv" && "$venv/bin/pip" install -q "lark-oapi==$lark_version"; } >&2 ||
    echo "warning: lark-oapi not installed; its ratios will be n/a" >&2
fi
if ! node -e "process.exit(require('./$node_dir/node_modules/@larksuiteoapi/node-sdk/package.json').version !== '$node_sdk_version')" 2>/dev/null; then
  echo "installing @larksuiteoapi/node-sdk@$node_sdk_version into $node_dir ..." >&2
  npm install --prefix "$node_dir" --no-audit --no-fund --loglevel=error "@larksuiteoapi/node-sdk@$node_sdk_version" >&2 ||
    echo "warning: node-sdk not installed; its ratios will be n/a" >&2
fi

only="${BENCH_ONLY:-}"
wants() { [ -z "$only" ] || [[ ",$only," == *",$1,"* ]]; }

if wants hot; then
  echo "== hot path (criterion)" >&2
  cargo bench -p cardbot-bench --bench hot_path -- --noplot >&2
fi
if wants cold; then
  echo "== release bootstraps" >&2
  cargo build --release -p event-callback -p card-action -p card-updater >&2
fi
echo "== report" >&2
# The functions of the burst's local stack log at warn: their log lines cross two pipes there, which
# costs the 2 cores what Lambda's log shipping does not.
RUST_LOG="${RUST_LOG:-warn}" cargo run --release -q -p cardbot-bench --bin cardbot-bench -- ${only:+--only "$only"}
