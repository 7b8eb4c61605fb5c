#!/usr/bin/env bash
# End-to-end `sluice ingest` of a 1,000,000-row, 10-column CSV on the embedded (SQLite)
# backend, release build, through PII detection and masking (a policy that masks one column and
# tokenizes another): wall time and peak memory (max RSS), beside `sqlite3 .import` of the same
# file.
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${ROWS:-1000000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release -p sluice --quiet
python3 - "$work/big.csv" "$rows" <<'PY'
import sys
path, rows = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    f.write("id,name,email,city,zip,amount,count,active,joined,note\n")
    for i in range(rows):
        f.write(f"{i:08},Person {i},person{i}@example.test,City {i % 500},{i % 99999:05},"
                f"{i % 10000}.{i % 100:02},{i % 77},{'true' if i % 3 == 0 else 'false'},"
                f"2026-{i % 12 + 1:02}-{i % 28 + 1:02},\"note, with comma {i}\"\n")
PY
# The PII path the CLI takes: names masked, emails tokenized (two columns), the rest scanned.
cat > "$work/sluice.toml" <<'TOML'
[pii.policies.bench]
default = "mask"
skip_columns = ["id", "amount", "count", "active", "joined", "zip"]
[pii.policies.bench.entities]
EMAIL = "tokenize"
[pii.policies.bench.columns.name]
holds = ["NAME"]
action = "mask"
TOML
echo "input: $rows rows, $(du -h "$work/big.csv" | cut -f1)"
python3 - "$(pwd)/target/release/sluice" "$work" <<'PY'
import datetime, os, re, resource, subprocess, sys, time
binary, work = sys.argv[1], sys.argv[2]
start = time.monotonic()
# Each state logs one INFO line when it is done: their timestamps split the wall time by step.
result = subprocess.run([binary, "--config", f"{work}/sluice.toml", "ingest", f"{work}/big.csv",
                         "--dataset", "bench", "--json"], capture_output=True, text=True,
                        env={**os.environ, "RUST_LOG": "info"})
elapsed = time.monotonic() - start
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(result.stdout.strip())
if result.returncode != 0:
    print(result.stderr, file=sys.stderr)
    sys.exit(result.returncode)
print(f"wall time: {elapsed:.2f} s, peak memory (max RSS): {peak_kib / 1024:.1f} MiB")
steps = [("upload registered", "start"), ("staged", "stage"), ("PII detection report written", "detect"),
         ("cleaned CSV written", "mask + vault"), ("ingested", "ingest")]
ends = dict(steps)
seen = {}
for line in result.stderr.splitlines():
    found = re.match(r"(\S+)Z\s+INFO\s+\S+: (.+?) \w+=", re.sub(r"\x1b\[[0-9;]*m", "", line))
    if found and found.group(2) in ends:
        seen[found.group(2)] = datetime.datetime.fromisoformat(found.group(1))
if all(message in seen for message, _ in steps):
    parts = [f"{name} {(seen[message] - seen[before]).total_seconds():.2f} s"
             for (before, _), (message, name) in zip(steps, steps[1:])]
    print("by step: " + ", ".join(parts))
else:
    print("by step: not all steps logged their end", file=sys.stderr)
PY
python3 - "$work" <<'PY'
import resource, subprocess, sys, time
work = sys.argv[1]
start = time.monotonic()
subprocess.run(["sqlite3", f"{work}/import.db", ".mode csv", f".import {work}/big.csv bench"], check=True)
elapsed = time.monotonic() - start
print(f"sqlite3 .import of the same file: {elapsed:.2f} s")
PY
# What each wrote: the bytes SQLite had to put in pages, the bulk of either load's cost.
# A WAL left beside the file counts too.
echo "database sizes: sluice $(du -cm "$work/.sluice/sluice.db"* | tail -1 | cut -f1) MB (records + vault)," \
  "sqlite3 .import $(du -m "$work/import.db" | cut -f1) MB"
# The floor under any implementation on this schema: the sqlite3 CLI itself loading as many rows
# into Sluice's item table as the ingest writes (one record per row, plus one vault entry per
# tokenized value, in token order), with the embedded backend's pragmas. No parsing, detection,
# masking or encoding: just SQLite's inserts.
python3 - "$work" "$rows" <<'PY'
import random, subprocess, sys, time
work, rows = sys.argv[1], int(sys.argv[2])
random.seed(7)
with open(f"{work}/floor-vault.csv", "w") as f:
    for token in sorted("tok_%032x" % random.getrandbits(128) for _ in range(rows)):
        f.write(f"control,vault#bench,{token},{'v' * 120},\n")
with open(f"{work}/floor-records.csv", "w") as f:
    for i in range(rows):
        f.write(f"records,bench,{i:08},{'r' * 150},\n")
script = f"""PRAGMA page_size=16384; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
PRAGMA wal_autocheckpoint=2560;
CREATE TABLE items (tbl TEXT NOT NULL, pk TEXT NOT NULL, sk TEXT NOT NULL, item TEXT NOT NULL,
  expires_at INTEGER, PRIMARY KEY (tbl, pk, sk)) WITHOUT ROWID;
.mode csv
.import {work}/floor-vault.csv items
.import {work}/floor-records.csv items
"""
start = time.monotonic()
subprocess.run(["sqlite3", f"{work}/floor.db"], input=script, text=True, check=True, capture_output=True)
elapsed = time.monotonic() - start
print(f"sqlite3 loading the same {2 * rows} items (records + vault) into Sluice's schema: {elapsed:.2f} s")
PY
