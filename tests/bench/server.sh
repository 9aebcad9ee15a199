#!/bin/sh
# tests/bench/server.sh BUILD_DIR: the server part of `make bench`. On 127.0.0.1 only,
# with free ports and a temporary directory that is always removed:
#   - starts `paved serve` (BUILD_DIR/paved, copied first so a rebuild during the run
#     cannot change it) over TLS with `paved certs` certificates, the shipped bundle,
#     default threads and the durable audit (sync, the default) in a temporary database;
#   - starts Debian's nginx as the reference: TLS with the same certificate, keep-alive,
#     a fixed AdmissionReview answer (tests/bench/nginx.conf.in);
#   - drives both with wrk and tests/bench/post.lua (POST tests/bench/review-8k.json),
#     2 threads and 64 connections, in interleaved rounds; then paved at one connection,
#     then a longer run that watches paved's RSS; then diagnostics (perf profile,
#     --threads 64, async audit) unless BENCH_SERVER_DIAG=0;
#   - checks the audit store afterwards (`paved audit verify`, one row per answer);
#   - prints a summary and writes docs/BENCHMARKS-server.md.
# Timing goals are reported, never enforced: the exit status is 0 unless something
# broke (a tool missing, a server not starting, an error answer, a bad audit chain).
#
# Needs wrk, nginx (Debian packages wrk and nginx), curl; uses perf, ps and ss when
# present. Run from the repository root. The audit database's write-ahead log grows to
# about 1.5 GB during the run: TMPDIR (default /tmp) needs that much free space.
#
# Environment (defaults in brackets): PAVED [BUILD_DIR/paved]; BENCH_SERVER_DOC
# [docs/BENCHMARKS-server.md; empty: no report]; BENCH_SERVER_SECONDS [10] per main run;
# BENCH_SERVER_ROUNDS [2]; BENCH_SERVER_ONE_SECONDS [5] for the one-connection run;
# BENCH_SERVER_LONG_SECONDS [30] for the RSS run (0: skip); BENCH_SERVER_DIAG [1];
# BENCH_NGINX_WORKERS [auto: one nginx worker per CPU, as paved's default threads use
# every CPU]; BENCH_CONNECTIONS [64]; BENCH_WRK_THREADS [2].
set -u
B=${1:?usage: tests/bench/server.sh BUILD_DIR}
PAVED=${PAVED:-$B/paved}
BODY=tests/bench/review-8k.json
LUA=tests/bench/post.lua
NGINX_IN=tests/bench/nginx.conf.in
DOC=${BENCH_SERVER_DOC-docs/BENCHMARKS-server.md}
SECONDS_MAIN=${BENCH_SERVER_SECONDS:-10}
ROUNDS=${BENCH_SERVER_ROUNDS:-2}
SECONDS_ONE=${BENCH_SERVER_ONE_SECONDS:-5}
SECONDS_LONG=${BENCH_SERVER_LONG_SECONDS:-30}
DIAG=${BENCH_SERVER_DIAG:-1}
NGINX_WORKERS=${BENCH_NGINX_WORKERS:-auto}
CONNS=${BENCH_CONNECTIONS:-64}
WRK_T=${BENCH_WRK_THREADS:-2}
SECONDS_WARMUP=2
SECONDS_DIAG=5
# Targets of shared/PERFORMANCE.md.
T_RATIO=0.30
T_P50_US=150
T_P99_US=1000
T_RSS_KB=30720
# "No growth": RSS after the long run at most this much above RSS before it.
T_GROWTH_KB=1024

# The fixed answer of nginx: shaped like paved's answer to the same review.
NGINX_ANSWER='{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"3f1c2b8e-5a4d-4e0f-9b7a-8c6d2e1f0a93","allowed":true,"auditAnnotations":{"paved.dev/decision-id":"dec-01M8BWQCNV4C8MSGFQ9AG88XK3","paved.dev/path":"golden"},"warnings":[]}}'

die() {
    echo "bench-server: $*" >&2
    exit 1
}

say() {
    echo "bench-server: $*"
}

# ---- Preconditions ----

missing=""
for t in wrk nginx curl; do
    command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
done
if [ -n "$missing" ]; then
    echo "bench-server: missing:$missing. Install the Debian packages (apt-get install wrk nginx curl);" >&2
    echo "bench-server: the server benchmark needs wrk as the client and nginx as the reference." >&2
    exit 2
fi
for f in "$BODY" "$LUA" "$NGINX_IN"; do
    [ -f "$f" ] || die "$f is missing: run from the repository root"
done
[ -x "$PAVED" ] || die "$PAVED is missing: build it first (make build/paved)"
case "$ROUNDS$SECONDS_MAIN$SECONDS_ONE$SECONDS_LONG$CONNS$WRK_T" in
*[!0-9]*) die "the BENCH_* counts must be whole numbers" ;;
esac
[ "$ROUNDS" -ge 1 ] && [ "$SECONDS_MAIN" -ge 1 ] && [ "$SECONDS_ONE" -ge 1 ] ||
    die "BENCH_SERVER_ROUNDS, _SECONDS and _ONE_SECONDS must be at least 1"
HZ=$(getconf CLK_TCK 2>/dev/null || echo 100)
has_ps=0
command -v ps >/dev/null 2>&1 && has_ps=1

tmp=$(mktemp -d "${TMPDIR:-/tmp}/paved-bench-server.XXXXXX") || exit 2
pids=""
wrk_pid=""

# alive PID: true while PID runs (a zombie, exited but not yet reaped, does not).
alive() {
    st=$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\) .*/\1/p' "/proc/$1/stat" 2>/dev/null)
    [ -n "$st" ] && [ "$st" != Z ]
}

# stop PID: SIGTERM, up to 15 s, then SIGKILL; reaps it and drops it from $pids.
stop() {
    [ -n "$1" ] || return 0
    kill -TERM "$1" 2>/dev/null
    n=0
    while alive "$1" && [ "$n" -lt 150 ]; do
        sleep 0.1
        n=$((n + 1))
    done
    alive "$1" && kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    rest=""
    for p in $pids; do
        [ "$p" = "$1" ] || rest="$rest $p"
    done
    pids=$rest
}

