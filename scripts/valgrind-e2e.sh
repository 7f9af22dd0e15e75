#!/bin/sh
# The end-to-end suite with every openexec process under valgrind (memcheck).
#
#   sh scripts/valgrind-e2e.sh                      # every tests/e2e/test_*.py
#   sh scripts/valgrind-e2e.sh test_http test_abuse # some of them
#
# How: the harness starts whatever OPENEXEC_BIN names, so this points it at a
# small wrapper that execs valgrind with the real binary (built here with gcc,
# RelWithDebInfo, in its own directory).  ctest cannot be used for this: its
# test properties set OPENEXEC_BIN themselves, so the test files are run
# directly, one after another, as ctest would run them.
#
# Verdict: every process writes its own log (valgrind --log-file=...%p).
# Errors (invalid reads/writes, uses of uninitialised values, bad frees,
# fd/syscall misuse) are reported as they happen, so they are caught even in
# servers the tests stop with SIGKILL; leaks can only be checked in processes
# that exit (SIGTERM -> exit 0, and every CLI subcommand): definite leaks
# there count as errors.  --error-exitcode also makes such a process exit 99,
# which the test that started it sees.
#
# Environment:
#   VALGRIND_BUILD   build directory (default <repo>/build-valgrind)
#   VALGRIND_OUT     where the logs go (default <build>/valgrind-logs; emptied)
#   VALGRIND_SUPP    extra suppressions file (optional)
#   OE_E2E_TIME_SCALE  latency bounds of test_abuse.py (default here 10);
#                   OE_E2E_VALGRIND=1 is set for the tests, which may skip
#                   what valgrind itself changes (file descriptor limits)
#
# Exit: 0 valgrind clean and every test file passed; 1 valgrind found errors;
# 3 valgrind clean but some test files failed (timing-sensitive tests may,
# valgrind runs the server ~20-50x slower: see the per-file lines);
# 2 setup problem.
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
build=${VALGRIND_BUILD:-$repo/build-valgrind}
out=${VALGRIND_OUT:-$build/valgrind-logs}
python=/usr/bin/python3
[ -x "$python" ] || python=$(command -v python3)

if ! command -v valgrind >/dev/null 2>&1; then
    echo "valgrind-e2e: valgrind not found (apt-get install valgrind)" >&2
    exit 2
fi

start=$(date +%s)
mkdir -p "$build"
if ! cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build/cmake.log" 2>&1 ||
   ! cmake --build "$build" -j "$(nproc)" --target openexec >"$build/build.log" 2>&1; then
    cat "$build/cmake.log" "$build/build.log" 2>/dev/null | tail -40 >&2
    echo "valgrind-e2e: build failed (logs in $build)" >&2
    exit 2
fi
real_bin="$build/openexec"

rm -rf "$out"
mkdir -p "$out"
supp=
if [ -n "${VALGRIND_SUPP:-}" ]; then
    supp="--suppressions=$VALGRIND_SUPP"
fi
wrapper="$out/openexec-valgrind"
cat >"$wrapper" <<EOF
#!/bin/sh
exec valgrind --tool=memcheck --error-exitcode=99 \\
    --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \\
    --track-origins=yes --num-callers=40 --child-silent-after-fork=yes $supp \\
    --log-file="$out/vg.%p.log" "$real_bin" "\$@"
EOF
chmod +x "$wrapper"

# The harness's own timeouts (server start, request, stop) are made for a
# native server; valgrind needs more.  Rather than editing the harness, each
# test file runs under this bootstrap, which stretches the default `timeout`
# of Server.start/stop/request by OE_E2E_TIME_SCALE before the file runs.
cat >"$out/run-scaled.py" <<'PYEOF'
import inspect, os, runpy, sys
import harness
scale = float(os.environ.get("OE_E2E_TIME_SCALE", "1"))
for name in ("start", "stop", "request"):
    fn = getattr(harness.Server, name, None)
    if fn is None or fn.__defaults__ is None:
        continue
    params = [p for p in inspect.signature(fn).parameters.values() if p.default is not p.empty]
    fn.__defaults__ = tuple(p.default * scale if p.name == "timeout" else p.default
                            for p in params)
path = sys.argv[1]
sys.argv = [path]
runpy.run_path(path, run_name="__main__")
PYEOF

