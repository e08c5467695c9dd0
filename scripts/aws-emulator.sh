#!/usr/bin/env bash
# Starts or stops one local AWS emulator (PyPI ministack, in .tools/ministack; the one `make
# deploy-local` and the deployed_stack tests deploy to) shared by a whole `make test` as its AWS
# Secrets Manager. In a clean environment, on a free port of 127.0.0.1; it stays in make's process
# group, so whatever stops make stops it too.
#   eval "$(scripts/aws-emulator.sh start)"   # exports CARDBOT_AWS_EMULATOR_ENDPOINT, CARDBOT_AWS_EMULATOR_PID
#   scripts/aws-emulator.sh stop "$CARDBOT_AWS_EMULATOR_PID"
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
. "$root/scripts/local-server.sh"
case "${1:-}" in
  start)
    bin="$("$root/scripts/ensure-tools.sh" ministack)"
    port="$(free_port)"
    dir="$(mktemp -d "${TMPDIR:-/tmp}/cardbot-aws-emulator-XXXXXX")"
    log="$dir/emulator.log"
    (cd "$dir" && exec env -i PATH="$bin:/usr/bin:/bin" HOME="$dir" LC_ALL=C.UTF-8 LANG=C.UTF-8 \
      BIND_HOST=127.0.0.1 GATEWAY_PORT="$port" TMPDIR="$dir" LOG_LEVEL=WARNING \
      "$bin/ministack") >"$log" 2>&1 </dev/null &
    await_server "local AWS emulator (Secrets Manager)" CARDBOT_AWS_EMULATOR "$port" $! "$log"
    ;;
  stop)
    pid="${2:?usage: $0 stop <pid>}"
    # Its scratch folder (the log, the state it spills) goes with it.
    dir="$(readlink "/proc/$pid/cwd" 2>/dev/null || true)"
    stop_server "$pid"
    # Gone before its folder is: up to 5 s, then SIGKILL.
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    case "$dir" in */cardbot-aws-emulator-*) rm -rf "$dir" ;; esac
    ;;
  *)
    echo "usage: $0 start | stop <pid>" >&2
    exit 2
    ;;
esac