cleanup() {
    trap - EXIT INT TERM HUP
    [ -n "$wrk_pid" ] && kill -TERM "$wrk_pid" 2>/dev/null
    [ -n "$perf_pid" ] && kill -INT "$perf_pid" 2>/dev/null
    for p in $pids; do
        stop "$p"
    done
    [ -n "$wrk_pid" ] && wait "$wrk_pid" 2>/dev/null
    [ -n "$perf_pid" ] && wait "$perf_pid" 2>/dev/null
    rm -rf "$tmp"
}
perf_pid=""
trap cleanup EXIT
trap 'exit 130' INT HUP
trap 'exit 143' TERM

# free_port: a port no socket listens on, below the usual ephemeral range (which wrk's
# own connections use). A race with another program is caught by the start retries.
free_port() {
    while :; do
        r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' \n')
        p=$((20000 + r % 12000))
        if command -v ss >/dev/null 2>&1; then
            [ -z "$(ss -Htan "sport = :$p" 2>/dev/null)" ] || continue
        fi
        echo "$p"
        return
    done
}

# wait_ready PID URL: true once URL answers 200 (15 s at most), false if PID exits.
wait_ready() {
    n=0
    while [ "$n" -lt 150 ]; do
        alive "$1" || return 1
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$tmp/certs/ca.crt" "$2")
        [ "$code" = 200 ] && return 0
        sleep 0.1
        n=$((n + 1))
    done
    return 1
}

# start_paved NAME [ARGS...]: paved serve with database $tmp/NAME.db and log
# $tmp/NAME.log; sets srv_pid and srv_port.
start_paved() {
    name=$1
    shift
    attempt=1
    while :; do
        srv_port=$(free_port)
        "$BIN" serve --listen "127.0.0.1:$srv_port" --tls-cert "$tmp/certs/tls.crt" \
            --tls-key "$tmp/certs/tls.key" --db "$tmp/$name.db" "$@" >"$tmp/$name.log" 2>&1 &
        srv_pid=$!
        pids="$pids $srv_pid"
        wait_ready "$srv_pid" "https://127.0.0.1:$srv_port/healthz" && return 0
        stop "$srv_pid"
        if grep -q 'cannot listen' "$tmp/$name.log" && [ "$attempt" -lt 5 ]; then
            rm -f "$tmp/$name.db" "$tmp/$name.db-wal" "$tmp/$name.db-shm"
            attempt=$((attempt + 1))
            continue
        fi
        tail -n 20 "$tmp/$name.log" >&2
        die "paved serve ($name) did not become healthy"
    done
}

# start_nginx: sets ng_pid and ng_port.
start_nginx() {
    attempt=1
    mkdir -p "$tmp/nginx"
    while :; do
        ng_port=$(free_port)
        sed -e "s|@DIR@|$tmp/nginx|g" -e "s|@PORT@|$ng_port|g" -e "s|@WORKERS@|$NGINX_WORKERS|g" \
            -e "s|@CERT@|$tmp/certs/tls.crt|g" -e "s|@KEY@|$tmp/certs/tls.key|g" \
            -e "s|@ANSWER@|$NGINX_ANSWER|g" "$NGINX_IN" >"$tmp/nginx/nginx.conf"
        nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/error.log" \
            >"$tmp/nginx/stdout.log" 2>&1 &
        ng_pid=$!
        pids="$pids $ng_pid"
        wait_ready "$ng_pid" "https://127.0.0.1:$ng_port/healthz" && return 0
        stop "$ng_pid"
        if grep -q 'Address already in use' "$tmp/nginx/error.log" "$tmp/nginx/stdout.log" 2>/dev/null &&
            [ "$attempt" -lt 5 ]; then
            attempt=$((attempt + 1))
            continue
        fi
        cat "$tmp/nginx/stdout.log" "$tmp/nginx/error.log" >&2 2>/dev/null
        die "nginx did not start (config: $NGINX_IN)"
    done
}

# proc_set PID: PID and its direct children (nginx's workers).
proc_set() {
    echo "$1"
    [ "$has_ps" = 1 ] && ps -o pid= --ppid "$1" 2>/dev/null
}

# cpu_ticks PID...: user + system clock ticks of the processes (all their threads).
cpu_ticks() {
    for p in "$@"; do
        sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null
    done | awk '{ s += $12 + $13 } END { print s + 0 }'
}

