#!/usr/bin/env bash
# Run Kequn's tests on this machine, set up as the tests need it:
#   1. the system programs the tests use (Debian packages; installed when run as root with
#      apt-get, otherwise named with the command that installs them):
#        chromium             browser tests (Playwright drives Debian's chromium, no download)
#        fonts-wqy-microhei   the Chinese font of the PDF reports and browser screenshots
#        postgresql-client    pg_dump / pg_restore of the backup tests
#        default-jre-headless the JVM of the PySpark test
#        redis-server         the Redis cache test (started on 127.0.0.1:6379 when down)
#      and the CDNOW reference data of the analytics tests in ../shared/data;
#   2. the suite on the embedded SQLite database;
#   3. the suite again on PostgreSQL when one answers on 127.0.0.1:5432 (user postgres),
#      without the tests marked `pure` (the same on every database: tests/conftest.py)
#      and those marked `sqlite_only` (tests/conftest.py leaves them out on PostgreSQL).
#
# Usage (in the virtualenv, after `pip install -c constraints.txt -e '.[test]'`):
#   scripts/test.sh [pytest arguments]        e.g. scripts/test.sh -k smoke
# Environment:
#   KEQUN_TEST_WORKERS       pytest-xdist workers (default auto: one per core)
#   KEQUN_TEST_PG_URL        database of the PostgreSQL run (its test databases are
#                            test_<name>_gw0, ...) [postgresql://postgres@127.0.0.1:5432/kequn_test]
#   KEQUN_TEST_REQUIRE_POSTGRES=1   fail when PostgreSQL does not answer (CI) instead of
#                            running on SQLite only
set -uo pipefail
cd "$(dirname "$0")/.."

WORKERS="${KEQUN_TEST_WORKERS:-auto}"
PG_URL="${KEQUN_TEST_PG_URL:-postgresql://postgres@127.0.0.1:5432/kequn_test}"
DATA="$(cd .. && pwd)/shared/data"

say() { printf '== %s\n' "$*"; }
fail() { printf 'scripts/test.sh: %s\n' "$*" >&2; exit 2; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

python -c "import kequn, pytest, xdist" 2>/dev/null ||
  fail "Kequn and its test extras are not installed here: run pip install -c constraints.txt -e '.[test]' first"

say "System packages"
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
fc-list 2>/dev/null | grep -qi wqy || missing+=(fonts-wqy-microhei)
{ command -v pg_dump && command -v pg_restore; } >/dev/null 2>&1 || missing+=(postgresql-client)
command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)
if ! port_open 6379 && ! command -v redis-server >/dev/null 2>&1; then
  missing+=(redis-server)
fi
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends "${missing[@]}" >/dev/null ||
      fail "apt-get could not install ${missing[*]}"
  else
    fail "the tests need these Debian packages, missing here: ${missing[*]}; install them with: sudo apt-get install ${missing[*]}"
  fi
fi
if ! port_open 6379; then
  echo "starting redis-server on 127.0.0.1:6379"
  redis-server --bind 127.0.0.1 --port 6379 --save '' --daemonize yes >/dev/null ||
    fail "Redis is not answering on 127.0.0.1:6379 and redis-server could not start it"
  for _ in $(seq 1 20); do port_open 6379 && break; sleep 0.5; done
  port_open 6379 || fail "Redis did not start on 127.0.0.1:6379"
fi
echo "chromium, WenQuanYi font, pg_dump/pg_restore, java and Redis are there"

say "Reference data"
for name in cdnow_master.txt cdnow_sample.txt; do
  [ -s "$DATA/$name" ] ||
    fail "$DATA/$name is missing: the analytics tests need the CDNOW files (Fader & Hardie) in ../shared/data beside the repository"
done
echo "CDNOW files in $DATA"

postgres=no
if port_open 5432 && python - "$PG_URL" <<'EOF' 2>/dev/null; then postgres=yes; fi
import sys, psycopg
with psycopg.connect(sys.argv[1].rsplit("/", 1)[0] + "/postgres", connect_timeout=5) as c:
    c.execute("SELECT 1")
EOF
if [ "$postgres" = no ] && [ "${KEQUN_TEST_REQUIRE_POSTGRES:-0}" = 1 ]; then
  fail "PostgreSQL is not answering on 127.0.0.1:5432 (user postgres) and this run requires it"
fi

WORK="$(mktemp -d /tmp/kequn-tests.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
status=0

say "Tests on SQLite"
env -u KEQUN_DATABASE_URL KEQUN_DATA_DIR="$WORK/data-sqlite" \
  python -m pytest -n "$WORKERS" "$@" || status=1

if [ "$postgres" = yes ]; then
  say "Tests on PostgreSQL ($PG_URL)"
  KEQUN_DATA_DIR="$WORK/data-postgresql" KEQUN_DATABASE_URL="$PG_URL" \
    python -m pytest -n "$WORKERS" -m "not pure" "$@" || status=1
else
  say "PostgreSQL is not answering on 127.0.0.1:5432: the PostgreSQL run is left out"
fi

if [ "$status" = 0 ]; then say "All test runs passed"; else say "Some test run FAILED"; fi
exit "$status"
