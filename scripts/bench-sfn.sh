#!/usr/bin/env bash
# The Step Functions API's throughput: StartExecution of a one-Pass machine and
# GetExecutionHistory of a 1,000-event execution, 20 connections on loopback (wrk), served by
# `sluice stepfunctions serve` (release build) beside moto's server (executing state machines,
# as ours does), in the same run. Prints requests per second and p99 latency for each.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${SECONDS_EACH:-10}
die() { printf 'FAILED: %s\n' "$*" >&2; exit 1; }
command -v wrk >/dev/null || die "wrk is not installed (apt-get install wrk)"
[ -x .venv/bin/moto_server ] && [ -x .venv/bin/python ] || die ".venv has no moto_server (run scripts/test.sh once)"
cargo build --release -p sluice --quiet

work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
sluice_port=$(free_port)
moto_port=$(free_port)
touch "$work/sluice.toml"
(cd "$work" && exec "$OLDPWD/target/release/sluice" --config sluice.toml stepfunctions serve --addr "127.0.0.1:$sluice_port" >serve.log 2>&1) &
pids+=($!)
.venv/bin/moto_server -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
pids+=($!)

# The machines, and a 1,000-event execution on each server; writes the ARNs to $work/<name>.arns.
.venv/bin/python - "$work" "$sluice_port" "$moto_port" <<'PY'
import json, sys, time, urllib.request
import boto3
from botocore.config import Config

work, ports = sys.argv[1], {"sluice": sys.argv[2], "moto": sys.argv[3]}
for name, port in ports.items():
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(url + ("/moto-api/" if name == "moto" else ""), timeout=1)
            break
        except urllib.error.HTTPError:
            break
        except Exception:
            time.sleep(0.1)
    if name == "moto":
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/config",
            data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
            headers={"Content-Type": "application/json"}, method="POST"))
    sfn = boto3.client("stepfunctions", endpoint_url=url, region_name="us-east-1",
                       aws_access_key_id="bench", aws_secret_access_key="bench",
                       config=Config(inject_host_prefix=False, retries={"max_attempts": 0}))
    role = "arn:aws:iam::123456789012:role/bench"
    one_pass = sfn.create_state_machine(name="bench-pass", roleArn=role, definition=json.dumps(
        {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))["stateMachineArn"]
    # An inline Map over 248 items: 4 events an item, plus the Map's and the execution's own.
    history = sfn.create_state_machine(name="bench-history", roleArn=role, definition=json.dumps(
        {"StartAt": "Each", "States": {"Each": {"Type": "Map", "ItemsPath": "$.items", "End": True,
            "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}}}}))["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=history,
                                    input=json.dumps({"items": list(range(248))}))["executionArn"]
    for _ in range(600):
        if sfn.describe_execution(executionArn=execution)["status"] != "RUNNING":
            break
        time.sleep(0.1)
    events = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
    print(f"{name}: the history execution has {len(events)} events "
          f"({sfn.describe_execution(executionArn=execution)['status']})")
    with open(f"{work}/{name}.arns", "w") as f:
        f.write(f"{one_pass}\n{execution}\n")
PY

lua() { # target body -> a wrk script
  cat <<LUA
wrk.method = "POST"
wrk.headers["X-Amz-Target"] = "AWSStepFunctions.$1"
wrk.headers["Content-Type"] = "application/x-amz-json-1.0"
wrk.headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=bench/20261201/us-east-1/states/aws4_request, SignedHeaders=host, Signature=0"
wrk.body = '$2'
LUA
}
measure() { # label port target body
  lua "$3" "$4" >"$work/script.lua"
  wrk -t2 -c20 -d"${seconds}s" --latency -s "$work/script.lua" "http://127.0.0.1:$2/" >"$work/wrk.txt"
  local rps p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$work/wrk.txt")
  local errors
  errors=$(awk '/Non-2xx/ {print $5}' "$work/wrk.txt")
  printf '%-8s %-20s %10s req/s   p99 %8s%s\n' "$1" "$3" "$rps" "$p99" "${errors:+   non-2xx: $errors}"
}
for name in sluice moto; do
  port=$([ "$name" = sluice ] && echo "$sluice_port" || echo "$moto_port")
  machine=$(sed -n 1p "$work/$name.arns")
  execution=$(sed -n 2p "$work/$name.arns")
  measure "$name" "$port" StartExecution "{\"stateMachineArn\": \"$machine\", \"input\": \"{}\"}"
  measure "$name" "$port" GetExecutionHistory "{\"executionArn\": \"$execution\", \"maxResults\": 1000}"
done
