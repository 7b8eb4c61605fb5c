#!/usr/bin/env bash
# The REST API's cost of its access log: `sluice serve` (release build, embedded backends, the
# fixture mailbox's records) under wrk on `GET /datasets/customers/records/C-001` with a real
# consumer key, the access log on (RUST_LOG=info, one line per request to a file) against off
# (sluice::access=off), alternated over ROUNDS rounds of SECONDS each. Needs wrk (Debian: wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
rounds=${ROUNDS:-3}
seconds=${SECONDS_EACH:-10}
work=$(mktemp -d)
server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
cargo build --release -p sluice --quiet
sluice=$(pwd)/target/release/sluice
export SLUICE_DATA_DIR="$work/data"
"$sluice" --config sluice.toml run >"$work/run.log" 2>&1 || { cat "$work/run.log"; exit 1; }
key=$(python3 - "$work/data/secrets.json" <<'PY'
import json, sys
secrets = json.load(open(sys.argv[1]))
for name, value in secrets.items():
    if name.endswith("consumers/customers/analytics/api-key"):
        print(json.loads(value)["api_key"])
        break
else:
    sys.exit("no key for customers/analytics in " + sys.argv[1])
PY
)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port/datasets/customers/records/C-001"
serve() {
  RUST_LOG=$1 "$sluice" --config sluice.toml serve --addr "127.0.0.1:$port" 2>"$work/serve-$2.log" &
  server_pid=$!
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null -H "x-api-key: $key" "$url" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "sluice serve did not answer" >&2; cat "$work/serve-$2.log" >&2; exit 1
}
# "REQ_PER_S P99" of one wrk round (p99 in ms).
measure() {
  wrk -t2 -c20 -d"${seconds}s" --latency -H "x-api-key: $key" "$url" | awk '
    /Requests\/sec/ {rps = $2}
    $1 == "99%" {v = $2; if (v ~ /us$/) {sub(/us$/, "", v); v /= 1000} else if (v ~ /ms$/) {sub(/ms$/, "", v)} else if (v ~ /s$/) {sub(/s$/, "", v); v *= 1000}; p99 = v}
    END {print rps, p99}'
}
declare -a on off on_p99 off_p99
for round in $(seq 1 "$rounds"); do
  serve "info" on; read -r rps p99 <<<"$(measure)"; on+=("$rps"); on_p99+=("$p99")
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
  serve "info,sluice::access=off" off; read -r rps p99 <<<"$(measure)"; off+=("$rps"); off_p99+=("$p99")
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
  server_pid=
  echo "round $round: access log on ${on[-1]} req/s (p99 ${on_p99[-1]} ms), off ${off[-1]} req/s (p99 ${off_p99[-1]} ms)"
done
lines=$(grep -c 'sluice::access' "$work/serve-on.log" || true)
python3 - "${on[*]}" "${off[*]}" "${on_p99[*]}" "${off_p99[*]}" "$lines" <<'PY'
import statistics, sys
on, off, on_p99, off_p99 = ([float(x) for x in arg.split()] for arg in sys.argv[1:5])
m_on, m_off = statistics.median(on), statistics.median(off)
print(f"median: on {m_on:.0f} req/s (p99 {statistics.median(on_p99):.2f} ms), "
      f"off {m_off:.0f} req/s (p99 {statistics.median(off_p99):.2f} ms): "
      f"the access log costs {100 * (1 - m_on / m_off):.1f}% of throughput"
      f" ({sys.argv[5]} access lines in the last 'on' round's log)")
PY
