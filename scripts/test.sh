#!/bin/sh
# Runs every test of one build directory with ctest, against both stores:
#
#   1. everything (unit tests, end-to-end tests on SQLite);
#   2. the end-to-end tests again on PostgreSQL, with the PostgreSQL
#      backend's own unit test: a throwaway cluster (scripts/pg-cluster.sh,
#      initdb in a temp dir, loopback port) whose URL is handed to the suite
#      as OE_TEST_PG_URL.  The harness gives every test server its own
#      database in it; test_multi_instance, test_pg_faults and
#      test_store_pg do their work only in this pass.
#
# The first failing pass stops the script with its status.  The cluster is
# always stopped and deleted on the way out; clusters left by runs that were
# killed outright are cleaned up at the next start.  The output ends with
# the last pass's ctest summary line.
set -eu
unset OE_TEST_PG_URL # pass 1 is SQLite whatever the caller's environment says
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
jobs=$(nproc)
cd "$build"

echo "== pass 1: all tests (SQLite store)"
ctest --output-on-failure -j "$jobs" --timeout 600

# One cluster per run (two runs on one machine do not collide); a cluster
# whose run is gone is stale.
for stale in "${TMPDIR:-/tmp}"/openexec-test-pg.*; do
    [ -d "$stale" ] || continue
    pid=${stale##*.}
    kill -0 "$pid" 2>/dev/null || OE_PG_DIR=$stale sh "$here/pg-cluster.sh" stop || true
done
OE_PG_DIR="${TMPDIR:-/tmp}/openexec-test-pg.$$"
export OE_PG_DIR
cleanup() {
    sh "$here/pg-cluster.sh" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

echo "== pass 2: end-to-end tests (PostgreSQL store)"
url=$(sh "$here/pg-cluster.sh" start)
OE_TEST_PG_URL=$url ctest --output-on-failure -j "$jobs" --timeout 600 \
    -R '^(e2e\.|unit\.test_store_pg$)'
