#!/usr/bin/env bash
# `sluice run` over a generated mailbox on the embedded backends, release build: wall time,
# peak memory (max RSS), and the parent's and children's history sizes.
# MESSAGES (default 5000) messages x ATTACHMENTS (2) CSV files x ROWS (5) rows each.
set -euo pipefail
cd "$(dirname "$0")/.."
messages=${MESSAGES:-5000}
attachments=${ATTACHMENTS:-2}
rows=${ROWS:-5}
per_run=${MAX_MESSAGES_PER_RUN:-500}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release -p sluice --quiet --bin sluice --example synthetic_mailbox
target/release/examples/synthetic_mailbox generate "$work" "$messages" "$attachments" "$rows" "$per_run"
python3 - "$(pwd)/target/release/sluice" "$work" <<'PY'
import resource, subprocess, sys, time
binary, work = sys.argv[1], sys.argv[2]
start = time.monotonic()
result = subprocess.run([binary, "--config", f"{work}/sluice.toml", "run"], capture_output=True, text=True,
                        env={"RUST_LOG": "error", "PATH": "/usr/bin:/bin"})
elapsed = time.monotonic() - start
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(result.stdout.strip())
if result.returncode != 0:
    print(result.stderr[-4000:])
    sys.exit(result.returncode)
print(f"wall time: {elapsed:.1f} s, peak RSS: {peak_kib / 1024:.0f} MiB")
PY
target/release/examples/synthetic_mailbox histories "$work"
echo "data dir: $(du -sh "$work/data" | cut -f1)"