# ctx_switches PID: voluntary context switches over all threads of PID.
ctx_switches() {
    cat /proc/"$1"/task/*/status 2>/dev/null |
        awk '/^voluntary_ctxt_switches:/ { s += $2 } END { print s + 0 }'
}

rss_kb() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null
}

# rss_parts PID: RSS split into anonymous memory (heap, stacks) and file-backed pages
# (the binary, shared libraries, mapped files such as SQLite's -shm).
rss_parts() {
    awk '/^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 } /^RssShmem:/ { s = $2 }
        END { printf "anon %.1f MB, file %.1f MB, shmem %.1f MB\n", a / 1024, f / 1024, s / 1024 }' \
        "/proc/$1/status" 2>/dev/null
}

hwm_kb() {
    awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null
}

# field NAME FILE: NAME=... of the RESULT line that post.lua's done() prints.
field() {
    awk -v k="$1" '$1 == "RESULT" {
        for (i = 2; i <= NF; i++) if (index($i, k "=") == 1) { print substr($i, length(k) + 2); exit }
    }' "$2"
}

# run_wrk NAME URL THREADS CONNS SECONDS PID [DB]: wrk with post.lua; output in
# $tmp/wrk.NAME; CPU ticks of PID (and its children) in $tmp/cpu.NAME; voluntary context
# switches of PID in $tmp/ctx.NAME; just before the start and then each second, PID's
# RSS (kB) and the size of DB's write-ahead log (bytes) in $tmp/rss.NAME.
run_wrk() {
    name=$1 url=$2 wt=$3 wc=$4 ws=$5 wp=$6 wdb=${7:-}
    # shellcheck disable=SC2046 # one argument per process id
    set -- $(proc_set "$wp")
    c0=$(cpu_ticks "$@")
    x0=$(ctx_switches "$wp")
    wal=0
    [ -n "$wdb" ] && wal=$(wc -c <"$wdb-wal" 2>/dev/null | tr -d ' ')
    echo "0 $(rss_kb "$wp") ${wal:-0}" >"$tmp/rss.$name"
    PAVED_BENCH_BODY=$BODY wrk -t"$wt" -c"$wc" -d"${ws}s" --timeout 5s --latency -s "$LUA" \
        "$url" >"$tmp/wrk.$name" 2>&1 &
    wrk_pid=$!
    s=0
    while alive "$wrk_pid"; do
        sleep 1
        s=$((s + 1))
        wal=0
        [ -n "$wdb" ] && wal=$(wc -c <"$wdb-wal" 2>/dev/null | tr -d ' ')
        echo "$s $(rss_kb "$wp") ${wal:-0}" >>"$tmp/rss.$name"
    done
    wait "$wrk_pid"
    rc=$?
    wrk_pid=""
    c1=$(cpu_ticks "$@")
    x1=$(ctx_switches "$wp")
    echo $((c1 - c0)) >"$tmp/cpu.$name"
    echo $((x1 - x0)) >"$tmp/ctx.$name"
    if [ "$rc" -ne 0 ] || ! grep -q '^RESULT ' "$tmp/wrk.$name"; then
        cat "$tmp/wrk.$name" >&2
        die "wrk failed on $url ($name)"
    fi
    bad=$(($(field non2xx "$tmp/wrk.$name") + $(field connect_errors "$tmp/wrk.$name") + \
        $(field read_errors "$tmp/wrk.$name") + $(field write_errors "$tmp/wrk.$name") + \
        $(field timeouts "$tmp/wrk.$name")))
    echo "$bad" >"$tmp/bad.$name"
    printf 'bench-server: %-14s %9s req/s  p50 %s  p99 %s  (%s requests, %s errors or non-2xx)\n' \
        "$name" "$(field rps "$tmp/wrk.$name")" "$(us "$(field p50_us "$tmp/wrk.$name")")" \
        "$(us "$(field p99_us "$tmp/wrk.$name")")" "$(field requests "$tmp/wrk.$name")" "$bad"
}

# us N: microseconds for people (µs below 1 ms, ms above).
us() {
    awk -v u="$1" 'BEGIN { if (u == "") print "?"; else if (u < 1000) printf "%d µs\n", u;
        else printf "%.2f ms\n", u / 1000 }'
}

mb() {
    awk -v k="$1" 'BEGIN { if (k == "") print "?"; else printf "%.1f MB\n", k / 1024 }'
}

# calc EXPR: awk arithmetic, printed with %.Nf by the caller's format.
calc() {
    awk "BEGIN { printf \"$1\n\", $2 }"
}

le() {
    awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a + 0 <= b + 0) }'
}

verdict() {
    if le "$1" "$2"; then echo met; else echo MISSED; fi
}

# per-run CPU: cores used and CPU µs per request.
cores() {
    calc '%.2f' "$(cat "$tmp/cpu.$1") / $HZ / ($(field duration_us "$tmp/wrk.$1") / 1e6)"
}
cpu_per_req() {
    calc '%.1f' "$(cat "$tmp/cpu.$1") / $HZ * 1e6 / $(field requests "$tmp/wrk.$1")"
}
ctx_per_req() {
    calc '%.1f' "$(cat "$tmp/ctx.$1") / $(field requests "$tmp/wrk.$1")"
}

# metric NAME FILE: the value of a Prometheus sample line.
metric() {
    awk -v n="$1" '$1 == n { print $2; exit }' "$2"
}

scrape() {
    curl -s --max-time 5 --cacert "$tmp/certs/ca.crt" "https://127.0.0.1:$paved_port/metrics" >"$1" ||
        : >"$1"
}

# wal_max: the largest write-ahead log of the main server's database seen in any run.
wal_max() {
    cat "$tmp"/rss.warm-paved "$tmp"/rss.paved-* 2>/dev/null |
        awk '$3 > m { m = $3 } END { printf "%.0f MB\n", m / 1048576 }'
}

# wal_story NAME: what the write-ahead log did during run NAME, from its samples.
wal_story() {
    awk -v max="$(us "$(field max_us "$tmp/wrk.$1")")" -v p99="$(us "$(field p99_us "$tmp/wrk.$1")")" '
        NR == 1 { first = $3 }
        NR > 1 && $3 < prev { cut = 1; from = prev; to = $3 }
        { prev = $3 }
        END {
            if (cut)
                printf "During this run (or just before its first request) it was reset and truncated (%.0f MB to %.0f MB, samples a second apart); its p99 was %s, its slowest answer %s.\n", from / 1048576, to / 1048576, p99, max
            else
                printf "During this run the log file went from %.0f to %.0f MB and never shrank; p99 %s, slowest answer %s.\n", first / 1048576, prev / 1048576, p99, max
        }' "$tmp/rss.$1"
}

# inc SYMBOL / self SYMBOL: the share of paved's perf samples in SYMBOL and what it
# calls / in SYMBOL alone (the largest entry of that name).
inc() {
    v=$(grep -v '^#' "$tmp/perf.inc" 2>/dev/null | awk -v s="$1" '$5 == s { print $1; exit }')
    echo "${v:-?}"
}
self() {
    v=$(grep -v '^#' "$tmp/perf.sym" 2>/dev/null | awk -v s="$1" '$4 == s { print $1; exit }')
    echo "${v:-?}"
}

started=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")

# ---- Setup ----

BIN=$tmp/paved
cp "$PAVED" "$BIN" || die "cannot copy $PAVED"
"$BIN" certs --out "$tmp/certs" --host 127.0.0.1 >"$tmp/certs.log" 2>&1 || {
    cat "$tmp/certs.log" >&2
    die "paved certs failed"
}
body_bytes=$(wc -c <"$BODY" | tr -d ' ')

start_paved paved
paved_pid=$srv_pid
paved_port=$srv_port
PAVED_URL=https://127.0.0.1:$paved_port/k8s/validate
paved_threads=$(sed -n 's/.*listening on .* threads=\([0-9]*\).*/\1/p' "$tmp/paved.log" | head -n 1)
rss_start=$(rss_kb "$paved_pid")
parts_start=$(rss_parts "$paved_pid")
say "paved serve pid $paved_pid on $PAVED_URL, threads=${paved_threads:-?}, RSS $(mb "$rss_start")"

answer=$(curl -s --max-time 5 --cacert "$tmp/certs/ca.crt" -H 'Content-Type: application/json' \
    --data-binary "@$BODY" "$PAVED_URL")
case "$answer" in
*'"allowed":true'*'"paved.dev/path":"golden"'* | *'"paved.dev/path":"golden"'*'"allowed":true'*) ;;
*)
    echo "$answer" >&2
    die "paved did not allow $BODY on the golden path"
    ;;
