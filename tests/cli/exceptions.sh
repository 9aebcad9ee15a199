#!/bin/sh
# tests/cli/exceptions.sh: black-box tests of the API client commands `paved exceptions`
# and `paved breakglass`, with no paved server. Run from the repo root:
#   PAVED=build/paved sh tests/cli/exceptions.sh
# Checks the help texts, usage errors, the https-only rule and transport failures, then
# runs the commands against a small python3 receiver on 127.0.0.1 (a free port, stopped
# on exit) that records each request (method, path, Authorization header, body) and
# answers with the status and body the test set. Prints "ok - NAME" or "FAIL - NAME";
# the last line is "N passed, N failed"; exit status 1 when any failed.
# POSIX sh (dash); temporaries live in one mktemp -d directory removed on exit.
# Option lists such as $C and $COMMON are split into words on purpose:
# shellcheck disable=SC2086
set -u

PAVED=${PAVED:-build/paved}
passed=0
failed=0
name=""
why=""
rc=0
NL='
'

if [ ! -x "$PAVED" ]; then
    echo "FAIL - setup: $PAVED is not an executable (build it with make)"
    echo "0 passed, 1 failed"
    exit 1
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/paved-exc-cli.XXXXXX") || exit 1
recv_pid=""
cleanup() {
    [ -n "$recv_pid" ] && kill "$recv_pid" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The commands must reach 127.0.0.1 directly, and find their settings only where the
# tests put them.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY PAVED_SERVER \
    PAVED_TOKEN PAVED_LOG 2>/dev/null

# ---- running paved ----------------------------------------------------------------

# run ARGS...: runs paved (timeout 30 s); stdout in $T/out, stderr in $T/err, both in
# $T/all, exit status in $rc. The receiver's record of the last request is removed first.
run() {
    rm -f "$T/req.method" "$T/req.path" "$T/req.auth" "$T/req.body"
    timeout 30 "$PAVED" "$@" </dev/null >"$T/out" 2>"$T/err"
    rc=$?
    cat "$T/out" "$T/err" >"$T/all"
}

# ---- assertions (they collect reasons; t_end reports) --------------------------------

t_begin() {
    name=$1
    why=""
}
note() { why="$why$NL    $1"; }

# rc_is N: the exit status is N.
rc_is() {
    if [ "$rc" -eq "$1" ]; then
        return 0
    elif [ "$rc" -eq 124 ]; then
        note "timed out (exit status 124), expected exit status $1"
    else
        note "exit status $rc, expected $1"
    fi
}
# has STREAM TEXT: STREAM (out, err or all) holds the fixed string TEXT.
has() { grep -F -q -e "$2" "$T/$1" || note "$1 lacks: $2"; }
# lacks STREAM TEXT: the opposite.
lacks() { ! grep -F -q -e "$2" "$T/$1" || note "$1 should not hold: $2"; }
# empty STREAM: nothing was written to STREAM.
empty() { [ ! -s "$T/$1" ] || note "$1 should be empty"; }

# sent FIELD VALUE: the receiver recorded exactly VALUE as the request's FIELD (method,
# path or auth).
sent() {
    if [ ! -f "$T/req.$1" ]; then
        note "the receiver recorded no request"
    elif [ "$(cat "$T/req.$1")" != "$2" ]; then
        note "sent $1 '$(cat "$T/req.$1")', expected '$2'"
    fi
}
# sent_body JSON: the request body is JSON equal to JSON (same members, same order of
# array elements, nothing more).
sent_body() {
    if [ ! -f "$T/req.body" ]; then
        note "the receiver recorded no request"
    elif ! python3 -c 'import json, sys
sys.exit(0 if json.load(open(sys.argv[1])) == json.loads(sys.argv[2]) else 1)' \
        "$T/req.body" "$1" 2>/dev/null; then
        note "sent body '$(cat "$T/req.body")', expected '$1'"
    fi
}
# out_json_is JSON: stdout is one JSON document equal to JSON.
out_json_is() {
    python3 -c 'import json, sys
sys.exit(0 if json.load(open(sys.argv[1])) == json.loads(sys.argv[2]) else 1)' \
        "$T/out" "$1" 2>/dev/null || note "stdout is not the JSON $1"
}

t_end() {
    if grep -E -q 'AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:' \
        "$T/err"; then
        note "sanitizer report on stderr"
    fi
    if [ -z "$why" ]; then
        passed=$((passed + 1))
        echo "ok - $name"
    else
        failed=$((failed + 1))
        echo "FAIL - $name$why"
        echo "    exit status: $rc"
        echo "    --- stdout (first 20 lines):"
        head -n 20 "$T/out" | cut -c 1-300 | sed 's/^/    | /'
        echo "    --- stderr (first 20 lines):"
        head -n 20 "$T/err" | cut -c 1-300 | sed 's/^/    | /'
    fi
}

# ---- help ---------------------------------------------------------------------------

COMMON="--server --token --token-file --cacert --insecure-http --timeout --help"

# help_test "ARGS" OPTION...: 'paved ARGS --help' exits 0 and names each OPTION.
help_test() {
    _args=$1
    shift
    t_begin "help: paved $_args --help names its options"
        run $_args --help
    rc_is 0
    has out "usage: paved $_args"
    for _o in "$@"; do
        has out "$_o"
    done
    t_end
}

help_test "exceptions" request list show approve deny revoke PAVED_SERVER PAVED_TOKEN "exit status"
help_test "exceptions request" --team --service --namespace --policy --justification --ticket \
    --duration $COMMON
help_test "exceptions list" --state --team --service --policy --expiring-within --limit \
    --format "paved check --exceptions" $COMMON
help_test "exceptions show" --format $COMMON
help_test "exceptions approve" --reason $COMMON
help_test "exceptions deny" --reason $COMMON
help_test "exceptions revoke" --reason $COMMON
help_test "breakglass" --duration --reason --namespace --team "breakglass list" "breakglass end" \
    $COMMON
help_test "breakglass list" --format $COMMON
help_test "breakglass end" --reason $COMMON

t_begin "help: -h works like --help"
run exceptions approve -h
rc_is 0
has out "usage: paved exceptions approve ID"
t_end

# ---- usage errors (exit 2, before any connection) -----------------------------------

S="--server https://127.0.0.1:9 --token tok-usage"
REQ="--service checkout --policy cost-tags --justification why --duration 7d"

# usage_test NAME MESSAGE ARGS...: exit 2 and stderr holds MESSAGE.
usage_test() {
    _n=$1
    _m=$2
    shift 2
    t_begin "usage: $_n"
    run "$@"
    rc_is 2
    has err "$_m"
    empty out
    t_end
}

usage_test "exceptions without a command" "usage: paved exceptions" exceptions
usage_test "unknown exceptions command" "unknown command 'frobnicate'" exceptions frobnicate
usage_test "request without --team" "--team T is required" exceptions request $REQ $S
usage_test "request without --service" "--service S is required" exceptions request \
    --team payments --policy cost-tags --justification why --duration 7d $S
usage_test "request without --policy" "at least one --policy" exceptions request \
    --team payments --service checkout --justification why --duration 7d $S
usage_test "request without --justification" "--justification TEXT is required" \
    exceptions request --team payments --service checkout --policy cost-tags --duration 7d $S
usage_test "request without --duration" "--duration DURATION is required" exceptions \
    request --team payments --service checkout --policy cost-tags --justification why $S
usage_test "request --duration 7x" "--duration: expected a whole number and a unit" \
    exceptions request --team payments --service checkout --policy cost-tags \
    --justification why --duration 7x $S
usage_test "request --duration 0d" "--duration: expected" exceptions request \
    --team payments --service checkout --policy cost-tags --justification why \
    --duration 0d $S
usage_test "request with an empty --team" "empty value for: --team" exceptions request \
    --team "" $REQ $S
usage_test "request with two --team" "--team given more than once" exceptions request \
    --team a --team b $REQ $S
usage_test "deny without --reason" "--reason TEXT is required" exceptions deny EXC-1 $S
usage_test "approve without an ID" "ID is required" exceptions approve $S
usage_test "approve with two IDs" "unexpected argument: EXC-2" exceptions approve EXC-1 \
    EXC-2 $S
usage_test "unknown long option" "unknown option: --bogus" exceptions list --bogus $S
usage_test "unknown short option" "unknown option: -x" exceptions list -x $S
usage_test "option without its value" "missing value for: --state" exceptions list $S \
    --state
usage_test "list --state bogus" "--state: expected pending, approved" exceptions list \
    --state bogus $S
usage_test "list --expiring-within soon" "--expiring-within: expected" exceptions list \
    --expiring-within soon $S
usage_test "list --limit 0" "--limit: expected a number" exceptions list --limit 0 $S
usage_test "list --format yaml" "--format: expected table or json" exceptions list \
    --format yaml $S
usage_test "--timeout 10x" "--timeout: expected a duration" exceptions list --timeout 10x $S
usage_test "no --server and no \$PAVED_SERVER" "no server: pass --server URL or set" \
    exceptions list --token tok-usage
usage_test "no token" "no API token" exceptions list --server https://127.0.0.1:9
usage_test "--token and --token-file" "--token or --token-file, not both" exceptions list \
    $S --token-file /dev/null
usage_test "missing --token-file" "--token-file $T/absent" exceptions list \
    --server https://127.0.0.1:9 --token-file "$T/absent"
usage_test "breakglass without arguments" "usage: paved breakglass" breakglass
usage_test "breakglass without a scope" "at least one --namespace or --team" breakglass \
    --duration 30m --reason incident $S
usage_test "breakglass without --reason" "--reason TEXT is required" breakglass \
    --duration 30m --namespace payments $S
usage_test "breakglass --duration 30x" "--duration: expected" breakglass --duration 30x \
    --reason incident --namespace payments $S
usage_test "unknown breakglass command" "unknown command 'lsit'" breakglass lsit $S
usage_test "breakglass end without an ID" "ID is required" breakglass end $S

t_begin "usage: \$PAVED_SERVER stands in for --server"
PAVED_SERVER=http://127.0.0.1:9 run exceptions list --token tok-usage
rc_is 2
has err "http://127.0.0.1:9: use an https:// URL"
t_end

t_begin "usage: a token with a newline is refused without printing it"
run exceptions list --server https://127.0.0.1:9 --token "tok-secret${NL}X-Evil: 1"
rc_is 2
has err "whitespace or control characters"
lacks all "tok-secret"
t_end

# ---- https only, transport errors ---------------------------------------------------

t_begin "http:// is refused without --insecure-http"
run exceptions list --server http://127.0.0.1:9 --token tok-1
rc_is 2
has err "use an https:// URL (plain http:// needs --insecure-http)"
t_end

if ! command -v python3 >/dev/null 2>&1; then
    echo "# skip: python3 absent: the transport and receiver tests need it"
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
fi

closed=$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()')

t_begin "connection refused: exit 2 naming the URL, never the token"
PAVED_LOG=debug run exceptions list --server "http://127.0.0.1:$closed" --token tok-secret-1 \
    --insecure-http
rc_is 2
has err "paved exceptions list: http://127.0.0.1:$closed/v1/exceptions: "
lacks all "tok-secret-1"
t_end

t_begin "https to a closed port: exit 2 naming the URL"
run breakglass list --server "https://127.0.0.1:$closed" --token tok-1
rc_is 2
has err "paved breakglass list: https://127.0.0.1:$closed/v1/breakglass: "
t_end

# ---- the receiver -------------------------------------------------------------------

cat >"$T/recv.py" <<'EOF'
# Records each request in DIR/req.{method,path,auth,body}, then answers with the status
# in DIR/status and the body in DIR/answer, after DIR/delay seconds when that exists.
# "BIG" as the answer sends 17 MiB of JSON.
import http.server, os, sys, time

d = sys.argv[1]


def put(name, data):
    with open(os.path.join(d, name + ".tmp"), "wb") as f:
        f.write(data)
    os.replace(os.path.join(d, name + ".tmp"), os.path.join(d, name))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n > 0 else b""
        put("req.body", body)
        put("req.auth", (self.headers.get("Authorization") or "").encode())
        put("req.path", self.path.encode())
        put("req.method", self.command.encode())
        status = int(open(os.path.join(d, "status")).read())
        data = open(os.path.join(d, "answer"), "rb").read()
        if data.strip() == b"BIG":
            data = b'{"exceptions": ["' + b"x" * (17 << 20) + b'"]}'
        if os.path.exists(os.path.join(d, "delay")):
            time.sleep(float(open(os.path.join(d, "delay")).read()))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except OSError:
            pass

    do_GET = answer
    do_POST = answer

    def log_message(self, *args):
        pass


srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
put("port", str(srv.server_address[1]).encode())
srv.serve_forever()
EOF

echo 500 >"$T/status"
echo '{"error": "not set"}' >"$T/answer"
python3 "$T/recv.py" "$T" 2>"$T/recv.err" &
recv_pid=$!
i=0
while [ ! -s "$T/port" ] && [ $i -lt 100 ]; do
    sleep 0.1
    i=$((i + 1))
done
if [ ! -s "$T/port" ]; then
    echo "FAIL - setup: the python3 receiver did not start"
    sed 's/^/    /' "$T/recv.err"
    failed=$((failed + 1))
    echo "$passed passed, $failed failed"
    exit 1
fi
URL="http://127.0.0.1:$(cat "$T/port")"
C="--server $URL --insecure-http --token tok-123"

# answer STATUS BODY: what the receiver sends next.
answer() {
    echo "$1" >"$T/status"
    printf '%s' "$2" >"$T/answer"
}

EXC_PENDING='{"id":"EXC-01TEST","team":"payments","service":"checkout","namespace":"pay","policies":["cost-tags","no-latest"],"justification":"tags land later","ticket":"https://jira.example/PAY-1","requested_by":"ci-payments","requested_ms":1767225600000,"requested_at":"2026-01-01T00:00:00Z","duration_s":604800,"state":"pending","self_service":false,"decided_by":null,"decided_ms":null,"reason":null,"expires_ms":null,"expires_at":null,"ended_ms":null}'
EXC_SELF='{"id":"EXC-01SELF","team":"payments","service":"checkout","namespace":null,"policies":["probes"],"justification":"batch job","ticket":null,"requested_by":"ci-payments","requested_ms":1767225600000,"requested_at":"2026-01-01T00:00:00Z","duration_s":86400,"state":"approved","self_service":true,"decided_by":"ci-payments","decided_ms":1767225600000,"reason":null,"expires_ms":1767312000000,"expires_at":"2026-01-02T00:00:00Z","ended_ms":null}'
EXC_APPROVED='{"id":"EXC-01TEST","team":"payments","service":"checkout","namespace":"pay","policies":["cost-tags","no-latest"],"justification":"tags land later","ticket":"https://jira.example/PAY-1","requested_by":"ci-payments","requested_ms":1767225600000,"requested_at":"2026-01-01T00:00:00Z","duration_s":604800,"state":"approved","self_service":false,"decided_by":"alice","decided_ms":1767229200000,"reason":"billing migration","expires_ms":1767834000000,"expires_at":"2026-01-08T01:00:00Z","ended_ms":null}'
BG='{"id":"BG-01TEST","started_by":"oncall","reason":"INC-4711","namespaces":["payments","shop"],"teams":["web"],"started_ms":1767225600000,"ends_ms":1767227400000,"ends_at":"2026-01-01T00:30:00Z","ended_ms":null,"active":true}'

# ---- requests as sent ---------------------------------------------------------------

t_begin "request: POST /v1/exceptions with the contract's body and the bearer token"
answer 201 "{\"exception\": $EXC_PENDING}"
run exceptions request $C --team payments --service checkout --namespace pay \
    --policy cost-tags --policy no-latest --justification 'tags land later' \
    --ticket https://jira.example/PAY-1 --duration 7d
rc_is 0
sent method POST
sent path /v1/exceptions
sent auth "Bearer tok-123"
sent_body '{"team":"payments","service":"checkout","namespace":"pay","policies":["cost-tags","no-latest"],"justification":"tags land later","ticket":"https://jira.example/PAY-1","duration":"7d"}'
has out "EXC-01TEST"
has out "pending"
has out "an approver runs: paved exceptions approve EXC-01TEST"
lacks all "tok-123"
t_end

t_begin "request: optional fields are left out; quotes and non-ASCII survive"
answer 201 "{\"exception\": $EXC_PENDING}"
run exceptions request $C --team payments --service checkout --policy cost-tags \
    --justification 'the "billing" team — café' --duration 2w
rc_is 0
sent_body '{"team":"payments","service":"checkout","policies":["cost-tags"],"justification":"the \"billing\" team — café","duration":"2w"}'
t_end

t_begin "request: a self-service answer says approved until the expiry"
answer 201 "{\"exception\": $EXC_SELF}"
run exceptions request $C --team payments --service checkout --policy probes \
    --justification 'batch job' --duration 1d
rc_is 0
has out "EXC-01SELF"
has out "approved (self-service) until 2026-01-02T00:00:00Z"
t_end

printf 'tok-from-file\n' >"$T/token"
t_begin "approve --reason: POST /v1/exceptions/ID/approve {\"reason\"}; --token-file"
answer 200 "{\"exception\": $EXC_APPROVED}"
run exceptions approve EXC-01TEST --reason 'billing migration' --server "$URL" \
    --insecure-http --token-file "$T/token"
rc_is 0
sent method POST
sent path /v1/exceptions/EXC-01TEST/approve
sent auth "Bearer tok-from-file"
sent_body '{"reason":"billing migration"}'
has out "EXC-01TEST: approved"
has out "until 2026-01-08T01:00:00Z"
t_end

t_begin "approve without --reason sends {}; \$PAVED_TOKEN and \$PAVED_SERVER are used"
answer 200 "{\"exception\": $EXC_APPROVED}"
PAVED_TOKEN=tok-env PAVED_SERVER=$URL run exceptions approve EXC-01TEST --insecure-http
rc_is 0
sent auth "Bearer tok-env"
sent_body '{}'
t_end

t_begin "deny and revoke post their reason to their path"
answer 200 "{\"exception\": $(echo "$EXC_PENDING" | sed 's/"state":"pending"/"state":"denied"/')}"
run exceptions deny EXC-01TEST --reason 'add the tags instead' $C
rc_is 0
sent path /v1/exceptions/EXC-01TEST/deny
sent_body '{"reason":"add the tags instead"}'
has out "EXC-01TEST: denied"
answer 200 "{\"exception\": $(echo "$EXC_APPROVED" | sed 's/"state":"approved"/"state":"revoked"/')}"
run exceptions revoke EXC-01TEST --reason 'tags are in' $C
rc_is 0
sent path /v1/exceptions/EXC-01TEST/revoke
sent_body '{"reason":"tags are in"}'
has out "EXC-01TEST: revoked"
t_end

t_begin "an ID is escaped in the path"
answer 404 '{"error": "no such exception"}'
run exceptions show 'a/b?c' $C
sent path '/v1/exceptions/a%2Fb%3Fc'
t_end

t_begin "breakglass: POST /v1/breakglass with duration, reason, namespaces and teams"
answer 201 "{\"breakglass\": $BG}"
run breakglass --duration 30m --reason INC-4711 --namespace payments --namespace shop \
    --team web $C
rc_is 0
sent method POST
sent path /v1/breakglass
sent auth "Bearer tok-123"
sent_body '{"duration":"30m","reason":"INC-4711","namespaces":["payments","shop"],"teams":["web"]}'
has out "BG-01TEST"
has out "2026-01-01T00:30:00Z"
has out "paved breakglass end BG-01TEST"
t_end

t_begin "breakglass end: POST /v1/breakglass/ID/end"
answer 200 "{\"breakglass\": $(echo "$BG" | sed 's/"ended_ms":null,"active":true/"ended_ms":1767226000000,"active":false/')}"
run breakglass end BG-01TEST --reason resolved $C
rc_is 0
sent path /v1/breakglass/BG-01TEST/end
sent_body '{"reason":"resolved"}'
has out "BG-01TEST: ended at 2026-01-01T00:06:40Z"
t_end

# ---- answers ------------------------------------------------------------------------

t_begin "a 403 answer exits 1 with the server's error"
answer 403 '{"error": "separation of duties: ci-payments requested EXC-01TEST and cannot approve it"}'
run exceptions approve EXC-01TEST $C
rc_is 1
has err "paved exceptions approve: refused (403): separation of duties: ci-payments requested EXC-01TEST and cannot approve it"
empty out
t_end

t_begin "a 409 answer exits 1 with the server's error"
answer 409 '{"error": "EXC-01TEST is denied, not pending"}'
run exceptions deny EXC-01TEST --reason no $C
rc_is 1
has err "paved exceptions deny: refused (409): EXC-01TEST is denied, not pending"
t_end

t_begin "a 422 answer to breakglass exits 1"
answer 422 '{"error": "duration 8h exceeds breakglass.max_duration (4h)"}'
run breakglass --duration 8h --reason x --team web $C
rc_is 1
has err "paved breakglass: refused (422): duration 8h exceeds breakglass.max_duration (4h)"
t_end

t_begin "a 4xx answer without JSON still exits 1"
answer 401 'Unauthorized'
run exceptions list $C
rc_is 1
has err "refused (401)"
t_end

t_begin "a 500 answer exits 2"
answer 500 '{"error": "store unavailable"}'
run exceptions list $C
rc_is 2
has err "paved exceptions list: server error (500): store unavailable"
t_end

t_begin "a 200 answer that is not JSON exits 2"
answer 200 '<html>proxy login</html>'
run exceptions list $C
rc_is 2
has err "without the expected JSON"
empty out
t_end

t_begin "a 200 answer without the expected member exits 2"
answer 200 '{"exception": {}}'
run exceptions list $C
rc_is 2
has err "\"exceptions\""
t_end

t_begin "control characters from the server are not printed"
answer 403 '{"error": "bad\u001b[31m red"}'
run exceptions approve EXC-01TEST $C
rc_is 1
has err "bad?[31m red"
t_end

t_begin "an answer over 16 MiB exits 2"
answer 200 'BIG'
run exceptions list $C
rc_is 2
has err "larger than 16 MiB"
t_end

t_begin "--timeout bounds a server that does not answer"
answer 200 '{"exceptions": []}'
echo 5 >"$T/delay"
run exceptions list $C --timeout 1s
rm -f "$T/delay"
rc_is 2
has err "$URL/v1/exceptions: "
t_end
# The receiver finishes the delayed answer (4 s) before it serves the next request,
# which waits within its default 10 s timeout.

# ---- list and show ------------------------------------------------------------------

LIST="[$EXC_APPROVED, $EXC_SELF, $EXC_PENDING]"

t_begin "list --format json prints the server's array of exception objects"
answer 200 "{\"exceptions\": $LIST}"
run exceptions list $C --state approved --team payments --service checkout --policy cost-tags \
    --expiring-within 7d --limit 5 --format json
rc_is 0
sent method GET
sent path '/v1/exceptions?state=approved&team=payments&service=checkout&policy=cost-tags&expiring_within=7d&limit=5'
sent auth "Bearer tok-123"
out_json_is "$LIST"
t_end

t_begin "list --format json of nothing prints []"
answer 200 '{"exceptions": []}'
run exceptions list $C --format json
rc_is 0
sent path /v1/exceptions
out_json_is '[]'
t_end

t_begin "list prints a table"
answer 200 "{\"exceptions\": $LIST}"
run exceptions list $C
rc_is 0
has out "ID"
has out "REQUESTED BY"
has out "EXC-01SELF"
has out "payments/checkout"
has out "cost-tags,no-latest"
has out "2026-01-08T01:00:00Z"
has out "7d once approved"
t_end

t_begin "show prints the exception and its events"
answer 200 "{\"exception\": $(echo "$EXC_APPROVED" | sed 's/}$//'),\"events\":[{\"decision_id\":\"D-01REQ\",\"time_ms\":1767225600000,\"event\":\"requested\",\"actor\":\"ci-payments\",\"state\":\"pending\",\"hash\":\"ab12\"},{\"decision_id\":\"D-01APP\",\"time_ms\":1767229200000,\"event\":\"approved\",\"actor\":\"alice\",\"state\":\"approved\",\"hash\":\"cd34\"}]}}"
run exceptions show EXC-01TEST $C
rc_is 0
sent method GET
sent path /v1/exceptions/EXC-01TEST
has out "exception EXC-01TEST"
has out "tags land later"
has out "by alice: billing migration"
has out "D-01APP"
has out "2026-01-01T01:00:00Z"
t_end

t_begin "show --format json prints the exception object"
run exceptions show EXC-01TEST $C --format json
rc_is 0
has out '"decision_id"'
has out '"EXC-01TEST"'
t_end

t_begin "breakglass list: GET /v1/breakglass, table and json"
answer 200 "{\"breakglass\": [$BG]}"
run breakglass list $C
rc_is 0
sent method GET
sent path /v1/breakglass
has out "BG-01TEST"
has out "payments,shop"
run breakglass list $C --format json
rc_is 0
out_json_is "[$BG]"
t_end

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