# Which test files.
files=
if [ $# -gt 0 ]; then
    for name in "$@"; do
        f="$repo/tests/e2e/${name%.py}.py"
        [ -f "$f" ] || { echo "valgrind-e2e: no such test file: $f" >&2; exit 2; }
        files="$files $f"
    done
else
    files=$(ls "$repo"/tests/e2e/test_*.py)
fi

built=$(date +%s)
echo "valgrind-e2e: server built in $((built - start))s; logs in $out"
failed_files=
for f in $files; do
    name=$(basename "$f" .py)
    t0=$(date +%s)
    if OPENEXEC_BIN="$wrapper" OE_SOURCE_DIR="$repo" \
       OE_SHARED_DIR="${OE_SHARED_DIR:-$repo/../shared}" PYTHONPATH="$repo/tests/e2e" \
       OE_E2E_TIME_SCALE="${OE_E2E_TIME_SCALE:-10}" OE_E2E_VALGRIND=1 \
       timeout 3600 "$python" -B "$out/run-scaled.py" "$f" >"$out/$name.out" 2>&1; then
        result=passed
    else
        result=FAILED
        failed_files="$failed_files $name"
    fi
    t1=$(date +%s)
    summary=$(grep -E '^(Ran |OK|FAILED)' "$out/$name.out" | tr '\n' ' ')
    printf '%-22s %-6s %5ss  %s\n' "$name" "$result" "$((t1 - t0))" "$summary"
done

# Valgrind's verdict, from the per-process logs: every error record (an
# "==PID== <kind>" line and its stack), grouped by kind and by the first
# frames that name a source line, so one defect seen in 30 processes is
# listed once.
procs=$(ls "$out"/vg.*.log 2>/dev/null | wc -l)
bad=$("$python" - "$out" <<'PYEOF'
import glob, os, re, sys
KIND = re.compile(r"^==\d+== (Invalid (read|write|free)|Conditional jump|Use of uninitialised|"
                  r"Syscall param|Mismatched free|Source and destination overlap|"
                  r"Argument .* of function .* has a fishy|"
                  r"[\d,]+ (\([\d,]+ direct, [\d,]+ indirect\) )?bytes in [\d,]+ blocks are definitely lost)")
FRAME = re.compile(r"^==\d+==    (?:at|by) 0x[0-9A-F]+: (.*)$")
groups, bad, summary = {}, 0, []
for log in sorted(glob.glob(os.path.join(sys.argv[1], "vg.*.log"))):
    lines = open(log, errors="replace").read().splitlines()
    cmd = next((l.split("Command: ", 1)[1] for l in lines if "Command: " in l), "?")
    found = False
    for i, line in enumerate(lines):
        if not KIND.match(line):
            continue
        found = True
        kind = re.sub(r"\d[\d,]*\d|\d", "N", line.split("== ", 1)[1])
        kind = re.sub(r" in loss record N of N", "", kind)
        frames = []
        for f in lines[i + 1:i + 40]:
            m = FRAME.match(f)
            if not m:
                break
            frames.append(m.group(1))
        ours = [f for f in frames if re.search(r"\((?!.*\.so)[\w./-]+\.c:\d+\)", f)]
        key = (kind, tuple(frames[:2]), tuple(ours[:3]))
        g = groups.setdefault(key, {"count": 0, "cmds": set()})
        g["count"] += 1
        g["cmds"].add(" ".join(cmd.split()[1:3]))
    bad += found
for (kind, top, ours), g in sorted(groups.items(), key=lambda kv: -kv[1]["count"]):
    summary.append("---- %dx  %s" % (g["count"], kind))
    summary += ["        " + f for f in top + ours]
    summary.append("        in: " + ", ".join(sorted(g["cmds"]))[:200])
with open(os.path.join(sys.argv[1], "summary.txt"), "w") as f:
    f.write("".join(line + "\n" for line in summary))
print(bad)
PYEOF
)
cat "$out/summary.txt"
end=$(date +%s)
echo "valgrind-e2e: $procs openexec processes, $bad with errors;" \
     "failed test files:${failed_files:- none}; total $((end - start))s"
if [ "$bad" -gt 0 ]; then
    exit 1
fi
if [ -n "$failed_files" ]; then
    exit 3
fi
exit 0
