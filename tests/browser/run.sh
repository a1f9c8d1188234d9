#!/usr/bin/env bash
# The browser tests: builds the debug binary, starts a fresh undersign instance (SQLite, demo
# petition, no SMTP: emails land as .eml files that the tests read) on a free port, runs the
# Playwright tests in Debian's Chromium against it, and always stops the server.
# Screenshots go to tests/browser/screenshots/. Exits non-zero on any failure.
# Needs /usr/bin/chromium and `npm ci` done here (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1; it is set
# below too, so that nothing here ever downloads a browser of its own).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

if [ ! -x /usr/bin/chromium ]; then
  echo "run.sh: /usr/bin/chromium is missing (apt-get install chromium)" >&2
  exit 1
fi
if [ ! -d "$here/node_modules/@playwright/test" ]; then
  (cd "$here" && npm ci --no-audit --no-fund)
fi

(cd "$root" && cargo build --quiet)
binary="$root/target/debug/undersign"

work="$(mktemp -d -t undersign-browser-XXXXXX)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ "${KEEP_WORK:-}" = 1 ]; then
    echo "run.sh: the instance's folder is kept: $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

port="$(node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });')"
export UNDERSIGN_BIND="127.0.0.1:$port"
export UNDERSIGN_BASE_URL="http://127.0.0.1:$port"
export DATABASE_URL="sqlite://$work/undersign.db"
export UNDERSIGN_MAIL_DIR="$work/mail-outbox"
unset UNDERSIGN_SMTP_URL
# Every test signs from this one machine: a crowd's worth of signers behind one address, which
# the per-client limit would otherwise hold back. The other abuse checks stay on.
export UNDERSIGN_LIMIT_PER_CLIENT=1000
export UNDERSIGN_LIMIT_PER_DOMAIN=1000
export RUST_LOG="${RUST_LOG:-warn}"

admin_email="admin@browser-test.example"
admin_password="correct horse battery staple, browser edition"

cd "$work"
"$binary" migrate >"$work/migrate.log" 2>&1 || { cat "$work/migrate.log" >&2; exit 1; }
printf '%s\n' "$admin_password" |
  "$binary" user create --email "$admin_email" --role admin --password-stdin >"$work/user.log" 2>&1 ||
  { cat "$work/user.log" >&2; exit 1; }

"$binary" serve --demo >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  if curl -fsS -o /dev/null "$UNDERSIGN_BASE_URL/readyz" 2>/dev/null; then
    break
  fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "run.sh: the server stopped while starting:" >&2
    cat "$work/server.log" >&2
    exit 1
  fi
  sleep 0.2
done
curl -fsS -o /dev/null "$UNDERSIGN_BASE_URL/readyz" || {
  echo "run.sh: the server did not answer at $UNDERSIGN_BASE_URL" >&2
  cat "$work/server.log" >&2
  exit 1
}

status=0
(
  cd "$here"
  BASE_URL="$UNDERSIGN_BASE_URL" MAIL_DIR="$UNDERSIGN_MAIL_DIR" \
    ADMIN_EMAIL="$admin_email" ADMIN_PASSWORD="$admin_password" \
    ./node_modules/.bin/playwright test "$@"
) || status=$?
if [ "$status" -ne 0 ]; then
  echo "run.sh: the browser tests failed; the server's log:" >&2
  tail -n 50 "$work/server.log" >&2
fi
exit "$status"
