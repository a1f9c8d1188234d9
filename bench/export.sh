#!/usr/bin/env bash
# Export benchmark: wall time and peak memory of `undersign export` (CSV, NDJSON, PDF) for one
# petition with ROWS confirmed signatures (default 1,000,000), on SQLite and on PostgreSQL,
# beside a baseline measured in the same run: the database itself reading the same rows
# (Python's sqlite3 module for SQLite, `psql \copy … TO /dev/null` for PostgreSQL).
#
#   bench/export.sh                 # 1,000,000 rows; prints a Markdown table for BENCHMARKS.md
#   ROWS=20000 bench/export.sh      # a quick run, e.g. in CI
#
# Needs python3, psql and a PostgreSQL server (UNDERSIGN_BENCH_POSTGRES_URL, default
# postgres://$USER@127.0.0.1:5432/postgres; a database is created for the run and dropped).
# Installs GNU time with apt-get if /usr/bin/time is missing. Scratch files go to a temporary
# folder (about 1 GB for a million rows), removed at the end.
# The rows are seeded in the clear by SQL; an untimed first export encrypts them (as the first
# start of an encrypting version does with an older database), so the timed exports decrypt
# every name, address, postal code and comment as in production. The baseline reads the
# encrypted rows.
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=${ROWS:-1000000}
ADMIN_URL=${UNDERSIGN_BENCH_POSTGRES_URL:-postgres://$(id -un)@127.0.0.1:5432/postgres}
SLUG=bench
WORK=$(mktemp -d "${TMPDIR:-/tmp}/undersign-bench.XXXXXX")
PG_NAME="undersign_bench_$$"
PG_URL="${ADMIN_URL%/*}/$PG_NAME"
RESULTS="$WORK/results.md"
export UNDERSIGN_DATA_KEY_FILE="$WORK/data.key"
# No server runs here to record its address: the PDF's cover names this one.
export UNDERSIGN_BASE_URL=http://127.0.0.1:8080

cleanup() {
  psql "$ADMIN_URL" -qtAc "DROP DATABASE IF EXISTS $PG_NAME WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ ! -x /usr/bin/time ]; then
  echo "installing GNU time"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
fi

echo "building the release binary"
cargo build --release --quiet
BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/undersign"

cat >"$WORK/body.md" <<'EOF'
Dear Prime Minister,

We ask you to **act** for the release of every political prisoner.
EOF

# Creates the petition through the command line (so its version and hash are real), then
# prints "petition_id version_id".
create_petition() {
  local url=$1
  # Only `migrate` (or `serve`) creates a database, its tables and the data key.
  DATABASE_URL="$url" RUST_LOG=warn "$BIN" migrate >/dev/null
  DATABASE_URL="$url" RUST_LOG=warn "$BIN" petition create --slug "$SLUG" \
    --title "Free them all" --body-file "$WORK/body.md" \
    --target "The Prime Minister of Norway, Office of the Prime Minister" >/dev/null
}

# Runs a command under GNU time; prints "seconds kilobytes".
measure() {
  local stats="$WORK/time.txt"
  /usr/bin/time -v -o "$stats" "$@" >/dev/null 2>"$WORK/stderr.txt" || {
    cat "$WORK/stderr.txt" >&2
    return 1
  }
  awk -F': ' '
    /Elapsed \(wall clock\)/ {
      n = split($2, part, ":"); s = 0
      for (i = 1; i <= n; i++) s = s * 60 + part[i]
      wall = s
    }
    /Maximum resident set size/ { rss = $2 }
    END { printf "%.2f %d\n", wall, rss }
  ' "$stats"
}

# One row of the results table: backend, what, seconds, KiB, baseline seconds, output size.
report() {
  local backend=$1 what=$2 seconds=$3 kib=$4 baseline=$5 bytes=$6
  awk -v b="$backend" -v w="$what" -v s="$seconds" -v k="$kib" -v base="$baseline" -v size="$bytes" \
    'BEGIN {
      ratio = (w == "baseline") ? "1.0" : sprintf("%.1f", s / (base > 0 ? base : 0.01))
      out = (w == "baseline") ? "–" : sprintf("%.0f", size / 1048576)
      printf "| %s | %s | %.2f | %.1f | %s | %s |\n", b, w, s, k / 1024, ratio, out
    }' | tee -a "$RESULTS"
}

# Encrypts the rows seeded in the clear (see the header); not timed.
encrypt_seeded_rows() {
  # `petition create` already recorded the data key's check value, so the rows seeded since
  # would stay in the clear: drop it, and the next start records it again and encrypts them.
  case $1 in
    sqlite://*) python3 -c 'import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); db.execute("DELETE FROM instance_checks WHERE name = '"'"'data_key'"'"'"); db.commit()' "${1#sqlite://}" ;;
    *) psql "$1" -qc "DELETE FROM instance_checks WHERE name = 'data_key'" >/dev/null ;;
  esac
  DATABASE_URL="$1" RUST_LOG=warn "$BIN" export --petition "$SLUG" --format csv \
    --out "$WORK/warm-up.csv"
  rm -f "$WORK/warm-up.csv"
}

