#!/bin/sh
# tests/run.sh BUILD_DIR [PATTERN]: runs every suite against the binaries of one build
# variant and closes with the total "N passed, N failed". PATTERN (make test T=...)
# keeps only the suites whose name contains it. PAVED_VALGRIND=1 runs the unit tests
# and the policy suites under valgrind, failing on any leak or error.
set -u
B=${1:?usage: tests/run.sh BUILD_DIR [PATTERN]}
T=${2:-}
CORPUS=${PAVED_CORPUS:-../shared/corpus}
passed=0
failed=0
skipped=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

VG=""
if [ "${PAVED_VALGRIND:-0}" = 1 ]; then
    VG="valgrind -q --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --error-exitcode=99"
fi

want() { [ -z "$T" ] || case "$1" in *"$T"*) return 0 ;; *) return 1 ;; esac; }

# count_line NAME: reads the "N passed, N failed" line of the suite's output in $log.
count_line() {
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    if [ -z "$line" ]; then
        echo "  $1: no result line (crashed?)"
        failed=$((failed + 1))
        return
    fi
    p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
    passed=$((passed + p))
    failed=$((failed + f))
    echo "  $1: $line"
}

for t in "$B"/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    want "$name" || continue
    # Unit tests speak TAP: count "ok" and "not ok" lines.
    timeout 300 $VG "$t" >"$log" 2>&1
    rc=$?
    ok=$(grep -c '^ok ' "$log")
    nok=$(grep -c '^not ok ' "$log")
    passed=$((passed + ok))
    failed=$((failed + nok))
    if [ $rc -ne 0 ] && [ "$nok" -eq 0 ]; then
        failed=$((failed + 1))
        echo "  $name: exited with status $rc"
        tail -n 20 "$log"
    else
        echo "  $name: $ok passed, $nok failed"
        [ "$nok" -eq 0 ] || grep -A3 '^not ok ' "$log"
    fi
done

if want policies; then
    timeout 600 $VG "$B/paved" test policies/tests >"$log" 2>&1
    count_line "policy cases (policies/tests)"
    grep '^FAIL' "$log" | head -n 40
fi

if want corpus; then
    if [ -d "$CORPUS" ]; then
        timeout 600 $VG "$B/paved" test "$CORPUS" >"$log" 2>&1
        count_line "corpus ($CORPUS)"
        grep '^FAIL' "$log" | head -n 40
    else
        echo "  corpus: skipped: $CORPUS not found (set PAVED_CORPUS to run it)"
        skipped=$((skipped + 1))
    fi
fi

if want cli; then
    PAVED="$B/paved" sh tests/cli/run.sh >"$log" 2>&1
    count_line "cli (tests/cli)"
    grep '^FAIL' "$log" | head -n 40
    PAVED="$B/paved" sh tests/cli/audit.sh >"$log" 2>&1
    count_line "cli (tests/cli/audit.sh)"
    grep '^FAIL' "$log" | head -n 40
fi

if want chart; then
    sh tests/chart/run.sh "$B/paved" >"$log" 2>&1
    count_line "chart (charts/paved: schema, invariants)"
    grep '^FAIL' "$log" | head -n 40
    if [ -f tests/chart/dockerfile.sh ]; then
        sh tests/chart/dockerfile.sh >"$log" 2>&1
        count_line "container image (Dockerfile)"
        grep '^FAIL' "$log" | head -n 40
    fi
fi

if want integration; then
    if [ -f tests/integration/run.py ]; then
        PAVED="$B/paved" timeout 600 python3 tests/integration/run.py >"$log" 2>&1
        count_line "integration (tests/integration, real server)"
        grep '^FAIL' "$log" | head -n 40
    fi
fi

if want workflow; then
    PAVED="$B/paved" PAVED_TEST="$B/paved-test" timeout 400 python3 tests/integration/workflow.py >"$log" 2>&1
    count_line "workflow (exceptions, break-glass, notifications; real server and receiver)"
    grep -A6 '^FAIL' "$log" | head -n 60
fi

if want platform; then
    # Debian's python3 has python3-jwt and python3-cryptography (tools/deps.sh test).
    PY=python3
    [ -x /usr/bin/python3 ] && PY=/usr/bin/python3
    PAVED="$B/paved" timeout 400 "$PY" tests/integration/platform.py >"$log" 2>&1
    count_line "platform (credentials, quotas, cost; real server, real JWKS over HTTPS)"
    grep -A6 '^FAIL' "$log" | head -n 60
fi

if want cli; then
    for s in tests/cli/exceptions.sh tests/cli/report.sh tests/cli/creds.sh; do
        [ -f "$s" ] || continue
        PAVED="$B/paved" B="$B" sh "$s" >"$log" 2>&1
        count_line "cli ($s)"
        grep '^FAIL' "$log" | head -n 40
    done
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
