#!/usr/bin/env bash
# Load benchmark: requests per second, latency (p50, p99), errors and the server's peak memory
# of the public hot paths of `undersign serve`, beside a ceiling measured in the same run: a
# minimal actix-web 4 app (bench/hello/, `GET /` → "hello", 2 workers) on the same machine.
#
#   bench/run.sh                    # DURATION=10s per run; prints a Markdown table for BENCHMARKS.md
#   DURATION=30s bench/run.sh       # longer runs
#   BENCH_POSTGRES_URL=postgres://root@127.0.0.1:5432/postgres bench/run.sh
#                                   # also on PostgreSQL (a database is created for the run and dropped)
#   SMTP_CONNECTIONS=48 bench/run.sh   # undersign's UNDERSIGN_SMTP_CONNECTIONS [default here: 256]
#
# Runs, each with wrk -t2 -c64 -d$DURATION --latency:
#   hello     GET / of bench/hello (the machine's ceiling in this run)
#   api       GET /api/v1/petitions/belarus-political-prisoners
#   page      GET /p/belarus-political-prisoners
#   sign      POST /api/v1/petitions/belarus-political-prisoners/signatures, JSON with a new
#             random email address each time (bench/sign.lua)
#   drain     after the signing run: seconds until the SMTP sink has received one confirmation
#             email per stored signature (polled every 0.2 s, up to 120 s; the time of the last
#             email is the sink's own), and the drain rate: the emails still queued when the
#             signing run ended divided by that time (the outbox's emails/s)
#   confirm   POST /confirm/TOKEN for the links the sink saved from those emails (bench/confirm.lua)
# After the signing run it checks that every acknowledged (2xx) signature is in the database
# (SELECT COUNT(*) FROM signatures, before and after), and after the confirmation run how many
# signatures became confirmed.
#
# undersign runs as `serve --demo` against a fresh SQLite file in a temporary folder (secret and
# signing keys and mail folder there too) with UNDERSIGN_ABUSE_CHECKS=off, RUST_LOG=warn and
# UNDERSIGN_SMTP_URL pointing at smtp-sink (bench/hello/src/bin/smtp-sink.rs), a local SMTP
# server that accepts, counts and discards every message (and saves the confirmation links). Peak RSS is the server's
# VmHWM after each run (the same process serves all runs of a backend, so it is the peak so far).
#
# Installs wrk and GNU time with apt-get if missing; builds the release binary, bench/hello and
# the sink (into target/bench-hello; the first build takes a few minutes). Writes nothing into the
# repository besides the build outputs; processes and the temporary folder are removed at exit.
# wrk runs on the same machine and shares its cores with the server.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
THREADS=2
CONNECTIONS=64
SLUG=belarus-political-prisoners
DRAIN_LIMIT=120
# Each SMTP connection carries only ~22 emails/s on loopback (lettre writes the end-of-data
# marker separately, so Nagle holds it until the sink's delayed ACK, ~40 ms): 2,000 emails/s
# need ~100 connections in flight; 256 leave room on a loaded machine.
SMTP_CONNECTIONS=${SMTP_CONNECTIONS:-256}
PG_ADMIN_URL=${BENCH_POSTGRES_URL:-}
PG_NAME="undersign_load_$$"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/undersign-load.XXXXXX")
RESULTS="$WORK/results.md"
NOTES="$WORK/notes.md"
PIDS=()

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ -n "$PG_ADMIN_URL" ]; then
    psql "$PG_ADMIN_URL" -qtAc "DROP DATABASE IF EXISTS $PG_NAME WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

missing=()
command -v wrk >/dev/null || missing+=(wrk)
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

echo "building the release binary and bench/hello"
cargo build --release --quiet
BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/undersign"
cargo build --release --quiet --manifest-path bench/hello/Cargo.toml --target-dir target/bench-hello
HELLO_BIN="$PWD/target/bench-hello/release/undersign-bench-hello"
SINK_BIN="$PWD/target/bench-hello/release/smtp-sink"

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits up to 30 s until URL answers 200.
wait_http() {
  local url=$1 pid=$2 i
  for i in $(seq 300); do
    if curl -fsS -o /dev/null "$url" 2>/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || { echo "the server for $url exited" >&2; return 1; }
    sleep 0.1
  done
  echo "no answer from $url" >&2
  return 1
}

peak_rss_kib() {
  awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"
}

# Runs wrk; prints the BENCH line's fields as "requests rps p50_us p99_us status_errors
# socket_errors ok".
run_wrk() {
  local name=$1 url=$2 script=$3 out="$WORK/wrk-$1.txt"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$script" "$url" >"$out" 2>&1 || {
    cat "$out" >&2
    return 1
  }
  grep '^BENCH ' "$out" | tail -n 1 | awk '{
    for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    ok = (v["ok"] < 0) ? v["requests"] - v["status_errors"] : v["ok"]
    print v["requests"], v["rps"], v["p50_us"], v["p99_us"], v["status_errors"], v["socket_errors"], ok
  }'
}

