#!/bin/sh
# tests/cli/report.sh: black-box tests of `paved audit report`. Run from the repo root
# after `make build/paved build/release/paved-test build/release/tests/test_report`:
#   PAVED=build/paved B=build/release sh tests/cli/report.sh
# The store is the history of tests/unit/test_report.c (its header lists every service
# and figure), written by that test through the real writer when PAVED_REPORT_DB names
# a path. The window is given as dates (2026-11-02 to 2026-12-07); the expiring list and
# the default window, which depend on "now", run $B/paved-test with the test clock
# (server/base/clock.h) set to one minute before 2026-12-07T00:00Z. Figures are checked
# with python3 (JSON) and grep (table, CSV). Prints "ok - NAME" or "FAIL - NAME"; the
# last line is "N passed, N failed"; exit status 1 when any failed.
# POSIX sh (dash); temporaries live in one mktemp -d directory removed on exit.
# $WINDOW is split into words on purpose:
# shellcheck disable=SC2086
set -u

PAVED=${PAVED:-build/paved}
B=${B:-build/release}
PAVED_TEST=${PAVED_TEST:-$B/paved-test}
TEST_REPORT=${TEST_REPORT:-$B/tests/test_report}
passed=0
failed=0

for x in "$PAVED" "$PAVED_TEST" "$TEST_REPORT"; do
    if [ ! -x "$x" ]; then
        echo "FAIL - setup: $x is not an executable (make build/paved $PAVED_TEST $TEST_REPORT)"
        echo "0 passed, 1 failed"
        exit 1
    fi
done

