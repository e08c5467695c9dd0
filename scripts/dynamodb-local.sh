#!/usr/bin/env bash
# Starts or stops one DynamoDB Local shared by a whole `make test` / `make run`.
#   eval "$(scripts/dynamodb-local.sh start)"   # exports CARDBOT_DYNAMODB_ENDPOINT, CARDBOT_DYNAMODB_PID
#   scripts/dynamodb-local.sh stop "$CARDBOT_DYNAMODB_PID"
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
. "$root/scripts/local-server.sh"
case "${1:-}" in
  start)
    dir="$("$root/scripts/ensure-dynamodb-local.sh")"
    port="$(free_port)"
    log="${TMPDIR:-/tmp}/cardbot-dynamodb-local-$port.log"
    # From its own folder: DynamoDB Local writes a metadata file into the working directory.
    (cd "$dir" && exec java -Djava.library.path="$dir/DynamoDBLocal_lib" -jar "$dir/DynamoDBLocal.jar" \
      -inMemory -disableTelemetry -port "$port" >"$log" 2>&1 </dev/null) &
    await_server "DynamoDB Local" CARDBOT_DYNAMODB "$port" $! "$log"
    ;;
  stop) stop_server "${2:-}" ;;
  *)
    echo "usage: $0 start | stop <pid>" >&2
    exit 2
    ;;
esac
