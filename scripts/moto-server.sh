#!/usr/bin/env bash
# Starts or stops one moto server (a local AWS Secrets Manager, PyPI moto[server] in .tools/venv)
# shared by a whole `make test`.
#   eval "$(scripts/moto-server.sh start)"   # exports CARDBOT_MOTO_ENDPOINT, CARDBOT_MOTO_PID
#   scripts/moto-server.sh stop "$CARDBOT_MOTO_PID"
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
case "${1:-}" in
  start)
    bin="$("$root/scripts/ensure-tools.sh" moto)"
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    log="${TMPDIR:-/tmp}/cardbot-moto-$port.log"
    "$bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 </dev/null &
    pid=$!
    for _ in $(seq 1 300); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "export CARDBOT_MOTO_ENDPOINT=http://127.0.0.1:$port CARDBOT_MOTO_PID=$pid"
        echo "moto (Secrets Manager) on port $port (pid $pid, log $log)" >&2
        exit 0
      fi
      kill -0 "$pid" 2>/dev/null || { echo "moto exited; see $log" >&2; exit 1; }
      sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    echo "moto did not answer on port $port within 30 s; see $log" >&2
    exit 1
    ;;
  stop)
    pid="${2:?usage: $0 stop <pid>}"
    kill "$pid" 2>/dev/null || true
    ;;
  *)
    echo "usage: $0 start | stop <pid>" >&2
    exit 2
    ;;
esac
