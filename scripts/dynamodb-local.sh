#!/usr/bin/env bash
# Starts or stops one DynamoDB Local shared by a whole `make test` / `make run`.
#   eval "$(scripts/dynamodb-local.sh start)"   # exports CARDBOT_DYNAMODB_ENDPOINT, CARDBOT_DYNAMODB_PID
#   scripts/dynamodb-local.sh stop "$CARDBOT_DYNAMODB_PID"
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
case "${1:-}" in
  start)
    dir="$("$root/scripts/ensure-dynamodb-local.sh")"
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    log="${TMPDIR:-/tmp}/cardbot-dynamodb-local-$port.log"
    # From its own folder: DynamoDB Local writes a metadata file into the working directory.
    (cd "$dir" && exec java -Djava.library.path="$dir/DynamoDBLocal_lib" -jar "$dir/DynamoDBLocal.jar" \
      -inMemory -disableTelemetry -port "$port" >"$log" 2>&1 </dev/null) &
    pid=$!
    for _ in $(seq 1 300); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "export CARDBOT_DYNAMODB_ENDPOINT=http://127.0.0.1:$port CARDBOT_DYNAMODB_PID=$pid"
        echo "DynamoDB Local on port $port (pid $pid, log $log)" >&2
        exit 0
      fi
      kill -0 "$pid" 2>/dev/null || { echo "DynamoDB Local exited; see $log" >&2; exit 1; }
      sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    echo "DynamoDB Local did not answer on port $port within 30 s; see $log" >&2
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