esac
case "$answer" in
*'"uid":"3f1c2b8e-5a4d-4e0f-9b7a-8c6d2e1f0a93"'*) ;;
*) die "paved's answer does not echo the request uid: $answer" ;;
esac
paved_answer_bytes=$(printf '%s' "$answer" | wc -c | tr -d ' ')
smoke_requests=1

start_nginx
NGINX_URL=https://127.0.0.1:$ng_port/k8s/validate
ng_answer=$(curl -s --max-time 5 --cacert "$tmp/certs/ca.crt" -H 'Content-Type: application/json' \
    --data-binary "@$BODY" "$NGINX_URL")
[ "$ng_answer" = "$NGINX_ANSWER" ] || die "nginx answered: $ng_answer"
ng_answer_bytes=$(printf '%s' "$ng_answer" | wc -c | tr -d ' ')
ng_nworkers=$(proc_set "$ng_pid" | sed 1d | wc -l | tr -d ' ')
say "nginx pid $ng_pid on $NGINX_URL, worker_processes $NGINX_WORKERS ($ng_nworkers workers)"

# What TLS each server negotiates with an OpenSSL client (wrk uses OpenSSL too).
tls_of() {
    if command -v openssl >/dev/null 2>&1; then
        openssl s_client -connect "127.0.0.1:$1" </dev/null 2>/dev/null |
            sed -n 's/^New, \([^,]*\), Cipher is \(.*\)/\1 \2/p' | head -n 1
    fi
}
paved_tls=$(tls_of "$paved_port")
ng_tls=$(tls_of "$ng_port")

# ---- Load: warm-up, then interleaved rounds at 64 connections ----

say "warm-up, ${SECONDS_WARMUP} s each"
run_wrk warm-paved "$PAVED_URL" "$WRK_T" "$CONNS" "$SECONDS_WARMUP" "$paved_pid" "$tmp/paved.db"
run_wrk warm-nginx "$NGINX_URL" "$WRK_T" "$CONNS" "$SECONDS_WARMUP" "$ng_pid"
paved_runs="warm-paved"

scrape "$tmp/metrics.0"
r=1
while [ "$r" -le "$ROUNDS" ]; do
    say "round $r of $ROUNDS: wrk -t$WRK_T -c$CONNS -d${SECONDS_MAIN}s, nginx then paved"
    run_wrk "nginx-$r" "$NGINX_URL" "$WRK_T" "$CONNS" "$SECONDS_MAIN" "$ng_pid"
    run_wrk "paved-$r" "$PAVED_URL" "$WRK_T" "$CONNS" "$SECONDS_MAIN" "$paved_pid" "$tmp/paved.db"
    paved_runs="$paved_runs paved-$r"
    r=$((r + 1))
done
scrape "$tmp/metrics.1"

say "one connection: wrk -t1 -c1 -d${SECONDS_ONE}s"
run_wrk paved-1conn "$PAVED_URL" 1 1 "$SECONDS_ONE" "$paved_pid" "$tmp/paved.db"
paved_runs="$paved_runs paved-1conn"
scrape "$tmp/metrics.2"
sleep 1
rss_load=$(rss_kb "$paved_pid")
hwm_load=$(hwm_kb "$paved_pid")
parts_load=$(rss_parts "$paved_pid")
say "paved RSS: $(mb "$rss_start") after start, $(mb "$rss_load") at rest after the load (peak $(mb "$hwm_load"))"

# ---- The long run: RSS before and after ----

long_requests=""
if [ "$SECONDS_LONG" -gt 0 ]; then
    say "long run: wrk -t$WRK_T -c$CONNS -d${SECONDS_LONG}s, RSS each second"
    run_wrk paved-long "$PAVED_URL" "$WRK_T" "$CONNS" "$SECONDS_LONG" "$paved_pid" "$tmp/paved.db"
    paved_runs="$paved_runs paved-long"
    sleep 1
    rss_long=$(rss_kb "$paved_pid")
    parts_long=$(rss_parts "$paved_pid")
    long_requests=$(field requests "$tmp/wrk.paved-long")
    say "paved RSS: $(mb "$rss_load") before, $(mb "$rss_long") after $long_requests more requests"
fi

# ---- Diagnostics ----