HELLO_RPS=0
# One row: backend, run, rps, p50 µs, p99 µs, status errors, socket errors, RSS KiB, note.
report() {
  local backend=$1 run=$2 rps=$3 p50=$4 p99=$5 status=$6 socket=$7 kib=$8 note=$9
  awk -v b="$backend" -v r="$run" -v rps="$rps" -v p50="$p50" -v p99="$p99" -v st="$status" \
    -v so="$socket" -v kib="$kib" -v hello="$HELLO_RPS" -v note="$note" 'BEGIN {
      share = (hello > 0) ? sprintf("%.1f %%", 100 * rps / hello) : "–"
      printf "| %s | %s | %.0f | %s | %.2f | %.2f | %d | %d | %.1f | %s |\n",
        b, r, rps, share, p50 / 1000, p99 / 1000, st, so, kib / 1024, note
    }' | tee -a "$RESULTS"
}

# COUNT(*) of a query on the backend's database.
count() {
  local backend=$1 url=$2 sql=$3
  if [ "$backend" = sqlite ]; then
    python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' \
      "${url#sqlite://}" "$sql"
  else
    psql "$url" -qtAc "$sql"
  fi
}

echo "| backend | run | requests/s | of hello | p50 (ms) | p99 (ms) | non-2xx/3xx | socket errors | peak RSS (MiB) | notes |" >"$RESULTS"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |" >>"$RESULTS"
: >"$NOTES"

# ---- the ceiling ----
port=$(free_port)
"$HELLO_BIN" "$port" >"$WORK/hello.log" 2>&1 &
hello_pid=$!
PIDS+=("$hello_pid")
wait_http "http://127.0.0.1:$port/" "$hello_pid"
echo "measuring hello"
numbers=$(run_wrk hello "http://127.0.0.1:$port/" bench/get.lua)
read -r requests rps p50 p99 status socket ok <<<"$numbers"
HELLO_RPS=$rps
report – hello "$rps" "$p50" "$p99" "$status" "$socket" "$(peak_rss_kib "$hello_pid")" "$requests requests"
kill "$hello_pid"
wait "$hello_pid" 2>/dev/null || true

