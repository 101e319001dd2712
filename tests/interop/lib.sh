# Shared by the pair scripts (sourced): free loopback ports, waiting for a peer, and stopping
# every peer a script started, whatever happens.
py="${PYTHON_VENV:?}/bin/python"
free_port() { "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() { # url: poll until it answers 200 (peers need a moment to start)
  for _ in $(seq 1 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "not up: $1" >&2
  return 1
}
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
# expect REGEX: the pair's report ($WORK/report.txt) has a line matching it, else the pair fails.
expect() { grep -Eq "$1" "$WORK/report.txt" || { echo "FAIL: report lacks /$1/" >&2; exit 1; }; }