perf_note="not run (BENCH_SERVER_DIAG=0)"
if [ "$DIAG" = 1 ]; then
    if command -v perf >/dev/null 2>&1; then
        say "diagnostics: perf record of paved for $SECONDS_DIAG s under load"
        perf record -e cpu-clock -F 499 --call-graph dwarf,16384 -p "$paved_pid" \
            -o "$tmp/perf.data" -- sleep "$SECONDS_DIAG" >"$tmp/perf.log" 2>&1 &
        perf_pid=$!
        run_wrk paved-perf "$PAVED_URL" "$WRK_T" "$CONNS" $((SECONDS_DIAG + 1)) "$paved_pid" "$tmp/paved.db"
        paved_runs="$paved_runs paved-perf"
        wait "$perf_pid"
        perf_pid=""
        if perf report -i "$tmp/perf.data" --stdio --no-children --sort dso -g none \
            >"$tmp/perf.dso" 2>/dev/null &&
            perf report -i "$tmp/perf.data" --stdio --no-children --sort dso,symbol -g none \
                >"$tmp/perf.sym" 2>/dev/null &&
            perf report -i "$tmp/perf.data" --stdio --children --sort dso,symbol -g none \
                >"$tmp/perf.inc" 2>/dev/null; then
            perf_note=ok
        else
            perf_note="perf report failed: $(tail -n 1 "$tmp/perf.log")"
        fi
    else
        perf_note="perf is not installed (Debian package linux-perf)"
    fi
fi
scrape "$tmp/metrics.3"

# ---- Stop paved and nginx, check the audit store ----

stop "$paved_pid"
stop "$ng_pid"
"$BIN" audit verify --db "$tmp/paved.db" >"$tmp/verify.txt" 2>&1
verify_rc=$?
verify_out=$(head -n 1 "$tmp/verify.txt")
rows=$(sed -n 's/^chain ok: \([0-9]*\) rows.*/\1/p' "$tmp/verify.txt")
completed=$smoke_requests
conns_total=0
bad_total=0
for n in $paved_runs; do
    completed=$((completed + $(field requests "$tmp/wrk.$n")))
    bad_total=$((bad_total + $(cat "$tmp/bad.$n")))
    case $n in
    paved-1conn) conns_total=$((conns_total + 1)) ;;
    *) conns_total=$((conns_total + CONNS)) ;;
    esac
done
committed=$(metric paved_audit_committed_total "$tmp/metrics.3")
if [ "$verify_rc" -eq 0 ] && [ -n "$rows" ] && [ "$rows" -ge "$completed" ] &&
    [ "$rows" -le $((completed + conns_total)) ] && [ "$bad_total" -eq 0 ]; then
    audit_ok=yes
else
    audit_ok=NO
fi
say "audit: $verify_out; wrk completed $completed requests (all 200: $([ "$bad_total" -eq 0 ] && echo yes || echo no))"

# More diagnostics, each on a fresh server (their own databases).
d_thr=""
d_async=""
if [ "$DIAG" = 1 ]; then
    say "diagnostics: paved --threads $CONNS, durable audit"
    start_paved diag-threads --threads "$CONNS"
    run_wrk diag-threads "https://127.0.0.1:$srv_port/k8s/validate" "$WRK_T" "$CONNS" "$SECONDS_DIAG" "$srv_pid" \
        "$tmp/diag-threads.db"
    stop "$srv_pid"
    d_thr=yes
    say "diagnostics: paved with audit.durability: async (the shipped bindings, default threads)"
    { cat policies/default.yaml && printf '\naudit:\n  durability: async\n'; } >"$tmp/async.yaml"
    if grep -q '^audit:' policies/default.yaml; then
        say "policies/default.yaml has an audit: section; skipping the async diagnostic"
    else
        start_paved diag-async --config "$tmp/async.yaml"
        if grep -q 'async durability' "$tmp/diag-async.log"; then
            run_wrk diag-async "https://127.0.0.1:$srv_port/k8s/validate" "$WRK_T" "$CONNS" "$SECONDS_DIAG" "$srv_pid" \
                "$tmp/diag-async.db"
            run_wrk diag-async-1c "https://127.0.0.1:$srv_port/k8s/validate" 1 1 "$SECONDS_DIAG" "$srv_pid" \
                "$tmp/diag-async.db"
            d_async=yes
        else
            say "the async server did not report async durability; skipped"
        fi
        stop "$srv_pid"
    fi
fi

elapsed=$(($(date +%s) - started))
load_after=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")

# ---- Results ----

# mean_field FIELD PREFIX: the mean of FIELD over the rounds PREFIX-1..N.
mean_field() {
    r=1
    for r in $(seq 1 "$ROUNDS"); do
        field "$1" "$tmp/wrk.$2-$r"
    done | awk '{ s += $1 } END { printf "%.0f\n", s / NR }'
}
p_rps=$(mean_field rps paved)
n_rps=$(mean_field rps nginx)
p_p50=$(mean_field p50_us paved)
p_p99=$(mean_field p99_us paved)
n_p50=$(mean_field p50_us nginx)
n_p99=$(mean_field p99_us nginx)
ratio=$(calc '%.3f' "$p_rps / $n_rps")
o_p50=$(field p50_us "$tmp/wrk.paved-1conn")
o_p99=$(field p99_us "$tmp/wrk.paved-1conn")
o_rps=$(field rps "$tmp/wrk.paved-1conn")

# The decision histogram of paved's /metrics over the rounds (decide + audit commit).
hist_delta() {
    a=$(metric "$1" "$tmp/metrics.0")
    b=$(metric "$1" "$tmp/metrics.1")
    calc '%.0f' "${b:-0} - ${a:-0}"
}
m_count=$(hist_delta paved_decision_seconds_count)
m_sum_us=$(calc '%.0f' "($(metric paved_decision_seconds_sum "$tmp/metrics.1") - \
    $(metric paved_decision_seconds_sum "$tmp/metrics.0")) * 1e6")
m_mean_us=""
[ "${m_count:-0}" -gt 0 ] && m_mean_us=$(calc '%.0f' "$m_sum_us / $m_count")
m_le1ms=$(hist_delta 'paved_decision_seconds_bucket{le="0.001"}')
m_le250=$(hist_delta 'paved_decision_seconds_bucket{le="0.00025"}')
m_le5ms=$(hist_delta 'paved_decision_seconds_bucket{le="0.005"}')
pct() {
    [ "${m_count:-0}" -gt 0 ] && calc '%.1f' "100 * $1 / $m_count" || echo "?"
}

