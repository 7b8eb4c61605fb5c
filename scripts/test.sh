#!/usr/bin/env bash
# The whole test suite, from a clean clone: installs what it needs (a Python venv with moto and
# cfn-lint and the aws CLI, npm's asl-validator and playwright-core, Debian's chromium), starts moto on a free loopback port, runs formatting, lints and
# every test, and stops moto. Extra arguments go to `cargo test` (e.g. `-p sluice-ingest`).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
say() { printf '\n==> %s\n' "$*"; }
die() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo is not installed"
command -v python3 >/dev/null || die "python3 is not installed (needed for moto and cfn-lint)"
command -v npm >/dev/null || die "npm is not installed (needed for asl-validator)"

say "Python tools (.venv: moto[server], cfn-lint, the aws CLI)"
if [ ! -x .venv/bin/moto_server ] || [ ! -x .venv/bin/cfn-lint ] || [ ! -x .venv/bin/aws ]; then
  [ -x .venv/bin/pip ] || python3 -m venv .venv || die "cannot create .venv"
  .venv/bin/pip install --quiet --disable-pip-version-check 'moto[server]' cfn-lint awscli || die "pip install of moto[server], cfn-lint and awscli failed"
fi
[ -x .venv/bin/moto_server ] || die "moto_server missing from .venv"
[ -x .venv/bin/cfn-lint ] || die "cfn-lint missing from .venv"
[ -x .venv/bin/aws ] || die "the aws CLI missing from .venv"

say "npm tools (.tools: asl-validator)"
if [ ! -x .tools/node_modules/.bin/asl-validator ]; then
  mkdir -p .tools
  npm install --prefix .tools --no-audit --no-fund --silent asl-validator >/dev/null || die "npm install of asl-validator failed"
fi
[ -x .tools/node_modules/.bin/asl-validator ] || die "asl-validator missing from .tools"
if [ ! -f .tools/node_modules/playwright-core/package.json ]; then
  npm install --prefix .tools --no-audit --no-fund --silent playwright-core >/dev/null || die "npm install of playwright-core failed"
fi
[ -f .tools/node_modules/playwright-core/package.json ] || die "playwright-core missing from .tools"

say "Chromium (Debian's package) for the Swagger UI browser test"
if [ ! -x /usr/bin/chromium ]; then
  as_root=""
  [ "$(id -u)" = 0 ] || as_root="sudo"
  command -v apt-get >/dev/null || die "chromium is missing and there is no apt-get to install it"
  export DEBIAN_FRONTEND=noninteractive
  $as_root apt-get install -y -q chromium >/dev/null 2>&1 \
    || { $as_root apt-get update -q >/dev/null && $as_root apt-get install -y -q chromium >/dev/null; } \
    || die "apt-get install chromium failed"
fi
[ -x /usr/bin/chromium ] || die "/usr/bin/chromium is missing"

say "moto on loopback"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p target
.venv/bin/moto_server -H 127.0.0.1 -p "$port" >target/moto.log 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then break; fi
  kill -0 "$moto_pid" 2>/dev/null || die "moto exited at start: $(tail -5 target/moto.log)"
  sleep 0.2
done
python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null || die "moto did not answer on port $port"
# Let moto's Step Functions really run ASL definitions.
python3 - "$port" <<'PY' || die "cannot enable moto's state machine execution"
import json, sys, urllib.request
request = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/moto-api/config",
    data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
    headers={"Content-Type": "application/json"}, method="POST")
urllib.request.urlopen(request)
PY
echo "moto is on 127.0.0.1:$port"

export SLUICE_TEST_AWS_ENDPOINT="http://127.0.0.1:$port"
export SLUICE_REQUIRE_AWS_TESTS=1
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL

say "cargo fmt --check"
cargo fmt --all -- --check || die "cargo fmt found unformatted code (run cargo fmt)"

say "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings || die "clippy found problems"

say "asl-validator on asl/"
shopt -s nullglob
definitions=(asl/*.asl.json)
for definition in "${definitions[@]}"; do
  .tools/node_modules/.bin/asl-validator --json-path "$definition" || die "asl-validator rejected $definition"
done
echo "validated ${#definitions[@]} definition(s)"

say "cfn-lint on infra/"
templates=(infra/*.yaml infra/*.json)
for template in "${templates[@]}"; do
  .venv/bin/cfn-lint "$template" || die "cfn-lint rejected $template"
done
echo "linted ${#templates[@]} template(s)"

say "cargo build --bins (the real Lambda binaries tests/lambda_binaries.rs runs)"
cargo build --workspace --bins
say "cargo test"
cargo test --workspace "$@"