run_exports() {
  local backend=$1 url=$2 baseline=$3
  local format out numbers
  for format in csv ndjson pdf; do
    out="$WORK/$backend.$format"
    numbers=$(DATABASE_URL="$url" RUST_LOG=warn measure "$BIN" export --petition "$SLUG" \
      --format "$format" --out "$out")
    report "$backend" "export $format" $numbers "$baseline" "$(stat -c %s "$out")"
    case $format in
      csv) check_lines "$out" $((ROWS + 1)) ;;
      ndjson) check_lines "$out" "$ROWS" ;;
      pdf) head -c 5 "$out" | grep -q '%PDF-' || { echo "not a PDF: $out" >&2; exit 1; } ;;
    esac
    rm -f "$out"
  done
}

check_lines() {
  local lines
  lines=$(wc -l <"$1")
  if [ "$lines" -ne "$2" ]; then
    echo "$1 has $lines lines, expected $2" >&2
    exit 1
  fi
}

COLUMNS_SQL="id, name, email, country, postal_code, comment, disclosure, version_id, created_at, confirmed_at, commitment"

echo "| backend | run | wall time (s) | peak RSS (MiB) | × baseline | output (MiB) |" >"$RESULTS"
echo "| --- | --- | ---: | ---: | ---: | ---: |" >>"$RESULTS"

# ---- SQLite ----
SQLITE_FILE="$WORK/bench.db"
echo "seeding $ROWS signatures into SQLite"
create_petition "sqlite://$SQLITE_FILE"
python3 - "$SQLITE_FILE" "$ROWS" <<'EOF'
import datetime, random, sqlite3, sys

path, rows = sys.argv[1], int(sys.argv[2])
db = sqlite3.connect(path)
db.execute("PRAGMA synchronous = OFF")
petition_id, version_id = db.execute(
    "SELECT p.id, v.id FROM petitions p JOIN petition_versions v ON v.petition_id = p.id "
    "WHERE p.slug = 'bench'").fetchone()
rng = random.Random(20261128)
first = ["Ana", "Ivan", "Maria", "Jonas", "Sofia", "Lukas", "Ingrid", "Olav", "Zoë", "Mateusz",
         "Анна", "Иван", "Ольга", "Сергей", "Наталья", "Святлана", "Алесь", "Марыя", "Тарас", "Оксана"]
last = ["Ivanova", "Hansen", "Kowalski", "Müller", "O'Brien", "Larsen", "Nowak", "Berg",
        "Іваненка", "Петров", "Коваленко", "Шевченко", "Лукашэвіч", "Мельник", "Смирнова"]
countries = ["NO"] * 30 + ["BY"] * 25 + ["DE"] * 15 + ["UA"] * 10 + ["PL"] * 8 + ["LT"] * 5 + ["SE"] * 4 + ["GB"] * 3
comments = ["Free them all.", "Свабоду палітвязням!", "For my brother, who is still inside.",
            "Вольному — воля.", "Please, \"now\", not later"]
now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0)
start = now - datetime.timedelta(days=90)

def stamp(at):
    return at.strftime("%Y-%m-%d %H:%M:%S")

def signatures():
    for i in range(1, rows + 1):
        email = f"{rng.getrandbits(48):012x}.{i}@example.org"
        signed = start + datetime.timedelta(seconds=rng.randrange(60 * 86400))
        confirmed = signed + datetime.timedelta(seconds=rng.randrange(30, 7200))
        yield (petition_id, version_id, email, email,
               f"{rng.choice(first)} {rng.choice(last)}", rng.choice(countries),
               f"{rng.randrange(10000):04d}" if rng.random() < 0.5 else None,
               rng.choice(comments) if rng.random() < 0.1 else None,
               ("public" if rng.random() < 0.6 else "recipients"), stamp(signed), stamp(confirmed), stamp(confirmed),
               f"{rng.getrandbits(256):064x}", f"{rng.getrandbits(256):064x}")

with db:
    db.executemany(
        "INSERT INTO signatures (petition_id, version_id, email_key, email, name, country, "
        "postal_code, comment, disclosure, status, confirmation_emails, created_at, confirmed_at, "
        "updated_at, receipt_salt, commitment) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'confirmed', 1, ?, ?, ?, ?, ?)", signatures())
    db.execute("UPDATE petitions SET signature_count = ? WHERE id = ?", (rows, petition_id))
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
db.close()
EOF
echo "encrypting the seeded rows"
encrypt_seeded_rows "sqlite://$SQLITE_FILE"