v_ratio=$(awk -v a="$ratio" -v t="$T_RATIO" 'BEGIN { print (a + 0 >= t + 0) ? "met" : "MISSED" }')
v_p50=$(verdict "$o_p50" "$T_P50_US")
v_p99=$(verdict "$o_p99" "$T_P99_US")
v_rss=$(verdict "$rss_start" "$T_RSS_KB")
v_rss_load=$(verdict "$rss_load" "$T_RSS_KB")
v_growth="not measured"
growth=""
if [ -n "$long_requests" ]; then
    growth=$((rss_long - rss_load))
    v_growth=$(verdict "$growth" "$T_GROWTH_KB")
fi

echo
echo "paved server bench ($elapsed s; load average $load_before before, $load_after after)"
printf '  %-48s %16s  target %-10s %s\n' \
    "paved req/s, $CONNS conns (nginx $n_rps)" "$p_rps" "" "" \
    "ratio to nginx" "$ratio" ">= $T_RATIO" "$v_ratio" \
    "paved p50 / p99, $CONNS conns" "$(us "$p_p50") / $(us "$p_p99")" "" "" \
    "paved p50, one connection" "$(us "$o_p50")" "<= $T_P50_US us" "$v_p50" \
    "paved p99, one connection" "$(us "$o_p99")" "<= 1 ms" "$v_p99" \
    "RSS at rest after start" "$(mb "$rss_start")" "<= 30 MB" "$v_rss" \
    "RSS at rest after the load" "$(mb "$rss_load")" "<= 30 MB" "$v_rss_load"
[ -n "$growth" ] && printf '  %-48s %16s  target %-10s %s\n' \
    "RSS growth over $long_requests requests" "$growth kB" "<= $T_GROWTH_KB kB" "$v_growth"
printf '  %-48s %16s\n' "audit verify, rows = answers" "$audit_ok ($rows rows)"

# ---- docs/BENCHMARKS-server.md ----

