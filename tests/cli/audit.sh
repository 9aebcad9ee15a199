#!/bin/sh
# tests/cli/audit.sh: black-box tests of `paved audit verify|query|export`. Run from the
# repo root:   PAVED=build/paved sh tests/cli/audit.sh
# The fixture database is built with the sqlite3 shell and sha256sum, hashing each row
# by the canonical form documented in audit/chain.c, so this also proves that a third
# party can recompute the chain from that description. Prints "ok - NAME" or
# "FAIL - NAME"; the last line is "N passed, N failed"; exit status 1 when any failed.
# POSIX sh (dash); temporaries live in one mktemp -d directory removed on exit.
set -u

PAVED=${PAVED:-build/paved}
passed=0
failed=0

if [ ! -x "$PAVED" ]; then
    echo "FAIL - setup: $PAVED is not an executable (build it with make)"
    echo "0 passed, 1 failed"
    exit 1
fi
if ! command -v sqlite3 >/dev/null 2>&1 || ! command -v sha256sum >/dev/null 2>&1; then
    echo "FAIL - setup: needs the sqlite3 shell and sha256sum (make deps-test)"
    echo "0 passed, 1 failed"
    exit 1
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/paved-audit-cli.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
trap 'exit 130' INT TERM

# run ARGS...: runs paved (timeout 60 s); stdout in $T/out, stderr in $T/err, status in $rc.
run() {
    timeout 60 "$PAVED" "$@" </dev/null >"$T/out" 2>"$T/err"
    rc=$?
}

pass() {
    passed=$((passed + 1))
    echo "ok - $1"
}

fail() {
    failed=$((failed + 1))
    echo "FAIL - $1: $2"
    sed 's/^/    out: /' "$T/out" | head -n 20
    sed 's/^/    err: /' "$T/err" | head -n 20
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

# check_lines NAME N: the last run succeeded and printed N lines.
check_lines() {
    n=$(wc -l <"$T/out" | tr -d ' ')
    if [ "$rc" -ne 0 ] || [ "$n" -ne "$2" ]; then
        fail "$1" "exit status $rc and $n lines, expected 0 and $2"
    else
        pass "$1"
    fi
}

# ---- fixture -----------------------------------------------------------------------

DB="$T/paved.db"

# ns VALUE: one netstring "<length>:<value>," (ASCII values only).
ns() {
    printf '%s:%s,' "${#1}" "$1"
}

prev=0000000000000000000000000000000000000000000000000000000000000000
rowid=0
sql="$T/fixture.sql"

# add ID TIME_MS SOURCE TEAM SERVICE PATH VIOLATIONS: appends one decision to the
# fixture with request_uid and actor NULL and the chain hash of the canonical row.
add() {
    rowid=$((rowid + 1))
    decision=allow
    [ "$6" = denied ] && decision=deny
    hash=$({
        printf '%s' "$prev"
        ns "$rowid"
        ns "$1"
        ns "$2"
        ns "$3"
        printf '~,'
        ns deploy
        ns CREATE
        ns "$4"
        ns "$5"
        ns default
        ns Deployment
        ns web
        printf '~,'
        ns "$decision"
        ns "$6"
        ns "$7"
        ns ab12
        ns 42
        ns 0
    } | sha256sum | cut -c1-64)
    echo "INSERT INTO decisions VALUES($rowid,'$1',$2,'$3',NULL,'deploy','CREATE','$4','$5'," \
        "'default','Deployment','web',NULL,'$decision','$6','$7','ab12',42,0,'$prev','$hash');" >>"$sql"
    # The fixtures hold at most one violation each.
    for p in $(printf '%s' "$7" | sed -n 's/.*"policy":"\([^"]*\)".*/\1/p'); do
        echo "INSERT OR IGNORE INTO decision_policies VALUES('$p',$rowid);" >>"$sql"
    done
    prev=$hash
}

V_LATEST='[{"binding":"b","policy":"no-latest","enforcement":"warn","message":"pin it"}]'
V_ROOT='[{"binding":"psa","policy":"psa-restricted","enforcement":"deny","message":"root"}]'

cat >"$sql" <<'EOF'
PRAGMA journal_mode=WAL;
CREATE TABLE decisions (rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
 time_ms INTEGER NOT NULL, source TEXT NOT NULL, request_uid TEXT, kind TEXT NOT NULL,
 operation TEXT, team TEXT NOT NULL, service TEXT, namespace TEXT, resource_kind TEXT,
 resource_name TEXT, actor TEXT, decision TEXT NOT NULL, path TEXT NOT NULL,
 violations TEXT NOT NULL, bundle_hash TEXT, latency_us INTEGER NOT NULL,
 dry_run INTEGER NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL) STRICT;
CREATE TABLE decision_policies (policy TEXT NOT NULL, decision_rowid INTEGER NOT NULL,
 PRIMARY KEY (policy, decision_rowid)) STRICT, WITHOUT ROWID;
CREATE TABLE services (team TEXT NOT NULL, service TEXT NOT NULL,
 first_seen_ms INTEGER NOT NULL, first_path TEXT NOT NULL, first_decision_id TEXT NOT NULL,
 PRIMARY KEY (team, service)) STRICT, WITHOUT ROWID;
PRAGMA user_version = 1;
EOF
# 2026-11-01T00:00:00Z is 1793491200000 ms.
add dec-01AAAAAAAAAAAAAAAAAAAAAAA1 1793491200000 admission payments api golden '[]'
add dec-01AAAAAAAAAAAAAAAAAAAAAAA2 1793494800000 admission payments api off-road "$V_LATEST"
add dec-01AAAAAAAAAAAAAAAAAAAAAAA3 1793577600000 ci search web denied "$V_ROOT"
add dec-01AAAAAAAAAAAAAAAAAAAAAAA4 1793581200000 admission search web golden '[]'
add dec-01AAAAAAAAAAAAAAAAAAAAAAA5 1793664000000 admission payments web exception "$V_ROOT"
add dec-01AAAAAAAAAAAAAAAAAAAAAAA6 1793667600000 api infra db golden '[]'
if ! sqlite3 "$DB" <"$sql" >/dev/null 2>"$T/err"; then
    echo "FAIL - setup: sqlite3 could not build the fixture: $(cat "$T/err")"
    echo "0 passed, 1 failed"
    exit 1
fi

# ---- verify ------------------------------------------------------------------------

run audit verify --db "$DB"
check "verify: an intact chain" 0 "chain ok: 6 rows"

cp "$DB" "$T/tampered.db"
sqlite3 "$T/tampered.db" "UPDATE decisions SET team='evil' WHERE rowid=3"
run audit verify --db "$T/tampered.db"
check "verify: a changed field names its row" 1 "rowid 3 (decision dec-01AAAAAAAAAAAAAAAAAAAAAAA3)"
check "verify: says why" 1 "modified"

cp "$DB" "$T/deleted.db"
sqlite3 "$T/deleted.db" "DELETE FROM decisions WHERE rowid=2"
run audit verify --db "$T/deleted.db"
check "verify: a deleted row names the next" 1 "rowid 3 (decision dec-01AAAAAAAAAAAAAAAAAAAAAAA3)"

cp "$DB" "$T/relinked.db"
sqlite3 "$T/relinked.db" "UPDATE decisions SET prev_hash='$prev' WHERE rowid=4"
run audit verify --db "$T/relinked.db"
check "verify: a rewritten prev_hash" 1 "prev_hash"

# ---- query -------------------------------------------------------------------------

run audit query --db "$DB"
check_lines "query: a header and every row" 7
run audit query --db "$DB"
if [ "$rc" -eq 0 ] && head -n 2 "$T/out" | tail -n 1 | grep -qF dec-01AAAAAAAAAAAAAAAAAAAAAAA6; then
    pass "query: newest first"
else
    fail "query: newest first" "first row is not dec-...6"
fi
run audit query --db "$DB" --team payments
check_lines "query: --team" 4
run audit query --db "$DB" --team payments --service api
check_lines "query: --team and --service" 3
run audit query --db "$DB" --policy psa-restricted
check_lines "query: --policy" 3
run audit query --db "$DB" --path golden
check_lines "query: --path" 4
run audit query --db "$DB" --source ci
check_lines "query: --source" 2
run audit query --db "$DB" --since 2026-11-02 --until 2026-11-03
check_lines "query: --since and --until dates" 3
run audit query --db "$DB" --since 2026-11-01T01:00:00Z --until 2026-11-02T01:00:00+02:00
check_lines "query: RFC 3339 with offsets" 2
run audit query --db "$DB" --since 100000d
check_lines "query: a duration" 7
run audit query --db "$DB" --until 100000d
check_lines "query: a duration as the upper bound" 1
run audit query --db "$DB" --limit 2
check_lines "query: --limit" 3
run audit query --db "$DB" --team nobody
check_lines "query: nothing matches" 1
run audit query --db "$DB" --format json --limit 1
check "query: --format json" 0 '"id":	"dec-01AAAAAAAAAAAAAAAAAAAAAAA6"'
if command -v python3 >/dev/null 2>&1; then
    run audit query --db "$DB" --format json --policy no-latest
    if [ "$rc" -eq 0 ] && python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d)==1 and d[0]["violations"][0]["policy"]=="no-latest" and d[0]["dry_run"] is False' "$T/out"; then
        pass "query: json holds parsed violations"
    else
        fail "query: json holds parsed violations" "unexpected JSON"
    fi
