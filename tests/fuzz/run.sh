#!/bin/sh
# tests/fuzz/run.sh: `make fuzz`. For each target: replays the inputs saved as
# tests/fuzz/<target>/crash-* (and leak-*, timeout-*, oom-*), which must no longer fail
# once their fix is in; then fuzzes for SECONDS on the working corpus
# BUILD/corpus/<target>/, seeded from the other files of tests/fuzz/<target>/ (the saved
# failures are kept out of it, or each run would stop on them at once), with
# tests/fuzz/<target>.dict when there is one. New failures go to BUILD/artifacts/<target>/.
# Exits 1 when any target failed.
# Usage: tests/fuzz/run.sh BUILD SECONDS TARGET...
set -u
[ $# -ge 2 ] || { echo "usage: $0 BUILD SECONDS TARGET..." >&2; exit 2; }
b=$1
secs=$2
shift 2
status=0
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
for t in "$@"; do
    bin=$b/fuzz_$t
    seeds=tests/fuzz/$t
    work=$b/corpus/$t
    art=$b/artifacts/$t
    log=$b/fuzz_$t.log
    mkdir -p "$work" "$art"
    for f in "$seeds"/*; do
        [ -f "$f" ] || continue
        case $(basename "$f") in
        crash-* | leak-* | timeout-* | oom-*)
            if ! "$bin" -runs=1 "$f" </dev/null >"$log.replay" 2>&1; then
                echo "fuzz $t: FAIL: the saved input $f still fails:"
                grep -E '==ERROR|runtime error|^SUMMARY|^fuzz_[a-z_]+: ' "$log.replay" | head -4
                status=1
            fi
            ;;
        *) cp "$f" "$work/" ;;
        esac
    done
    dict=""
    [ -f "tests/fuzz/$t.dict" ] && dict="-dict=tests/fuzz/$t.dict"
    # shellcheck disable=SC2086
    if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$art/" $dict "$work" </dev/null >"$log" 2>&1; then
        stats=$(grep -E '^#[0-9]+' "$log" | tail -1)
        echo "fuzz $t: ok: $stats"
    else
        echo "fuzz $t: FAIL (log: $log):"
        grep -E '==ERROR|runtime error|^SUMMARY|^fuzz_[a-z_]+: |Test unit written' "$log" | head -6
        echo "  minimise: $bin -minimize_crash=1 -runs=100000 <artifact>; save it as" \
            "$seeds/crash-<name> with a unit test or case before the fix"
        status=1
    fi
done
exit $status