# ---- undersign on one backend ----
run_backend() {
  local backend=$1 db_url=$2
  local dir="$WORK/$backend" smtp_port port base server_pid sink_pid
  mkdir -p "$dir/mail"
  smtp_port=$(free_port)
  "$SINK_BIN" "$smtp_port" "$dir/sent" "$dir/confirm-urls" 2>"$dir/sink.log" &
  sink_pid=$!
  PIDS+=("$sink_pid")
  port=$(free_port)
  base="http://127.0.0.1:$port"
  DATABASE_URL="$db_url" \
    UNDERSIGN_BIND="127.0.0.1:$port" \
    UNDERSIGN_SMTP_URL="smtp://127.0.0.1:$smtp_port" \
    UNDERSIGN_SMTP_CONNECTIONS="$SMTP_CONNECTIONS" \
    UNDERSIGN_ABUSE_CHECKS=off \
    UNDERSIGN_SECRET_KEY_FILE="$dir/secret.key" \
    UNDERSIGN_DATA_KEY_FILE="$dir/data.key" \
    UNDERSIGN_SIGNING_KEY_FILE="$dir/signing.key" \
    UNDERSIGN_MAIL_DIR="$dir/mail" \
    RUST_LOG=warn \
    "$BIN" serve --demo >"$dir/server.log" 2>&1 &
  server_pid=$!
  PIDS+=("$server_pid")
  wait_http "$base/readyz" "$server_pid"
  wait_http "$base/p/$SLUG" "$server_pid"

  local name path script
  for name in api page; do
    case $name in
      api) path="/api/v1/petitions/$SLUG" ;;
      page) path="/p/$SLUG" ;;
    esac
    echo "measuring $backend $name"
    numbers=$(run_wrk "$backend-$name" "$base$path" bench/get.lua)
    read -r requests rps p50 p99 status socket ok <<<"$numbers"
    report "$backend" "GET $path" "$rps" "$p50" "$p99" "$status" "$socket" "$(peak_rss_kib "$server_pid")" "$requests requests"
  done

  # Signing, then the check that every acknowledged signature was stored.
  local before after stored drained_at started sent sent_at_end last backlog rate drain confirmed_before confirmed_after links
  before=$(count "$backend" "$db_url" "SELECT COUNT(*) FROM signatures")
  echo "measuring $backend sign"
  numbers=$(run_wrk "$backend-sign" \
    "$base/api/v1/petitions/$SLUG/signatures" bench/sign.lua)
  read -r requests rps p50 p99 status socket ok <<<"$numbers"
  started=$(date +%s.%N)
  sleep 0.15 # the sink writes its count every 0.1 s
  sent_at_end=$(cat "$dir/sent" 2>/dev/null || echo 0)
  after=$(count "$backend" "$db_url" "SELECT COUNT(*) FROM signatures")
  stored=$((after - before))
  report "$backend" "POST /api/v1/petitions/$SLUG/signatures" "$rps" "$p50" "$p99" "$status" "$socket" \
    "$(peak_rss_kib "$server_pid")" "$ok acknowledged, $stored stored"
  # wrk counts only the answers that arrive within the duration: up to one request per
  # connection still in flight at the end is stored but not counted, so stored ≥ acknowledged.
  if [ "$stored" -lt "$ok" ]; then
    echo "$backend: only $stored signatures stored for $ok acknowledged" | tee -a "$NOTES" >&2
  else
    echo "$backend: $ok signatures acknowledged (2xx), $stored stored (SELECT COUNT(*) FROM signatures, after − before): OK" >>"$NOTES"
  fi

  # The outbox drain: one confirmation email per stored signature.
  drain=""
  for _ in $(seq $((DRAIN_LIMIT * 5))); do
    sent=$(cat "$dir/sent" 2>/dev/null || echo 0)
    if [ "$sent" -ge "$stored" ]; then
      sleep 0.15
      last=$(cat "$dir/sent.last")
      drain=$(awk -v a="$started" -v b="$last" 'BEGIN { d = b - a; printf "%.2f", (d > 0 ? d : 0) }')
      break
    fi
    sleep 0.2
  done
  sent=$(cat "$dir/sent" 2>/dev/null || echo 0)
  if [ -n "$drain" ]; then
    backlog=$((stored - sent_at_end))
    rate=$(awk -v n="$backlog" -v d="$drain" 'BEGIN { if (d > 0) printf "%.0f", n / d; else print "–" }')
    echo "| $backend | outbox drain | $rate | – | – | – | – | – | $(awk -v k="$(peak_rss_kib "$server_pid")" 'BEGIN { printf "%.1f", k / 1024 }') | emails/s: $sent emails received, $sent_at_end during the signing run; the other $backlog in ${drain} s after it |" | tee -a "$RESULTS"
  else
    echo "| $backend | outbox drain | – | – | – | – | – | – | – | NOT drained: $sent of $stored emails received ${DRAIN_LIMIT} s after the signing run |" | tee -a "$RESULTS"
  fi

  # Confirmation, with the links the sink saved.
  sleep 0.3 # the sink writes its files every 0.1 s
  links=$(wc -l <"$dir/confirm-urls")
  if [ "$links" -eq 0 ]; then
    echo "$backend: no confirmation links received; confirmation not measured" | tee -a "$NOTES" >&2
  else
    confirmed_before=$(count "$backend" "$db_url" "SELECT COUNT(*) FROM signatures WHERE status = 'confirmed'")
    echo "measuring $backend confirm ($links links)"
    numbers=$(BENCH_CONFIRM_URLS="$dir/confirm-urls" \
      BENCH_THREADS="$THREADS" run_wrk "$backend-confirm" "$base/" bench/confirm.lua)
    read -r requests rps p50 p99 status socket ok <<<"$numbers"
    confirmed_after=$(count "$backend" "$db_url" "SELECT COUNT(*) FROM signatures WHERE status = 'confirmed'")
    report "$backend" "POST /confirm/{token}" "$rps" "$p50" "$p99" "$status" "$socket" \
      "$(peak_rss_kib "$server_pid")" \
      "$requests requests for $links links, $((confirmed_after - confirmed_before)) signatures newly confirmed"
  fi

  kill "$server_pid" "$sink_pid"
  wait "$server_pid" 2>/dev/null || true
  wait "$sink_pid" 2>/dev/null || true
  if grep -qiE 'error|panic' "$dir/server.log"; then
    echo "$backend: the server logged errors (first 5):" >>"$NOTES"
    grep -iE 'error|panic' "$dir/server.log" | head -n 5 | sed 's/^/    /' >>"$NOTES"
  fi
}

# Each backend starts on a quiet disk: the SQLite run leaves a few hundred MB for the kernel to
# write back, which made PostgreSQL's commits (an fsync each) wait behind it.
sync
run_backend sqlite "sqlite://$WORK/load.db"

if [ -n "$PG_ADMIN_URL" ]; then
  rm -rf "$WORK/sqlite" "$WORK"/load.db*
  sync
  psql "$PG_ADMIN_URL" -qtAc "CREATE DATABASE $PG_NAME" >/dev/null
  run_backend postgres "${PG_ADMIN_URL%/*}/$PG_NAME"
fi

echo
echo "Load benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)),"
echo "$(free -g | awk '/Mem:/ {print $2}') GB RAM, wrk on the same machine (it shares the cores with the server);"
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency; command: DURATION=$DURATION${PG_ADMIN_URL:+ BENCH_POSTGRES_URL=…} bench/run.sh"
echo
cat "$RESULTS"
echo
sed 's/^/- /' "$NOTES"