cat >"$WORK/sqlite_baseline.py" <<EOF
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
cursor = db.execute(
    "SELECT $COLUMNS_SQL FROM signatures WHERE petition_id = "
    "(SELECT id FROM petitions WHERE slug = '$SLUG') AND status = 'confirmed' ORDER BY id")
n = 0
while True:
    batch = cursor.fetchmany(1000)
    if not batch:
        break
    n += len(batch)
assert n == $ROWS, n
EOF
read -r seconds kib < <(measure python3 "$WORK/sqlite_baseline.py" "$SQLITE_FILE")
report sqlite baseline "$seconds" "$kib" "$seconds" 0
run_exports sqlite "sqlite://$SQLITE_FILE" "$seconds"
rm -f "$SQLITE_FILE"*

# ---- PostgreSQL ----
echo "seeding $ROWS signatures into PostgreSQL"
psql "$ADMIN_URL" -qtAc "CREATE DATABASE $PG_NAME" >/dev/null
create_petition "$PG_URL"
psql "$PG_URL" -q -v ON_ERROR_STOP=1 -v rows="$ROWS" -v slug="$SLUG" >/dev/null <<'EOF'
SET synchronous_commit = off;
INSERT INTO signatures (petition_id, version_id, email_key, email, name, country, postal_code,
                        comment, disclosure, status, confirmation_emails, created_at, confirmed_at,
                        updated_at, receipt_salt, commitment)
SELECT p.id, v.id, s.email, s.email, s.name, s.country, s.postal_code, s.comment, s.disclosure,
       'confirmed', 1, s.signed, s.signed + s.delay, s.signed + s.delay,
       md5(random()::text) || md5(random()::text), md5(random()::text) || md5(random()::text)
FROM petitions p
JOIN petition_versions v ON v.petition_id = p.id
CROSS JOIN (
  SELECT substr(md5(random()::text), 1, 12) || '.' || g || '@example.org' AS email,
         (ARRAY['Ana','Ivan','Maria','Jonas','Sofia','Lukas','Ingrid','Olav','Zoë','Mateusz',
                'Анна','Иван','Ольга','Сергей','Наталья','Святлана','Алесь','Марыя','Тарас','Оксана'])
           [1 + floor(random() * 20)::int]
         || ' ' ||
         (ARRAY['Ivanova','Hansen','Kowalski','Müller','O''Brien','Larsen','Nowak','Berg',
                'Іваненка','Петров','Коваленко','Шевченко','Лукашэвіч','Мельник','Смирнова'])
           [1 + floor(random() * 15)::int] AS name,
         (ARRAY['NO','NO','NO','NO','NO','NO','BY','BY','BY','BY','BY','DE','DE','DE','UA','UA',
                'PL','PL','LT','SE'])[1 + floor(random() * 20)::int] AS country,
         CASE WHEN random() < 0.5 THEN lpad(floor(random() * 10000)::int::text, 4, '0') END AS postal_code,
         CASE WHEN random() < 0.1 THEN (ARRAY['Free them all.','Свабоду палітвязням!',
                'For my brother, who is still inside.','Вольному — воля.','Please, "now", not later'])
                [1 + floor(random() * 5)::int] END AS comment,
         CASE WHEN random() < 0.6 THEN 'public' ELSE 'recipients' END AS disclosure,
         date_trunc('second', (now() AT TIME ZONE 'UTC') - interval '90 days'
                              + random() * interval '60 days') AS signed,
         date_trunc('second', (30 + random() * 7170) * interval '1 second') AS delay
  FROM generate_series(1, :rows) AS g
) AS s
WHERE p.slug = :'slug';
UPDATE petitions SET signature_count = :rows WHERE slug = :'slug';
EOF
echo "encrypting the seeded rows"
encrypt_seeded_rows "$PG_URL"
psql "$PG_URL" -qc "VACUUM ANALYZE signatures" >/dev/null

read -r seconds kib < <(measure psql "$PG_URL" -qc \
  "\\copy (SELECT $COLUMNS_SQL FROM signatures WHERE petition_id = (SELECT id FROM petitions WHERE slug = '$SLUG') AND status = 'confirmed' ORDER BY id) TO '/dev/null'")
report postgres baseline "$seconds" "$kib" "$seconds" 0
run_exports postgres "$PG_URL" "$seconds"

echo
echo "Export benchmark, $(date -u +%Y-%m-%d), $ROWS confirmed signatures of one petition;"
echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/ {print $2}') GB RAM;"
echo "SQLite $(python3 -c 'import sqlite3; print(sqlite3.sqlite_version)') for the baseline (the binary bundles its own), PostgreSQL $(psql -tAc 'SHOW server_version' "$ADMIN_URL");"
echo "command: ROWS=$ROWS bench/export.sh"
echo
cat "$RESULTS"
