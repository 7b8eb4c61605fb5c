#!/usr/bin/env bash
# Builds every function of infra/template.yaml the way `sam build` does (cargo-lambda, zig as
# the linker, arm64), from a clean clone, and reports what would ship:
#   1. installs aws-sam-cli, cargo-lambda and ziglang from PyPI into target/lambda-tools/venv,
#      moto for the init measurement, and the aarch64 Rust target with rustup;
#   2. `sam validate --lint`, then `sam build` into target/sam, with the release profile
#      optimized for size, no debug info, stripped (CARGO_PROFILE_RELEASE_*, see Cargo.toml);
#   3. each function's zipped size (fails above 5 MB);
#   4. each function's init time (process start to its first `invocation/next`, median of 20
#      starts, steps/functions/examples/lambda_init.rs), on this machine's architecture: the arm64 bootstraps
#      cannot run here, so the same functions are built for the host with the same settings.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\n==> %s\n' "$*"; }
die() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }
started=$(date +%s)

tools=target/lambda-tools
venv=$tools/venv
say "tools: aws-sam-cli, cargo-lambda, ziglang, moto (in $venv)"
if [ ! -x "$venv/bin/sam" ] || [ ! -x "$venv/bin/cargo-lambda" ] || [ ! -x "$venv/bin/moto_server" ]; then
  python3 -m venv "$venv" || die "cannot create $venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check aws-sam-cli cargo-lambda ziglang 'moto[server]' \
    || die "pip install of aws-sam-cli, cargo-lambda, ziglang and moto failed"
fi
export PATH="$PWD/$venv/bin:$PATH"
sam --version
cargo lambda --version
rustup target add aarch64-unknown-linux-gnu >/dev/null || die "rustup cannot add the aarch64-unknown-linux-gnu target"

# The Lambda shape of the release profile (the CLI's stays as Cargo.toml says).
export CARGO_PROFILE_RELEASE_OPT_LEVEL=s CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=true
export SAM_CLI_TELEMETRY=0

say "sam validate --lint"
sam validate --lint --template infra/template.yaml --region us-east-1 || die "sam validate rejected the template"

say "sam build (arm64, into target/sam)"
build_started=$(date +%s)
sam build --template infra/template.yaml --build-dir target/sam --beta-features || die "sam build failed"
build_seconds=$(( $(date +%s) - build_started ))

say "zipped sizes (what sam package uploads)"
python3 - target/sam <<'PY' || die "a function's zip is larger than 5 MB"
import os, sys, zipfile, io
root = sys.argv[1]
over, total = [], 0
for name in sorted(os.listdir(root)):
    bootstrap = os.path.join(root, name, "bootstrap")
    if not os.path.isfile(bootstrap):
        continue
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(bootstrap, "bootstrap")
    size = len(buffer.getvalue())
    total += size
    print(f"{name:<28} bootstrap {os.path.getsize(bootstrap) / 1e6:6.2f} MB   zip {size / 1e6:5.2f} MB")
    if size > 5_000_000:
        over.append(name)
print(f"{'all':<28} zips {total / 1e6:.1f} MB")
sys.exit(1 if over else 0)
PY

say "init times (host build of the same functions, same settings, into target/lambda-host)"
cargo build --release --target-dir target/lambda-host -p sluice-functions -p sluice-gmail -p sluice-api --bins \
  || die "the host build of the functions failed"
cargo build --release --target-dir target/lambda-host -p sluice-functions --example lambda_init
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$tools/moto.log" 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null && break
  sleep 0.2
done
AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing "$venv/bin/python" - "$port" <<'PY' || die "cannot seed the Gmail client secret"
import sys, boto3
boto3.client("secretsmanager", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="us-east-1") \
    .create_secret(Name="sluice/gmail/client-secret", SecretString="init-measurement-secret")
PY
target/lambda-host/release/examples/lambda_init target/lambda-host/release --endpoint "http://127.0.0.1:$port" --starts 20

say "done: sam build took ${build_seconds} s; the whole script $(( $(date +%s) - started )) s"
