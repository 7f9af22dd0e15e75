#!/bin/sh
# Bounded fuzzing for CI: builds every libFuzzer target (fuzz/fuzz_*.c) with
# clang and runs each for FUZZ_SECONDS on a copy of its seed corpus
# fuzz/corpus/<name without the fuzz_ prefix>/.  Any crash, sanitizer report
# (ASan, UBSan, LeakSanitizer), timeout or out-of-memory fails the run.
#
#   sh scripts/fuzz-ci.sh                 # every target, 60 s each
#   FUZZ_SECONDS=10 sh scripts/fuzz-ci.sh fuzz_canon fuzz_request
#
# Environment:
#   FUZZ_SECONDS    seconds per target (default 60)
#   FUZZ_BUILD      build directory (default <repo>/build-fuzz-ci)
#   FUZZ_ARTIFACTS  where crashing inputs and logs are kept
#                   (default <build>/artifacts)
#   FUZZ_JOBS       parallel compile jobs (default: number of CPUs)
#
# The repository's corpora are never modified (each run fuzzes a copy; new
# inputs are thrown away).  -max_len comes from the target's own "Run:"
# header line, so the targets document and drive it in one place.
# One line per target, then a total; exit 0 iff every target ran clean,
# 1 when one failed, 2 on a setup problem (no clang, no corpus, build error).
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
seconds=${FUZZ_SECONDS:-60}
build=${FUZZ_BUILD:-$repo/build-fuzz-ci}
artifacts=${FUZZ_ARTIFACTS:-$build/artifacts}
jobs=${FUZZ_JOBS:-$(nproc)}

case $seconds in
'' | *[!0-9]*) echo "fuzz-ci: FUZZ_SECONDS must be a whole number of seconds" >&2; exit 2 ;;
esac
if ! command -v clang >/dev/null 2>&1; then
    echo "fuzz-ci: clang not found (apt-get install clang)" >&2
    exit 2
fi

# Targets: the arguments, or every fuzz/fuzz_*.c.
if [ $# -gt 0 ]; then
    targets=$*
else
    targets=
    for src in "$repo"/fuzz/fuzz_*.c; do
        targets="$targets $(basename "$src" .c)"
    done
fi
for t in $targets; do
    if [ ! -f "$repo/fuzz/$t.c" ]; then
        echo "fuzz-ci: no such target: fuzz/$t.c" >&2
        exit 2
    fi
    corpus="$repo/fuzz/corpus/${t#fuzz_}"
    if [ ! -d "$corpus" ] || [ -z "$(ls -A "$corpus")" ]; then
        echo "fuzz-ci: $t has no seed corpus in ${corpus#$repo/}/" >&2
        exit 2
    fi
done

start=$(date +%s)
mkdir -p "$build" "$artifacts"
if ! CC=clang cmake -S "$repo" -B "$build" -DOE_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        >"$build/cmake.log" 2>&1 ||
   ! cmake --build "$build" -j "$jobs" --target $targets >"$build/build.log" 2>&1; then
    cat "$build/cmake.log" "$build/build.log" 2>/dev/null | tail -40 >&2
    echo "fuzz-ci: build failed (logs in $build)" >&2
    exit 2
fi
built=$(date +%s)

# UBSan only reports and carries on unless told otherwise; a finding must
# stop the run like an ASan one does.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1:abort_on_error=0"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}halt_on_error=1:print_stacktrace=1"

work=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-ci.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

stat_of() { # stat_of NAME LOG -> value of libFuzzer's "stat::NAME:" line
    sed -n "s/^stat::$1: *//p" "$2" | tail -1
}

failed=0
for t in $targets; do
    name=${t#fuzz_}
    max_len=$(sed -n 's/.*Run:.*-max_len=\([0-9][0-9]*\).*/\1/p' "$repo/fuzz/$t.c" | head -1)
    max_len=${max_len:-4096}
    copy="$work/$name"
    mkdir -p "$copy"
    cp "$repo/fuzz/corpus/$name/"* "$copy/"
    seeds=$(ls "$copy" | wc -l)
    log="$artifacts/$t.log"
    t0=$(date +%s)
    if "$build/$t" -max_total_time="$seconds" -max_len="$max_len" -timeout=25 \
            -rss_limit_mb=2560 -print_final_stats=1 -close_fd_mask=1 \
            -artifact_prefix="$artifacts/$t-" "$copy" >"$log" 2>&1; then
        status=ok
    else
        status=FAILED
        failed=$((failed + 1))
    fi
    t1=$(date +%s)
    runs=$(stat_of number_of_executed_units "$log")
    rss=$(stat_of peak_rss_mb "$log")
    grown=$(ls "$copy" | wc -l)
    if [ "$status" = ok ]; then
        printf '%-16s ok      %4ss  %10s runs  corpus %s -> %s  max_len %s  peak %s MB\n' \
            "$t" "$((t1 - t0))" "${runs:-?}" "$seeds" "$grown" "$max_len" "${rss:-?}"
    else
        what=$(grep -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|==ERROR' \
               "$log" || true)
        crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        printf '%-16s FAILED  %4ss  %s\n' "$t" "$((t1 - t0))" "${what:-see log}"
        printf '%-16s         input: %s  log: %s\n' "" "${crash:-none}" "$log"
    fi
done

end=$(date +%s)
echo "fuzz-ci: $(echo $targets | wc -w) targets, $failed failed, ${seconds}s each;" \
     "build $((built - start))s, total $((end - start))s"
[ "$failed" -eq 0 ] || exit 1