if [ -n "$DOC" ]; then
    cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
    ram=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null)
    commit=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
    wrkv=$(dpkg-query -W -f '${Version}' wrk 2>/dev/null || echo "?")
    ngv=$(nginx -v 2>&1 | sed 's/^nginx version: //')
    mhdv=$(pkg-config --modversion libmicrohttpd 2>/dev/null || echo "?")
    fs=$(df -PT "$tmp" 2>/dev/null | awk 'NR == 2 { print $2 }')

    # row NAME: one line of the per-run table.
    row() {
        f=$tmp/wrk.$1
        walmax=$(awk '$3 > m { m = $3 } END { if (m > 0) printf "%.0f MB\n", m / 1048576; else print "–" }' \
            "$tmp/rss.$1")
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$2" \
            "$(field requests "$f")" "$(field rps "$f")" "$(us "$(field p50_us "$f")")" \
            "$(us "$(field p90_us "$f")")" "$(us "$(field p99_us "$f")")" \
            "$(us "$(field max_us "$f")")" "$(cores "$1")" "$(cpu_per_req "$1")" "$walmax"
    }
    {
        cat <<EOF
# paved server benchmark

Written by \`tests/bench/server.sh\` (part of \`make bench\`); do not edit by hand.
Targets come from shared/PERFORMANCE.md. These are benchmarks, not tests: nothing fails
on a missed target.

## Run

| | |
|---|---|
| date | $(date -u '+%Y-%m-%d %H:%M UTC') |
| commit | $commit (the work tree may hold uncommitted changes) |
| machine | $(nproc) CPUs, $cpu, $ram RAM, loopback only |
| kernel | $(uname -sr) |
| client | wrk $wrkv, tests/bench/post.lua: keep-alive POST /k8s/validate of tests/bench/review-8k.json ($body_bytes bytes, the Deployment of tests/bench/deployment-8k.yaml in an AdmissionReview) |
| paved | \`paved serve\`, TLS (${paved_tls:-?}), ECDSA P-256 certificate from \`paved certs\`, shipped bundle, default threads (${paved_threads:-?}), durable audit (sync: the answer waits for its batch's commit) in a fresh database on $fs, libmicrohttpd $mhdv; decision log lines on stderr to a file; answer $paved_answer_bytes bytes |
| nginx | $ngv, worker_processes $NGINX_WORKERS ($ng_nworkers workers), TLS (${ng_tls:-?}) with the same certificate, \`return 200\` of a fixed $ng_answer_bytes-byte AdmissionReview (tests/bench/nginx.conf.in), body read and discarded, access log off |
| load average | $load_before before, $load_after after (the machine is shared) |
| duration | $elapsed s |

wrk, nginx and paved share the machine's $(nproc) CPUs; nginx and paved never run at the
same time (interleaved rounds, nginx first). Commands (\`\$PAVED_URL\`, \`\$NGINX_URL\`: the
free ports of this run):

\`\`\`
tests/bench/server.sh $B
paved certs --out TMP/certs --host 127.0.0.1
paved serve --listen 127.0.0.1:PORT --tls-cert TMP/certs/tls.crt --tls-key TMP/certs/tls.key --db TMP/paved.db
nginx -p TMP/nginx -c TMP/nginx/nginx.conf -e TMP/nginx/error.log     # from tests/bench/nginx.conf.in
wrk -t$WRK_T -c$CONNS -d${SECONDS_WARMUP}s ...                                    # warm-up, each server
wrk -t$WRK_T -c$CONNS -d${SECONDS_MAIN}s --timeout 5s --latency -s tests/bench/post.lua \$NGINX_URL   # $ROUNDS round(s), interleaved
wrk -t$WRK_T -c$CONNS -d${SECONDS_MAIN}s --timeout 5s --latency -s tests/bench/post.lua \$PAVED_URL
wrk -t1 -c1 -d${SECONDS_ONE}s --timeout 5s --latency -s tests/bench/post.lua \$PAVED_URL
wrk -t$WRK_T -c$CONNS -d${SECONDS_LONG}s --timeout 5s --latency -s tests/bench/post.lua \$PAVED_URL  # RSS run
paved audit verify --db TMP/paved.db
\`\`\`

## Results against the targets

Means over $ROUNDS round(s) of ${SECONDS_MAIN} s (latencies: the mean of the rounds' percentiles,
from wrk's latency distribution).

| what | measured | target | |
|---|---|---|---|
| paved, $CONNS connections | $p_rps req/s, p50 $(us "$p_p50"), p99 $(us "$p_p99") | | |
| nginx, $CONNS connections, same body | $n_rps req/s, p50 $(us "$n_p50"), p99 $(us "$n_p99") | | |
| ratio paved / nginx | $ratio | ≥ $T_RATIO | $v_ratio |
| paved, one connection: p50 | $(us "$o_p50") ($o_rps req/s) | ≤ $T_P50_US µs | $v_p50 |
| paved, one connection: p99 | $(us "$o_p99") | ≤ 1 ms | $v_p99 |
| paved RSS at rest after start | $(mb "$rss_start") | ≤ 30 MB | $v_rss |
| paved RSS at rest after warm-up, rounds and one-connection run | $(mb "$rss_load") (peak $(mb "$hwm_load")) | ≤ 30 MB | $v_rss_load |
EOF
        if [ -n "$long_requests" ]; then
            echo "| paved RSS over the long run ($long_requests requests in ${SECONDS_LONG} s; not a million) | $(mb "$rss_load") before, $(mb "$rss_long") after: $growth kB | no growth (≤ $T_GROWTH_KB kB) | $v_growth |"
        fi
        cat <<EOF
| audit after the load | \`paved audit verify\`: $verify_out; wrk completed $completed requests (incl. $smoke_requests smoke request), $bad_total errors or non-2xx; rows − completed = $((${rows:-0} - completed)) (requests in flight when wrk stopped, at most $conns_total); paved_audit_committed_total ${committed:-?} before the stop | rows = answers, chain ok | $audit_ok |

## Every run

CPU: user + system time of the server's processes during the run (nginx: master and
workers), as cores busy and as µs per request. WAL max: the largest size of the audit
database's write-ahead log (\`-wal\` file) seen during the run, sampled at the start and
once a second.

| run | server | requests | req/s | p50 | p90 | p99 | max | CPU cores | CPU µs/req | WAL max |
|---|---|---|---|---|---|---|---|---|---|---|
$(row warm-nginx nginx)
$(row warm-paved paved)
EOF
        for r in $(seq 1 "$ROUNDS"); do
            row "nginx-$r" nginx
            row "paved-$r" paved
        done
        row paved-1conn "paved, 1 connection"
        [ -n "$long_requests" ] && row paved-long "paved, long run"
        [ -f "$tmp/wrk.paved-perf" ] && row paved-perf "paved under perf"
        [ -n "$d_thr" ] && row diag-threads "paved --threads $CONNS"
        [ -n "$d_async" ] && row diag-async "paved, async audit"
        [ -n "$d_async" ] && row diag-async-1c "paved, async audit, 1 connection"
        echo
        echo "paved's RSS: after start $(mb "$rss_start") ($parts_start); at rest after the load"
        echo "$(mb "$rss_load") ($parts_load)$([ -n "$long_requests" ] && echo "; after the long run $(mb "$rss_long") ($parts_long)")."
        echo
        echo "Voluntary context switches of paved per request: $(ctx_per_req "paved-1")" \
            "(round 1), $(ctx_per_req paved-1conn) (one connection)."
        if [ -n "$long_requests" ]; then
            echo
            echo "paved's RSS during the long run: at the start, then once a second (kB):"
            echo
            echo '```'
            awk '{ printf "%s%s", (NR > 1 ? " " : ""), $2 } END { print "" }' "$tmp/rss.paved-long" | fold -s -w 88
            echo '```'
            echo
            echo "The audit database's write-ahead log at the same moments (MB):"
            echo
            echo '```'
            awk '{ printf "%s%.0f", (NR > 1 ? " " : ""), $3 / 1048576 } END { print "" }' "$tmp/rss.paved-long" |
                fold -s -w 88
            echo '```'
            awk -v n="$long_requests" 'NR == 1 { first = $3 } NR > 1 && $3 < prev { cut = 1 } { prev = $3 }
                END { if (!cut && n > 0 && prev > first)
                    printf "\nIt never shrank: about %.1f KB of log per decision (%.0f MB over %d requests, first to last sample).\n",
                        (prev - first) / 1024 / n, (prev - first) / 1048576, n }' "$tmp/rss.paved-long"
        fi
        cat <<EOF

## paved's own view: /metrics over the round(s)

\`paved_decision_seconds\` (parse, decide and wait for the audit commit, without TLS and
HTTP): $m_count decisions, mean $(us "$m_mean_us"); $(pct "$m_le250") % within 250 µs,
$(pct "$m_le1ms") % within 1 ms, $(pct "$m_le5ms") % within 5 ms. At $CONNS connections wrk measured
p50 $(us "$p_p50") for the same requests.
EOF
        if [ "$DIAG" = 1 ]; then
            echo
            echo "## Diagnostics"
            echo
            if [ -n "$d_thr" ] || [ -n "$d_async" ]; then
                echo "Fresh servers, ${SECONDS_DIAG} s each at $CONNS connections (table above):"
                echo
                [ -n "$d_thr" ] && echo "- \`--threads $CONNS\` (durable audit): $(field rps "$tmp/wrk.diag-threads") req/s against $p_rps with the default ${paved_threads:-?} threads."
                [ -n "$d_async" ] && echo "- \`audit.durability: async\` (default threads): $(field rps "$tmp/wrk.diag-async") req/s, $(cpu_per_req diag-async) CPU µs a request; at one connection p50 $(us "$(field p50_us "$tmp/wrk.diag-async-1c")"), p99 $(us "$(field p99_us "$tmp/wrk.diag-async-1c")")."
                echo
            fi
            if [ "$perf_note" = ok ]; then
                cat <<EOF2
perf (\`perf record -e cpu-clock -F 499 --call-graph dwarf -p PID\`, ${SECONDS_DIAG} s at $CONNS
connections, durable audit, default threads: the "paved under perf" run above), CPU
samples of paved, all threads. By library (self time):

\`\`\`
$(grep -v '^#' "$tmp/perf.dso" | awk 'NF && $1 + 0 >= 0.5' | head -n 12 | sed 's/[[:space:]]*$//')
\`\`\`

Inclusive (a function and what it calls; named symbols only: Debian's liblua5.4 and
libmicrohttpd are stripped):

\`\`\`
$(grep -v '^#' "$tmp/perf.inc" | awk 'NF && $5 !~ /^0x/ && $5 != "clone3" && $5 != "start_thread"' |
                    head -n 30 | cut -c1-90 | sed 's/[[:space:]]*$//')
\`\`\`

Top symbols by self time:

\`\`\`
$(grep -v '^#' "$tmp/perf.sym" | awk 'NF' | head -n 20 | cut -c1-90 | sed 's/[[:space:]]*$//')
\`\`\`
EOF2
            else
                echo "perf: $perf_note."
            fi
        fi
        echo
        echo "## Notes on missed targets"
        echo
        if [ "$v_ratio" = met ] && [ "$v_p50" = met ] && [ "$v_p99" = met ] && [ "$v_rss" = met ] &&
            [ "$v_rss_load" = met ] && [ "$v_growth" != MISSED ]; then
            echo "None: every target was met in this run."
        fi
        if [ "$v_ratio" != met ]; then
            echo "- **Throughput.** paved answered $p_rps req/s, $ratio of nginx's $n_rps, against $T_RATIO;"
            echo "  paved kept $(cores paved-1) cores busy ($(cpu_per_req paved-1) CPU µs a request; nginx:"
            echo "  $(cores nginx-1) cores, $(cpu_per_req nginx-1) µs) with ${paved_threads:-?} worker threads."
            if [ -n "$d_async" ] || [ -n "$d_thr" ]; then
                printf '%s' "  Without waiting for the commit (async audit) it answered"
                [ -n "$d_async" ] && printf ' %s req/s' "$(field rps "$tmp/wrk.diag-async")"
                [ -n "$d_async" ] && [ -n "$d_thr" ] && printf '%s' ";"
                [ -n "$d_thr" ] && printf ' with %s threads and the durable audit, %s req/s' "$CONNS" \
                    "$(field rps "$tmp/wrk.diag-threads")"
                echo "."
            fi
            echo "  A decision waiting for its audit commit parks its connection (libmicrohttpd"
            echo "  suspend/resume), so the ${paved_threads:-?} worker threads keep deciding while the writer"
            echo "  commits the waiting records in one batch: durable and async audit now reach about"
            echo "  the same rate, and the limit is CPU per request."
            echo "  The CPU cost itself is $(cpu_per_req paved-1) µs a request against nginx's $(cpu_per_req nginx-1): the ratio"
            echo "  target needs about $(calc '%.0f' "$(nproc) * 1e6 / ($T_RATIO * $n_rps)") CPU µs a request on these $(nproc) CPUs, wrk included."
            if [ "$perf_note" = ok ]; then
                echo "  Where paved's CPU goes (perf, inclusive share of its samples): decide_eval $(inc decide_eval)"
                echo "  (vm_begin $(inc vm_begin), vm_unchanged $(inc vm_unchanged), lua_pcallk $(inc lua_pcallk)),"
                echo "  cJSON parsing $(inc cJSON_ParseWithLengthOpts), the audit writer thread $(inc writer_main)"
                echo "  (fdatasync $(inc __x64_sys_fdatasync)), the scheduler's context switches"
                echo "  (finish_task_switch, self) $(self finish_task_switch.isra.0)."
            fi
        fi
        if [ "$v_p50" != met ] || [ "$v_p99" != met ]; then
            echo "- **One connection.** p50 $(us "$o_p50"), p99 $(us "$o_p99") against $T_P50_US µs and 1 ms: every"
            echo "  answer waits for one SQLite WAL commit (synchronous=FULL, an fsync) after the decision."
            echo "  The write-ahead log reached $(wal_max) over this server's runs: it starts over only when"
            echo "  a checkpoint has copied all of it back while no write is open, which continuous load"
            echo "  rarely allows$([ -n "$long_requests" ] && echo " (see the long run's series)"). $(wal_story paved-1conn)"
            [ -n "$d_async" ] && echo "  With the async audit the same run gave p50 $(us "$(field p50_us "$tmp/wrk.diag-async-1c")"), p99 $(us "$(field p99_us "$tmp/wrk.diag-async-1c")")."
        fi
        if [ "$v_rss" != met ] || [ "$v_rss_load" != met ]; then
            echo "- **Memory.** RSS $(mb "$rss_start") after start, $(mb "$rss_load") at rest after the load"
            echo "  (peak $(mb "$hwm_load")) against 30 MB: $parts_start after start, $parts_load after"
            echo "  the load. Anonymous memory is the heap (per-thread Lua states, allocator caches, SQLite's"
            echo "  page caches); file-backed pages are the binary, its libraries and mapped files."
        fi
        if [ "$v_growth" = MISSED ]; then
            echo "- **Growth.** RSS rose by $growth kB over $long_requests requests (series above): $parts_load"
            echo "  before, $parts_long after."
        fi
        if [ -n "$long_requests" ]; then
            echo "- The memory check ran $long_requests requests in ${SECONDS_LONG} s, not a million: a million"
            echo "  would take $(calc '%.0f' "1000000 / ($long_requests / $SECONDS_LONG)") s at this rate, beyond the time budget of \`make bench\`."
        fi
    } >"$DOC.tmp" && mv "$DOC.tmp" "$DOC"
    say "wrote $DOC"
fi

if [ "$audit_ok" != yes ]; then
    cat "$tmp/verify.txt" >&2
    die "the audit check failed: $verify_out; $rows rows for $completed completed requests, $bad_total errors"
fi
exit 0
