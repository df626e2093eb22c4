# Shared by scripts/newman.sh and scripts/readme-examples.sh (sourced, not run):
# build tienda, start it on the default ports with a fresh data directory,
# wait until it serves, and stop it again. Nothing it starts outlives the
# script that sources it: tienda_cleanup runs on exit, also on failure or
# Ctrl-C.
#
# The sourcing script sets ROOT (the repository) and calls, in order:
#   tienda_setup     temp directory in $WORK, exit trap
#   tienda_build     go build -o $WORK/tienda .
#   tienda_start     start it; returns once the gateway's health is SERVING
#   tienda_stop      SIGTERM, then wait (SIGKILL after a grace period)
# and runs its client with run_bounded SECONDS COMMAND…, which a signal to
# the script interrupts at once (bash runs traps only between foreground
# commands, not during one).

server_ports=(8080 8081 8082)
server_gateway=http://127.0.0.1:8080
server_ready_seconds=60
server_stop_seconds=15
server_pid=
child_pid=

say() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() { say "$*"; exit 1; }

tienda_setup() {
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/tienda-${0##*/}.XXXXXX")
  trap 'tienda_cleanup $?' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

tienda_cleanup() {
  local status=$1
  trap - EXIT INT TERM
  if [[ -n $child_pid ]]; then
    kill -TERM "$child_pid" 2>/dev/null || true
    wait "$child_pid" 2>/dev/null || true
  fi
  if [[ -n $server_pid ]]; then
    tienda_stop || true
  fi
  if [[ $status -ne 0 && -s $WORK/tienda.log ]]; then
    say "failed (exit $status); the last lines of tienda's log:"
    tail -n 25 "$WORK/tienda.log" >&2
  fi
  rm -rf "$WORK"
  exit "$status"
}

# Runs a command in the background under timeout and waits for it; returns
# its status (124 when it ran out of time).
run_bounded() {
  local status=0
  timeout "$@" &
  child_pid=$!
  wait "$child_pid" || status=$?
  child_pid=
  return "$status"
}

tienda_build() {
  say "building tienda"
  (cd "$ROOT" && timeout 600 go build -o "$WORK/tienda" .) || die "go build failed"
}

# Fails when anything listens on one of tienda's ports: the run would talk
# to that instead of the tienda it started.
tienda_ports_free() {
  local port busy=0
  for port in "${server_ports[@]}"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      say "port $port on 127.0.0.1 is already in use:"
      if command -v ss >/dev/null; then ss -ltnpH "sport = :$port" >&2 || true; fi
      busy=1
    fi
  done
  [[ $busy -eq 0 ]] || die "stop whatever listens on ports ${server_ports[*]} (e.g. a 'go run .') and try again"
}

# Whether the gateway's grpc.health.v1 check, over Connect JSON, says
# SERVING (the enum's JSON name comes from the server's health package:
# SERVING_STATUS_SERVING for connectrpc.com/grpchealth). The gateway serves
# only when it reaches both services.
gateway_serving() {
  local out
  out=$(curl -sS -m 2 -H 'Content-Type: application/json' \
    -d '{"service":"tienda.shop.v1.ShopService"}' \
    "$server_gateway/grpc.health.v1.Health/Check" 2>/dev/null) || return 1
  [[ $out =~ \"status\":\ *\"(SERVING_STATUS_)?SERVING\" ]]
}

tienda_start() {
  tienda_ports_free
  mkdir -p "$WORK/data"
  say "starting tienda (data in $WORK/data, log in $WORK/tienda.log)"
  # TIENDA_* variables of the caller's shell (a DSN, other addresses) would
  # change what is tested: the run uses the defaults only.
  (
    for v in ${!TIENDA_@}; do unset "$v"; done
    exec "$WORK/tienda" -data-dir "$WORK/data"
  ) >"$WORK/tienda.log" 2>&1 &
  server_pid=$!

  local deadline=$((SECONDS + server_ready_seconds))
  until gateway_serving; do
    if ! kill -0 "$server_pid" 2>/dev/null; then
      wait "$server_pid" || true
      server_pid=
      die "tienda exited before it was ready"
    fi
    ((SECONDS < deadline)) || die "tienda was not SERVING at $server_gateway after ${server_ready_seconds}s"
    sleep 0.2
  done
  say "tienda is serving at $server_gateway (pid $server_pid)"
}

tienda_stop() {
  local pid=$server_pid status=0 deadline=$((SECONDS + server_stop_seconds))
  [[ -n $pid ]] || return 0
  server_pid=
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    say "tienda did not stop within ${server_stop_seconds}s of SIGTERM; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || status=$?
  if [[ $status -eq 0 ]]; then
    say "tienda stopped"
  else
    say "tienda stopped with exit status $status"
  fi
  return "$status"
}
