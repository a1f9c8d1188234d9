#!/usr/bin/env bash
# Outbox throughput: how fast a backlog of confirmation emails drains to a local SMTP receiver.
#
#   bench/drain.sh                         # SQLite, 5 s of signing, UNDERSIGN_SMTP_CONNECTIONS=256
#   CONN=48 SIGN=10s bench/drain.sh        # other connection count / longer signing
#   DB=postgres://root@127.0.0.1:5432/DBNAME bench/drain.sh   # an existing, empty PostgreSQL database
#
# 1. `undersign serve --demo` with UNDERSIGN_SMTP_URL pointing at a closed port; wrk signs for
#    $SIGN (64 connections, bench/sign.lua), so every confirmation email stays queued.
# 2. The server is stopped (SIGTERM) and the script waits 11 s, so every retry is due again.
# 3. The SMTP sink (bench/hello's smtp-sink) starts, then the server again: the drain rate is
#    the backlog divided by the time from that start to the last email (server start-up included).
# Needs the release builds of bench/run.sh (target/release/undersign, target/bench-hello).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=$(mktemp -d "${TMPDIR:-/tmp}/undersign-drain.XXXXXX")
DB=${DB:-sqlite://$WORK/load.db}
CONN=${CONN:-256}
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
SMTP_PORT=$(free_port)
PORT=$(free_port)
PIDS=()
# Waits for the server to exit before removing its database: never delete a SQLite file in use.
trap 'kill "${PIDS[@]}" 2>/dev/null || true; wait "${PIDS[@]}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
serve() {
  DATABASE_URL=$DB UNDERSIGN_BIND=127.0.0.1:$PORT UNDERSIGN_SMTP_URL=smtp://127.0.0.1:$SMTP_PORT \
    UNDERSIGN_SMTP_CONNECTIONS=$CONN UNDERSIGN_ABUSE_CHECKS=off UNDERSIGN_MAIL_DIR=$WORK/mail \
    UNDERSIGN_SECRET_KEY_FILE=$WORK/secret.key UNDERSIGN_SIGNING_KEY_FILE=$WORK/signing.key \
    RUST_LOG=warn target/release/undersign serve --demo >>"$WORK/server.log" 2>&1 &
  SERVER=$!
  PIDS+=("$SERVER")
}
serve
sleep 2
wrk -t2 -c64 -d"${SIGN:-5s}" -s bench/sign.lua \
  "http://127.0.0.1:$PORT/api/v1/petitions/belarus-political-prisoners/signatures" >"$WORK/wrk.txt"
kill -TERM "$SERVER"
wait "$SERVER" || true
sleep 11
target/bench-hello/release/smtp-sink "$SMTP_PORT" "$WORK/sent" &
PIDS+=("$!")
started=$(date +%s.%N)
serve
previous=-1
for _ in $(seq 600); do
  sleep 0.5
  sent=$(cat "$WORK/sent")
  if [ "$sent" -gt 0 ] && [ "$sent" = "$previous" ]; then break; fi
  previous=$sent
done
last=$(cat "$WORK/sent.last")
awk -v a="$started" -v b="$last" -v n="$sent" -v c="$CONN" 'BEGIN {
  printf "UNDERSIGN_SMTP_CONNECTIONS=%s: a backlog of %d emails drained in %.2f s: %.0f emails/s\n", c, n, b - a, n / (b - a)
}'