T=$(mktemp -d "${TMPDIR:-/tmp}/paved-report-cli.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
trap 'exit 130' INT TERM

DB="$T/report.db"
WINDOW="--since 2026-11-02 --until 2026-12-07"
NOW_S=1796601600 # 2026-12-07T00:00:00Z, the "now" of test_report.c

# run ARGS...: runs paved (timeout 60 s); stdout in $T/out, stderr in $T/err, status in $rc.
run() {
    timeout 60 "$PAVED" "$@" </dev/null >"$T/out" 2>"$T/err"
    rc=$?
}

# run_at ARGS...: like run, with paved-test whose clock reads 60 s before NOW_S (the
# margin keeps "now + 14 days" clear of the exception that expires exactly then).
run_at() {
    echo $((NOW_S - 60 - $(date +%s))) >"$T/clock"
    PAVED_TEST_CLOCK="$T/clock" timeout 60 "$PAVED_TEST" "$@" </dev/null >"$T/out" 2>"$T/err"
    rc=$?
}

pass() {
    passed=$((passed + 1))
    echo "ok - $1"
}

fail() {
    failed=$((failed + 1))
    echo "FAIL - $1: $2"
    sed 's/^/    out: /' "$T/out" | head -n 30
    sed 's/^/    err: /' "$T/err" | head -n 10
}

# check NAME STATUS [PATTERN [FILE]]: the last run exited with STATUS and FILE
# ($T/out by default) contains the fixed string PATTERN.
check() {
    if [ "$rc" -ne "$2" ]; then
        fail "$1" "exit status $rc, expected $2"
    elif [ $# -ge 3 ] && ! grep -qF -- "$3" "${4:-$T/out}"; then
        fail "$1" "output lacks '$3'"
    else
        pass "$1"
    fi
}

# check_json NAME PYTHON: the last run succeeded and PYTHON (an expression over the
# parsed document 'd' and the helpers below) is true.
check_json() {
    if [ "$rc" -ne 0 ]; then
        fail "$1" "exit status $rc, expected 0"
    elif python3 - "$T/out" "$2" >"$T/py" 2>&1 <<'EOF'; then
import json, sys
d = json.load(open(sys.argv[1]))
def team(name):
    return next(t for t in d["teams"] if t["team"] == name)
def names(arr, key):
    return [x[key] for x in arr]
ok = eval(sys.argv[2])
if not ok:
    print("false: " + sys.argv[2])
sys.exit(0 if ok else 1)
EOF
        pass "$1"
    else
        fail "$1" "$(cat "$T/py")"
    fi
}

# ---- fixture -----------------------------------------------------------------------

PAVED_REPORT_DB="$DB" timeout 120 "$TEST_REPORT" >"$T/out" 2>"$T/err"
rc=$?
check "fixture: test_report builds the store" 0
if [ ! -f "$DB" ]; then
    echo "FAIL - setup: $TEST_REPORT left no store at $DB"
    echo "$passed passed, $((failed + 1)) failed"
    exit 1
fi

# ---- help and usage ----------------------------------------------------------------

run audit report --help
check "help: definitions" 0 "voluntary       golden / (golden + exception)"
check "help: new service" 0 "a (team, service) whose first recorded deploy or provision"
run audit --help
check "audit help lists report" 0 "  report    adoption of the golden path per team"

run audit report $WINDOW
check "usage: --db required" 2 "--db FILE is required" "$T/err"
run audit report --db "$DB" --by year
check "usage: --by year" 2 "--by: expected day, week or month" "$T/err"
run audit report --db "$DB" --format xml
check "usage: --format xml" 2 "--format: expected table, json or csv" "$T/err"
run audit report --db "$DB" --since 2026-12-07 --until 2026-11-02
check "usage: --until before --since" 2 "--until must be later than --since" "$T/err"
run audit report --db "$DB" --since yesterday
check "usage: bad --since" 2 "--since: not a duration" "$T/err"
run audit report --db "$DB" --top 0
check "usage: --top 0" 2 "--top: expected a number from 1 to 1000" "$T/err"
run audit report --db "$DB" --expiring-days 14x
check "usage: --expiring-days 14x" 2 "--expiring-days: expected a number" "$T/err"
run audit report --db "$DB" extra
check "usage: extra argument" 2 "unexpected argument" "$T/err"
run audit report --db "$T/missing.db"
check "missing store" 2 "no such file" "$T/err"

# ---- table -------------------------------------------------------------------------

run audit report --db "$DB" $WINDOW
check "table: header" 0 "TEAM       PERIOD        NEW  GOLDEN  EXCEPTION  OFF-ROAD  DENIED  BREAK-GLASS  HEADLINE  VOLUNTARY  FLAG"
check "table: merit at 80 % voluntary" 0 "merit      all             2       8          2         0       0            0    100.0%      80.0%  merit"
check "table: policy at 30 % voluntary, 90 % headline" 0 "policy     all             2      11          7         0       2            0     90.0%      30.0%  policy"
check "table: no figure without decisions" 0 "quiet      all             1       0          0         0       0            0         -          -  -"
check "table: all teams" 0 "all teams  all             6      20          9         2       3            1     82.9%      55.0%  -"
check "table: top policy" 0 "no-latest                3         3  merit,policy"
if grep -q "^old \|^yearend " "$T/out"; then
    fail "table: services first seen outside the window" "listed"
else
    pass "table: services first seen outside the window"
fi

run audit report --db "$DB" $WINDOW --by week --team policy
check "table: by week, one team" 0 "policy     2026-W49        1       8          0         0       2            0     80.0%          -  -"
check "table: by week, the team's total" 0 "policy     total           2      11          7         0       2            0     90.0%      30.0%  policy"

run audit report --db "$DB" $WINDOW --team nobody
check "table: a team with nothing" 0 "nobody     all             0       0          0         0       0            0         -          -  -"

# ---- CSV ---------------------------------------------------------------------------

run audit report --db "$DB" $WINDOW --by week --format csv
check "csv: header" 0 "team,period,start,new_services,golden,exception,off_road,denied,breakglass,decisions,eligible_golden,eligible_exception,headline_adoption,voluntary_adoption,winning_on_merit,winning_on_policy"
check "csv: policy W47" 0 "policy,2026-W47,2026-11-16T00:00:00Z,1,3,7,0,0,0,10,3,7,1.0000,0.3000,false,true"
check "csv: null figures are empty" 0 "quiet,2026-W47,2026-11-16T00:00:00Z,1,0,0,0,0,0,0,0,0,,,false,false"
n=$(wc -l <"$T/out" | tr -d ' ')
if [ "$n" -eq 7 ]; then
    pass "csv: a header and one row per team and period"
else
    fail "csv: a header and one row per team and period" "$n lines, expected 7"
fi

run audit report --db "$DB" $WINDOW --by month --format csv --team policy
check "csv: by month" 0 "policy,2026-12,2026-12-01T00:00:00Z,0,8,0,0,0,0,8,0,0,1.0000,,false,false"

# ---- JSON --------------------------------------------------------------------------

if ! command -v python3 >/dev/null 2>&1; then
    echo "# skip: python3 absent: the JSON checks need it"
else
    run audit report --db "$DB" $WINDOW --format json
    check_json "json: window and teams" \
        'd["since"] == "2026-11-02T00:00:00Z" and d["until"] == "2026-12-07T00:00:00Z" and d["by"] == "none" and names(d["teams"], "team") == ["merit", "mixed", "policy", "quiet"]'
    check_json "json: merit wins on merit" \
        'team("merit")["total"]["voluntary_adoption"] == 0.8 and team("merit")["total"]["winning_on_merit"] is True and team("merit")["total"]["winning_on_policy"] is False'
    check_json "json: policy wins on policy" \
        'team("policy")["total"]["headline_adoption"] == 0.9 and team("policy")["total"]["voluntary_adoption"] == 0.3 and team("policy")["total"]["winning_on_policy"] is True'
    check_json "json: null figures" \
        'team("quiet")["total"]["headline_adoption"] is None and team("mixed")["total"]["voluntary_adoption"] is None'
    check_json "json: total over all teams" \
        'd["total"]["total"]["decisions"] == 35 and d["total"]["total"]["new_services"] == 6 and d["total"]["periods"][0]["period"] == "all"'
    check_json "json: top exception policies" \
        '[(p["policy"], p["exceptions"], p["approved_or_active"], p["teams"]) for p in d["top_exception_policies"]] == [("no-latest", 3, 3, ["merit", "policy"]), ("cost-tags", 3, 2, ["mixed", "policy"]), ("require-probes", 3, 2, ["merit", "policy"])]'

    run audit report --db "$DB" $WINDOW --format json --by week
    check_json "json: ISO weeks, empty ones left out" \
        'names(d["total"]["periods"], "period") == ["2026-W45", "2026-W46", "2026-W47", "2026-W49"] and names(team("merit")["periods"], "period") == ["2026-W45", "2026-W46"]'

    run audit report --db "$DB" $WINDOW --format json --top 2 --team policy
    check_json "json: team filter and --top" \
        'names(d["teams"], "team") == ["policy"] and names(d["top_exception_policies"], "policy") == ["require-probes", "cost-tags"]'

    run_at audit report --db "$DB" $WINDOW --format json
    check_json "json: expiring within 14 days, soonest first" \
        'names(d["expiring"], "id") == ["EXC-01", "EXC-07"] and d["expiring"][0]["expires_at"] == "2026-12-10T00:00:00Z" and d["expiring"][0]["policies"] == ["require-probes", "no-latest"]'

    run_at audit report --db "$DB" $WINDOW --format json --expiring-days 30
    check_json "json: --expiring-days 30" \
        'd["expiring_days"] == 30 and names(d["expiring"], "id") == ["EXC-01", "EXC-07", "EXC-09", "EXC-05"]'

    # The default window is the 30 days before now: m-a and x-a (first seen on Nov 2 and
    # Nov 5) are no longer new.
    run_at audit report --db "$DB" --format json
    check_json "json: default window, 30 days" \
        'names(d["teams"], "team") == ["merit", "policy", "quiet"] and team("merit")["total"]["voluntary_adoption"] == 0.6 and d["until_ms"] - d["since_ms"] == 30 * 86400000'
fi

run_at audit report --db "$DB" $WINDOW
check "table: expiring list" 0 "EXC-07                          2026-12-17T00:00:00Z  policy     p-b                 cost-tags"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
