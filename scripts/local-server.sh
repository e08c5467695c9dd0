# Sourced by scripts/dynamodb-local.sh and scripts/aws-emulator.sh: one local server shared by a whole
# `make test`, started on a free port and handed to the caller as `export` lines once it answers.

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# await_server NAME VAR_PREFIX PORT PID LOG: waits up to 30 s until PORT accepts connections, then
# prints `export <VAR_PREFIX>_ENDPOINT=… <VAR_PREFIX>_PID=…` on stdout and exits 0; exits 1 (and
# stops PID) when the server exits or never answers.
await_server() {
  local name="$1" prefix="$2" port="$3" pid="$4" log="$5"
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "export ${prefix}_ENDPOINT=http://127.0.0.1:$port ${prefix}_PID=$pid"
      echo "$name on port $port (pid $pid, log $log)" >&2
      exit 0
    fi
    kill -0 "$pid" 2>/dev/null || { echo "$name exited; see $log" >&2; exit 1; }
    sleep 0.1
  done
  kill "$pid" 2>/dev/null || true
  echo "$name did not answer on port $port within 30 s; see $log" >&2
  exit 1
}

# stop_server PID (usage names the script).
stop_server() {
  kill "${1:?usage: $0 stop <pid>}" 2>/dev/null || true
}
