#!/usr/bin/env bash
# Starts or stops one moto server (a local AWS Secrets Manager, PyPI moto[server] in .tools/venv)
# shared by a whole `make test`.
#   eval "$(scripts/moto-server.sh start)"   # exports CARDBOT_MOTO_ENDPOINT, CARDBOT_MOTO_PID
#   scripts/moto-server.sh stop "$CARDBOT_MOTO_PID"
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
. "$root/scripts/local-server.sh"
case "${1:-}" in
  start)
    bin="$("$root/scripts/ensure-tools.sh" moto)"
    port="$(free_port)"
    log="${TMPDIR:-/tmp}/cardbot-moto-$port.log"
    "$bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 </dev/null &
    await_server "moto (Secrets Manager)" CARDBOT_MOTO "$port" $! "$log"
    ;;
  stop) stop_server "${2:-}" ;;
  *)
    echo "usage: $0 start | stop <pid>" >&2
    exit 2
    ;;
esac
