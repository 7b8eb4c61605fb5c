#!/usr/bin/env bash
# The REST API's cost of its access log: `sluice serve` (release build, embedded backends, the
# fixture mailbox's records) under wrk on `GET /datasets/customers/records/C-001` with a real
# consumer key, the access log on (RUST_LOG=info, one line per request to a file) beside off
# (sluice::access=off).
#
# The two servers run at the same time, both on core 0 (each with its log writer thread), each
# loaded by its own wrk (20 connections) from core 1, for ROUNDS rounds of SECONDS_EACH. Run one
# after the other, the machine's speed drifted by more than the effect between rounds; side by
# side on one core, both see the same machine, and the one that spends more per request answers
# fewer. Needs wrk (Debian: wrk) and taskset (util-linux).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
command -v taskset >/dev/null || { echo "taskset is not installed (apt-get install util-linux)" >&2; exit 1; }
rounds=${ROUNDS:-5}
seconds=${SECONDS_EACH:-10}
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
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
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
url() { echo "http://127.0.0.1:$1/datasets/customers/records/C-001"; }
# serve PORT RUST_LOG NAME
serve() {
  RUST_LOG=$2 taskset -c 0 "$sluice" --config sluice.toml serve --addr "127.0.0.1:$1" 2>"$work/serve-$3.log" &
  pids+=($!)
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null -H "x-api-key: $key" "$(url "$1")" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "sluice serve did not answer" >&2; cat "$work/serve-$3.log" >&2; exit 1
}
on_port=$(free_port); serve "$on_port" "info" on
off_port=$(free_port); serve "$off_port" "info,sluice::access=off" off
# load PORT OUT: one wrk round, "REQ_PER_S P99" (p99 in ms) written to OUT.
load() {
  taskset -c 1 wrk -t1 -c20 -d"${seconds}s" --latency -H "x-api-key: $key" "$(url "$1")" | awk '
    /Requests\/sec/ {rps = $2}
    $1 == "99%" {v = $2; if (v ~ /us$/) {sub(/us$/, "", v); v /= 1000} else if (v ~ /ms$/) {sub(/ms$/, "", v)} else if (v ~ /s$/) {sub(/s$/, "", v); v *= 1000}; p99 = v}
    END {print rps, p99}' >"$2"
}
declare -a on off on_p99 off_p99
for round in $(seq 1 "$rounds"); do
  load "$on_port" "$work/on.txt" & on_load=$!
  load "$off_port" "$work/off.txt" & off_load=$!
  wait "$on_load" "$off_load"
  read -r rps p99 <"$work/on.txt"; on+=("$rps"); on_p99+=("$p99")
  read -r rps p99 <"$work/off.txt"; off+=("$rps"); off_p99+=("$p99")
  echo "round $round: access log on ${on[-1]} req/s (p99 ${on_p99[-1]} ms), off ${off[-1]} req/s (p99 ${off_p99[-1]} ms)"
done
lines=$(grep -c 'sluice::access' "$work/serve-on.log" || true)
stray=$(grep -c 'sluice::access' "$work/serve-off.log" || true)
[ "$stray" -eq 0 ] || { echo "the 'off' server wrote $stray access lines" >&2; exit 1; }
python3 - "${on[*]}" "${off[*]}" "${on_p99[*]}" "${off_p99[*]}" "$lines" <<'PY'
import statistics, sys
on, off, on_p99, off_p99 = ([float(x) for x in arg.split()] for arg in sys.argv[1:5])
paired = [100 * (1 - a / b) for a, b in zip(on, off)]
print(f"median: on {statistics.median(on):.0f} req/s (p99 {statistics.median(on_p99):.2f} ms), "
      f"off {statistics.median(off):.0f} req/s (p99 {statistics.median(off_p99):.2f} ms); "
      f"{sys.argv[5]} access lines written")
print(f"the access log costs {statistics.median(paired):.1f}% of throughput (median of the rounds; "
      f"each round: {' '.join(f'{c:.1f}%' for c in paired)})")
PY