fi

# ---- export ------------------------------------------------------------------------

run audit export --db "$DB"
check_lines "export: JSON Lines to stdout" 6
run audit export --db "$DB" --out "$T/out.jsonl"
n=$(wc -l <"$T/out.jsonl" 2>/dev/null | tr -d ' ')
if [ "$rc" -eq 0 ] && [ "${n:-0}" -eq 6 ] && head -n 1 "$T/out.jsonl" | grep -qF '"rowid":1,'; then
    pass "export: --out, oldest first"
else
    fail "export: --out, oldest first" "status $rc, ${n:-no} lines"
fi

# ---- usage and errors --------------------------------------------------------------

run audit
check "usage: no command" 2 "usage: paved audit" "$T/err"
run audit frobnicate
check "usage: unknown command" 2 "unknown command" "$T/err"
for sub in verify query export; do
    run audit "$sub" --help
    check "usage: $sub --help" 0 "usage: paved audit $sub"
    run audit "$sub"
    check "usage: $sub without --db" 2 "--db FILE is required" "$T/err"
    run audit "$sub" --db "$T/missing.db"
    check "usage: $sub of a missing file" 2 "no such file" "$T/err"
done
run audit query --db "$DB" --since yesterday
check "usage: a bad --since" 2 "--since" "$T/err"
run audit query --db "$DB" --since 2026-02-30
check "usage: a date that does not exist" 2 "--since" "$T/err"
run audit query --db "$DB" --limit 0
check "usage: --limit 0" 2 "--limit" "$T/err"
run audit query --db "$DB" --format yaml
check "usage: a bad --format" 2 "--format" "$T/err"
run audit query --db "$DB" --path offroad
check "usage: a bad --path" 2 "--path" "$T/err"
run audit verify --db "$DB" --frob
check "usage: an unknown option" 2 "unknown option" "$T/err"
echo "not a database, only text, long enough to fill a header page" >"$T/text.db"
run audit verify --db "$T/text.db"
check "errors: not a database" 2 "not a database" "$T/err"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
