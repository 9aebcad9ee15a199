#!/bin/sh
# tests/cli/run.sh: black-box tests of the paved command line. Run from the repo root:
#   PAVED=build/paved sh tests/cli/run.sh
# Each test runs $PAVED under `timeout`, checks the exit status and the output, and
# prints "ok - NAME" or "FAIL - NAME" with the reasons and the output. The last line
# is "N passed, N failed"; the exit status is 1 when any test failed.
# POSIX sh (dash); temporaries live in one mktemp -d directory removed on exit.
set -u

PAVED=${PAVED:-build/paved}
EX=examples
FX=tests/cli

if [ ! -x "$PAVED" ]; then
    echo "FAIL - setup: $PAVED is not an executable (build it with make)"
    echo "0 passed, 1 failed"
    exit 1
fi
if [ ! -f "$EX/privileged-pod.yaml" ] || [ ! -d "$FX/bad-policies" ]; then
    echo "FAIL - setup: run from the repository root"
    echo "0 passed, 1 failed"
    exit 1
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/paved-cli.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
trap 'exit 130' INT TERM

passed=0
failed=0
name=""
why=""
rc=0
NL='
'

have_python=0
if command -v python3 >/dev/null 2>&1; then
    have_python=1
fi

# ---- running paved ----------------------------------------------------------------

# run ARGS...: runs paved (timeout 60 s); stdout in $T/out, stderr in $T/err, both in
# $T/all, exit status in $rc. run_t SECONDS ARGS... uses another timeout; run_in FILE
# ARGS... feeds FILE on standard input.
run_t() {
    _s=$1
    shift
    timeout "$_s" "$PAVED" "$@" <"${stdin_file:-/dev/null}" >"$T/out" 2>"$T/err"
    rc=$?
    stdin_file=""
    cat "$T/out" "$T/err" >"$T/all"
}
run() { run_t 60 "$@"; }
run_in() {
    stdin_file=$1
    shift
    run_t 60 "$@"
}
stdin_file=""

# ---- assertions (they collect reasons; t_end reports) --------------------------------

t_begin() {
    name=$1
    why=""
}
note() { why="$why$NL    $1"; }

# rc_is N...: the exit status is one of N...
rc_is() {
    for _want in "$@"; do
        [ "$rc" -eq "$_want" ] && return 0
    done
    if [ "$rc" -eq 124 ]; then
        note "timed out (exit status 124), expected exit status $*"
    elif [ "$rc" -ge 128 ]; then
        note "killed by a signal (exit status $rc), expected exit status $*"
    else
        note "exit status $rc, expected $*"
    fi
}
# has STREAM TEXT: STREAM (out, err or all) holds the fixed string TEXT.
has() { grep -F -q -e "$2" "$T/$1" || note "$1 lacks: $2"; }
# has_re STREAM ERE: STREAM has a line matching the extended regular expression.
has_re() { grep -E -q -e "$2" "$T/$1" || note "$1 lacks a line matching: $2"; }
# lacks STREAM TEXT / lacks_re STREAM ERE: the opposite.
lacks() { grep -F -q -e "$2" "$T/$1" && note "$1 should not hold: $2"; }
lacks_re() { grep -E -q -e "$2" "$T/$1" && note "$1 should not match: $2"; }
# count_is STREAM ERE N: exactly N lines match.
count_is() {
    _n=$(grep -E -c -e "$2" "$T/$1")
    [ "$_n" -eq "$3" ] || note "$1 has $_n lines matching '$2', expected $3"
}
# json_valid FILE: python3 -m json.tool accepts FILE (skipped without python3).
json_valid() {
    if [ "$have_python" -eq 1 ]; then
        python3 -m json.tool "$1" >/dev/null 2>"$T/json.err" ||
            note "not valid JSON: $(head -n 1 "$T/json.err")"
    else
        echo "# skip: python3 absent, $name: JSON validity not checked"
    fi
}
# xml_valid FILE: well-formed XML (skipped without python3).
xml_valid() {
    if [ "$have_python" -eq 1 ]; then
        python3 -c 'import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])' "$1" \
            2>"$T/xml.err" >/dev/null || note "not well-formed XML: $(tail -n 1 "$T/xml.err")"
    else
        echo "# skip: python3 absent, $name: XML well-formedness not checked"
    fi
}

t_end() {
    # Whatever the test, a sanitizer report or a crash is a failure.
    if grep -E -q 'AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:' "$T/err"; then
        note "sanitizer report on stderr"
    fi
    if [ -z "$why" ]; then
        passed=$((passed + 1))
        echo "ok - $name"
    else
        failed=$((failed + 1))
        echo "FAIL - $name$why"
        echo "    exit status: $rc"
        echo "    --- stdout (first 40 lines):"
        head -n 40 "$T/out" | cut -c 1-300 | sed 's/^/    | /'
        echo "    --- stderr (first 40 lines):"
        head -n 40 "$T/err" | cut -c 1-300 | sed 's/^/    | /'
    fi
}

# ---- 1-4: the shipped examples --------------------------------------------------------

t_begin "privileged pod is denied by the golden path"
run check "$EX/privileged-pod.yaml"
rc_is 1
has out "DENIED  Pod/shop/debug-shell"
has out "$EX/privileged-pod.yaml:3"
has_re out "^  deny  pod-security \(psa-restricted\): .*privileged"
has out "1 denied"
t_end

t_begin "golden deployment is allowed"
run check "$EX/golden-deployment.yaml"
rc_is 0
has out "ALLOWED  Deployment/shop/checkout"
has out "1 object checked: 0 denied"
lacks out "DENIED"
t_end

t_begin "configmap is allowed (no default binding targets it)"
run check "$EX/configmap.yaml"
rc_is 0
has out "ALLOWED  ConfigMap/shop/checkout-settings"
lacks_re out "^  (deny|warn) "
t_end

t_begin "broken YAML: exit 2, file:line:col on stderr"
run check "$EX/broken.yaml"
rc_is 2
has_re err "$EX/broken\.yaml:7:[0-9]+: "
has out "input errors"
t_end

t_begin "quiet mode prints denied objects and the summary only"
run check -q "$EX/configmap.yaml" "$EX/privileged-pod.yaml"
rc_is 1
has out "DENIED  Pod/shop/debug-shell"
lacks out "ConfigMap/shop/checkout-settings"
has out "2 objects checked: 1 denied"
t_end

# ---- 5: JSON input, standard input ------------------------------------------------------

printf '{"apiVersion": "v1",\n "kind": "ConfigMap",\n "metadata": {"name": oops}}\n' >"$T/bad.json"
t_begin "malformed JSON file: exit 2 with file:line"
run check "$T/bad.json"
rc_is 2
has_re err "bad\.json:3:[0-9]+: .*JSON"
t_end

printf '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"from-stdin","namespace":"shop"}}\n' >"$T/cm.json"
t_begin "JSON on standard input (-)"
run_in "$T/cm.json" check -
rc_is 0
has out "ALLOWED  ConfigMap/shop/from-stdin  <stdin>:1"
t_end

t_begin "YAML on standard input (-), denied"
run_in "$EX/privileged-pod.yaml" check -
rc_is 1
has out "DENIED  Pod/shop/debug-shell  <stdin>:3"
t_end

t_begin "malformed YAML on standard input: <stdin>:line:col"
run_in "$EX/broken.yaml" check -
rc_is 2
has_re err "<stdin>:7:[0-9]+: "
t_end

t_begin "JSON file with a .json extension and a List inside"
printf '{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"shop"}},{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b","namespace":"shop"}}]}' >"$T/list.json"
run check "$T/list.json"
rc_is 0
has out "ConfigMap/shop/a"
has out "ConfigMap/shop/b"
has out "2 objects checked"
t_end

# ---- 6: binary garbage ------------------------------------------------------------------

head -c 4096 /dev/urandom >"$T/garbage.yaml"
t_begin "random bytes: exit 2, a message, no crash"
run check "$T/garbage.yaml"
rc_is 2
has_re err "garbage\.yaml(:[0-9]+)*: "
t_end

printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: n\0ul\n' >"$T/nul.yaml"
t_begin "NUL byte in YAML: exit 2 with file:line"
run check "$T/nul.yaml"
rc_is 2
has_re err "nul\.yaml:4:[0-9]+: "
t_end

printf '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a\0b"}}\n' >"$T/nul.json"
t_begin "raw NUL byte in a JSON string: exit 2"
run check "$T/nul.json"
rc_is 2
has_re err "nul\.json(:[0-9]+)*: "
t_end

printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: \377\376bad-utf8\n' >"$T/utf8.yaml"
t_begin "invalid UTF-8: exit 2 with file:line"
run check "$T/utf8.yaml"
rc_is 2
has_re err "utf8\.yaml:[0-9]+"
t_end

# ---- 7: size limit ----------------------------------------------------------------------

truncate -s 100M "$T/huge.yaml"
t_begin "100 MB file: exit 2, larger than the limit"
run check "$T/huge.yaml"
rc_is 2
has err "huge.yaml"
has err "larger than the limit"
t_end

t_begin "100 MB on standard input: exit 2, larger than the limit"
run_in "$T/huge.yaml" check -
rc_is 2
has err "larger than the limit"
t_end
rm -f "$T/huge.yaml"

# ---- 8: deep nesting --------------------------------------------------------------------

awk 'BEGIN { for (i = 0; i < 10000; i++) printf "["; for (i = 0; i < 10000; i++) printf "]"; print "" }' >"$T/deep-array.json"
t_begin "JSON nested 10000 arrays deep: exit 2, no crash"
run check "$T/deep-array.json"
rc_is 2
has_re err "deep-array\.json:1:[0-9]+: .*(nest|deep)"
t_end

awk 'BEGIN { for (i = 0; i < 10000; i++) printf "{\"a\":"; printf "1"; for (i = 0; i < 10000; i++) printf "}"; print "" }' >"$T/deep-object.json"
t_begin "JSON nested 10000 objects deep: exit 2, no crash"
run check "$T/deep-object.json"
rc_is 2
has_re err "deep-object\.json:1:[0-9]+: .*(nest|deep)"
t_end

awk 'BEGIN { printf "a: "; for (i = 0; i < 10000; i++) printf "["; for (i = 0; i < 10000; i++) printf "]"; print "" }' >"$T/deep-flow.yaml"
t_begin "YAML flow nested 10000 deep: exit 2, no crash"
run check "$T/deep-flow.yaml"
rc_is 2
has_re err "deep-flow\.yaml:1:[0-9]+: .*(nest|deep)"
t_end

awk 'BEGIN { for (i = 0; i < 10000; i++) printf "- "; print "x" }' >"$T/deep-seq.yaml"
t_begin "YAML block sequence nested 10000 deep: exit 2, no crash"
run check "$T/deep-seq.yaml"
rc_is 2
has_re err "deep-seq\.yaml:1:[0-9]+: .*(nest|deep)"
t_end

# A block mapping 10000 levels deep with one space per level would be 50 MB; 1000
# levels (500 KB) is already five times the limit.
awk 'BEGIN { for (i = 0; i < 1000; i++) { printf "%*s", i, ""; print "k:" } }' >"$T/deep-block.yaml"
t_begin "YAML block mapping nested 1000 deep: exit 2, no crash"
run check "$T/deep-block.yaml"
rc_is 2
has_re err "deep-block\.yaml:[0-9]+:[0-9]+: .*(nest|deep)"
t_end

cat >"$T/lol.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata: {name: lol, namespace: shop}
data:
  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
  c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
  d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
  e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
  f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
  g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
  h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
  i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
EOF
t_begin "YAML alias bomb (billion laughs): exit 2 with file:line"
run check "$T/lol.yaml"
rc_is 2
has_re err "lol\.yaml:[0-9]+:[0-9]+: "
t_end

# ---- 9: wrong types ---------------------------------------------------------------------

printf -- '- a\n- b\n' >"$T/list.yaml"
t_begin "document that is a list: exit 2, says so"
run check "$T/list.yaml"
rc_is 2
has_re err "list\.yaml:1: .*list"
t_end

printf 'just a string\n' >"$T/scalar.yaml"
t_begin "document that is a string: exit 2, says so"
run check "$T/scalar.yaml"
rc_is 2
has_re err "scalar\.yaml:1: .*string"
t_end

printf '42\n' >"$T/number.json"
t_begin "JSON document that is a number: exit 2"
run check "$T/number.json"
rc_is 2
has_re err "number\.json:1"
t_end

cat >"$T/spec-string.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: spec-string
  namespace: shop
  labels: {team: payments, service: checkout, cost-center: cc-1042}
spec: "hello"
EOF
t_begin "Deployment whose spec is a string: no policy error"
run check --explain "$T/spec-string.yaml"
rc_is 0 1
has out "Deployment/shop/spec-string"
lacks all "policy error"
lacks_re out "^  binding .* (error|budget|memory|timeout) "
t_end

cat >"$T/containers-number.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: containers-number
  namespace: shop
  labels: {team: payments, service: checkout, cost-center: cc-1042}
spec:
  replicas: 3
  selector: "everything"
  template:
    metadata: {labels: [1, 2]}
    spec:
      securityContext: 7
      containers: 5
      initContainers: {name: x}
      volumes: "none"
EOF
t_begin "Deployment whose containers is a number: no policy error"
run check --explain "$T/containers-number.yaml"
rc_is 0 1
has out "Deployment/shop/containers-number"
lacks all "policy error"
lacks_re out "^  binding .* (error|budget|memory|timeout) "
t_end

cat >"$T/pod-wrong-types.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: wrong-types
  namespace: shop
  labels: [a, b]
  annotations: 12
spec:
  hostNetwork: "yes"
  securityContext: [1]
  containers:
    - "a string container"
    - 17
    - name: 5
      image: {a: b}
      securityContext: "x"
      resources: [1]
      ports: "80"
      env: {a: b}
  volumes: [null, 3, {name: v, hostPath: "x"}]
EOF
t_begin "Pod with wrong types everywhere: no policy error"
run check --format json "$T/pod-wrong-types.yaml"
rc_is 1
has out "wrong-types"
lacks all "policy error"
has_re out '"policy_errors":[[:space:]]*0'
t_end

# ---- 10: unknown kinds, empty input -------------------------------------------------------

printf 'apiVersion: example.com/v1\nkind: FrobnicatorWidget\nmetadata:\n  name: w\n  namespace: shop\n' >"$T/unknown.yaml"
t_begin "unknown kind is allowed"
run check "$T/unknown.yaml"
rc_is 0
has out "ALLOWED  FrobnicatorWidget/shop/w"
t_end

: >"$T/empty.yaml"
t_begin "empty file: exit 0, 0 objects"
run check "$T/empty.yaml"
rc_is 0
has out "0 objects"
t_end

printf -- '---\n---\n# nothing\n---\n' >"$T/dashes.yaml"
t_begin "only --- documents: exit 0, 0 objects"
run check "$T/dashes.yaml"
rc_is 0
has out "0 objects"
t_end

t_begin "empty standard input: exit 0, 0 objects"
run_in "$T/empty.yaml" check -
rc_is 0
has out "0 objects"
t_end

# ---- 11: several documents, List kinds ------------------------------------------------------

{
    cat "$EX/configmap.yaml"
    echo "---"
    cat "$EX/privileged-pod.yaml"
    echo "---"
    cat "$EX/golden-deployment.yaml"
} >"$T/multi.yaml"
t_begin "three documents, the second denied"
run check "$T/multi.yaml"
rc_is 1
has out "3 objects checked: 1 denied"
has_re out "^DENIED  Pod/shop/debug-shell  .*multi\.yaml:12 \(document 2\)"
has_re out "^ALLOWED  ConfigMap/shop/checkout-settings  .*\(document 1\)"
has_re out "^ALLOWED  Deployment/shop/checkout  .*\(document 3\)"
t_end

cat >"$T/list.yaml" <<'EOF'
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: ConfigMap
    metadata: {name: one, namespace: shop}
  - apiVersion: v1
    kind: Pod
    metadata: {name: two, namespace: shop}
    spec:
      containers: [{name: c, image: "docker.io/library/busybox:latest"}]
EOF
t_begin "kind: List with 2 items: 2 objects, item 1 and item 2"
run check "$T/list.yaml"
rc_is 1
has out "2 objects checked"
has_re out "ConfigMap/shop/one .*item 1\)"
has_re out "DENIED  Pod/shop/two .*item 2\)"
t_end

printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: nons}\nspec:\n  containers: [{name: c, image: "registry.example.com/a:1", securityContext: {privileged: true}}]\n' >"$T/nons.yaml"
t_begin "--namespace applies to objects without one (kube-system is excluded)"
run check --namespace kube-system "$T/nons.yaml"
rc_is 0
has out "ALLOWED  Pod/"
lacks out "pod-security"
t_end

t_begin "--namespace applies to objects without one (shop is checked)"
run check --namespace shop "$T/nons.yaml"
rc_is 1
has_re out "^  deny  pod-security .*privileged"
t_end

# ---- 12: directories -----------------------------------------------------------------------

mkdir -p "$T/tree/sub/deeper" "$T/tree/empty"
cp "$EX/configmap.yaml" "$T/tree/a.yaml"
cp "$EX/privileged-pod.yaml" "$T/tree/sub/b.yml"
printf '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c-json","namespace":"shop"}}\n' >"$T/tree/sub/deeper/c.json"
# YAML-ish junk in files that are not manifests: must be ignored.
printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: readme}\n: [broken\n' >"$T/tree/README.md"
cp "$T/tree/README.md" "$T/tree/sub/notes.txt"
cp "$T/tree/README.md" "$T/tree/sub/deeper/old.yaml.bak"
cp "$T/tree/README.md" "$T/tree/sub/Makefile"
t_begin "directory: recursive, *.yaml *.yml *.json only"
run check "$T/tree"
rc_is 1
has out "3 objects checked: 1 denied"
has out "ConfigMap/shop/checkout-settings"
has out "DENIED  Pod/shop/debug-shell"
has out "ConfigMap/shop/c-json"
lacks all "readme"
lacks all "README"
lacks all "notes.txt"
lacks all ".bak"
t_end

t_begin "directory with a broken file: exit 2, the rest still reported"
run check "$EX"
rc_is 2
has_re err "broken\.yaml:7:[0-9]+: "
has out "DENIED  Pod/shop/debug-shell"
has out "ALLOWED  Deployment/shop/checkout"
t_end

t_begin "missing file: exit 2, names it"
run check "$T/no-such-file.yaml"
rc_is 2
has err "no-such-file.yaml"
t_end

# ---- 13: output formats ------------------------------------------------------------------

t_begin "--format json: denied object, exit 1, valid JSON"
run check --format json "$EX/privileged-pod.yaml" "$EX/configmap.yaml"
rc_is 1
has_re out '"allowed":[[:space:]]*false'
has_re out '"allowed":[[:space:]]*true'
has out '"summary"'
has_re out '"denied":[[:space:]]*1'
has out '"binding":'
has out 'pod-security'
json_valid "$T/out"
t_end

t_begin "--format json: allowed object, exit 0, valid JSON"
run check --format json "$EX/golden-deployment.yaml"
rc_is 0
has_re out '"allowed":[[:space:]]*true'
lacks_re out '"allowed":[[:space:]]*false'
has out '"summary"'
json_valid "$T/out"
t_end

t_begin "--format json: malformed input, exit 2, valid JSON"
run check --format json "$EX/broken.yaml"
rc_is 2
has_re out '"input_errors":[[:space:]]*1'
has_re err "broken\.yaml:7:"
json_valid "$T/out"
t_end

t_begin "--format junit: failure for the denied object only"
run check --format junit "$EX/privileged-pod.yaml" "$EX/configmap.yaml"
rc_is 1
has out "<testsuites>"
has out "</testsuites>"
count_is out "<failure" 1
has out "debug-shell"
has out "checkout-settings"
xml_valid "$T/out"
t_end

t_begin "--format junit: no failure for allowed objects"
run check --format junit "$EX/golden-deployment.yaml" "$EX/configmap.yaml"
rc_is 0
has out "<testsuites>"
count_is out "<testcase " 2
count_is out "<failure" 0
xml_valid "$T/out"
t_end

printf 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: "a<b>&c\\"d"\n  namespace: shop\nspec:\n  containers: [{name: "x]]>y", image: "docker.io/x:latest"}]\n' >"$T/xml-chars.yaml"
t_begin "--format junit: XML special characters are escaped"
run check --format junit "$T/xml-chars.yaml"
rc_is 1
has out "<failure"
lacks out "a<b>"
xml_valid "$T/out"
t_end

t_begin "--format bogus: exit 2"
run check --format bogus "$EX/configmap.yaml"
rc_is 2
has err "bogus"
t_end

# ---- 14: --explain -----------------------------------------------------------------------

t_begin "--explain lists every binding with result and time"
run check --explain "$EX/golden-deployment.yaml"
rc_is 0
has_re out "^  binding pod-security +ok +0 violation\(s\) +[0-9.]+ (ns|us|ms|s)$"
has_re out "^  binding no-nodeport +skipped "
has_re out "^  binding deprecated-apis "
# policies/default.yaml binds 22 policies: every one is listed.
count_is out "^  binding " "$(grep -c '^  - id: ' policies/default.yaml)"
t_end

# ---- 15: --config -------------------------------------------------------------------------

cat >"$T/ci-warn.yaml" <<'EOF'
bindings:
  - id: privileged
    policy: psp-privileged-containers
    enforcement: {default: deny, ci: warn}
EOF
t_begin "--config: enforcement ci: warn turns the deny into a warning"
run check --config "$T/ci-warn.yaml" "$EX/privileged-pod.yaml"
rc_is 0
has_re out "^ALLOWED with warnings  Pod/shop/debug-shell"
has_re out "^  warn  privileged \(psp-privileged-containers\): .*privileged"
lacks out "pod-security"
t_end

cat >"$T/ci-deny.yaml" <<'EOF'
bindings:
  - id: privileged
    policy: psp-privileged-containers
    enforcement: {default: warn, ci: deny}
EOF
t_begin "--config: enforcement ci: deny over default: warn"
run check --config "$T/ci-deny.yaml" "$EX/privileged-pod.yaml"
rc_is 1
has_re out "^DENIED  Pod/shop/debug-shell"
has_re out "^  deny  privileged \(psp-privileged-containers\): "
t_end

printf 'bindings:\n  - {policy: psp-privileged-containers}\nfrobnicate: true\n' >"$T/unknown-top.yaml"
t_begin "--config: unknown top-level key: exit 2 naming it"
run check --config "$T/unknown-top.yaml" "$EX/configmap.yaml"
rc_is 2
has err "frobnicate"
has err "unknown-top.yaml"
t_end

printf 'bindings:\n  - policy: psp-privileged-containers\n    enforcment: deny\n' >"$T/unknown-key.yaml"
t_begin "--config: unknown binding key: exit 2 naming it"
run check --config "$T/unknown-key.yaml" "$EX/configmap.yaml"
rc_is 2
has err "enforcment"
t_end

printf 'bindings:\n  - policy: psp-privileged-containers\n    match: {kinds: [{kinds: [Pod]}], namespacez: [a]}\n' >"$T/unknown-match.yaml"
t_begin "--config: unknown match key: exit 2 naming it"
run check --config "$T/unknown-match.yaml" "$EX/configmap.yaml"
rc_is 2
has err "namespacez"
t_end

printf 'bindings:\n  - id: x\n    policy: no-such-policy-xyz\n' >"$T/unknown-policy.yaml"
t_begin "--config: unknown policy id: exit 2 naming it"
run check --config "$T/unknown-policy.yaml" "$EX/configmap.yaml"
rc_is 2
has err "no-such-policy-xyz"
has err "unknown-policy.yaml"
t_end

t_begin "--config: unknown policy message points at the config, not engine internals"
run check --config "$T/unknown-policy.yaml" "$EX/configmap.yaml"
rc_is 2
lacks err "engine.lua"
t_end

printf 'bindings:\n  - policy: psp-privileged-containers\n    enforcement: sometimes\n' >"$T/bad-enforcement.yaml"
t_begin "--config: bad enforcement value: exit 2 naming it"
run check --config "$T/bad-enforcement.yaml" "$EX/configmap.yaml"
rc_is 2
has err "sometimes"
t_end

printf 'bindings:\n  - policy: psp-privileged-containers\n    enforcement: {default: deny, cd: warn}\n' >"$T/bad-entry.yaml"
t_begin "--config: unknown entry point: exit 2 naming it"
run check --config "$T/bad-entry.yaml" "$EX/configmap.yaml"
rc_is 2
has err '"cd"'
t_end

printf 'bindings:\n  - {id: a, policy: psp-privileged-containers}\n  - {id: a, policy: cost-tags}\n' >"$T/dup-binding.yaml"
t_begin "--config: duplicate binding id: exit 2"
run check --config "$T/dup-binding.yaml" "$EX/configmap.yaml"
rc_is 2
has err '"a"'
t_end

printf 'bindings:\n  - id: x\n    policy: [unclosed\n    other: y\n' >"$T/malformed.yaml"
t_begin "--config: malformed YAML: exit 2 with file:line"
run check --config "$T/malformed.yaml" "$EX/configmap.yaml"
rc_is 2
has_re err "malformed\.yaml:[34]:[0-9]+: "
t_end

t_begin "--config: missing file: exit 2"
run check --config "$T/no-such-config.yaml" "$EX/configmap.yaml"
rc_is 2
has err "no-such-config.yaml"
t_end

printf 'policy_limits: {timeout_ms: 999999}\nbindings: []\n' >"$T/bad-limit.yaml"
t_begin "--config: policy_limits out of range: exit 2"
run check --config "$T/bad-limit.yaml" "$EX/configmap.yaml"
rc_is 2
has err "timeout_ms"
t_end

# ---- 16: misbehaving policies ----------------------------------------------------------------

t_begin "bad policies: one run, exit 1, bounded in time"
run check --policies "$FX/bad-policies" --config "$FX/bad-policies.yaml" "$EX/configmap.yaml"
rc_is 1
has out "DENIED  ConfigMap/shop/checkout-settings"
lacks all "root:"
lacks all "pwned"
t_end
cp "$T/out" "$T/bad.out"
cp "$T/err" "$T/bad.err"
bad_rc=$rc

# bad_policy BINDING FILE WHAT [MARK]: the binding's line is a policy error (deny) naming
# bad-policies/FILE.lua with a line number.
bad_policy() {
    t_begin "bad policy $1: policy error at $2.lua:LINE ($3)${4:+ ($4)}"
    cp "$T/bad.out" "$T/out"
    cp "$T/bad.err" "$T/err"
    cat "$T/out" "$T/err" >"$T/all"
    rc=$bad_rc
    rc_is 1
    has_re out "^  deny  $1: policy error .*bad-policies/$2\.lua:[0-9]+:"
    count_is out "^  deny  $1: " 1
    t_end
}
bad_policy loop loop "infinite loop"
bad_policy pcall-loop pcall-loop "pcall cannot swallow the budget"
bad_policy alloc alloc "unbounded allocation"
bad_policy raise raise "error()"
bad_policy return-number return-number "check returns a number"
bad_policy io-open io-open "io.open"
bad_policy os-execute os-execute "os.execute"
bad_policy load-binary load-binary "binary chunk"
bad_policy string-dump string-dump "string.dump"
bad_policy require-ffi require-ffi "require ffi"
bad_policy set-global set-global "global assignment"
bad_policy string-format string-format "string.format replaced"

t_begin "bad policies: --format json counts the policy errors"
run check --format json --policies "$FX/bad-policies" --config "$FX/bad-policies.yaml" "$EX/configmap.yaml"
rc_is 1
has_re out '"policy_errors":[[:space:]]*12'
json_valid "$T/out"
t_end

t_begin "isolation: a policy's writes to req and params do not leak"
{
    cat "$EX/configmap.yaml"
    echo "---"
    cat "$EX/configmap.yaml"
} >"$T/two-cm.yaml"
run check --policies "$FX/isolation-policies" --config "$FX/isolation.yaml" "$T/two-cm.yaml"
rc_is 1
count_is out "observe saw kind=ConfigMap" 2
lacks out "Hacked"
lacks out "n=2"
t_end

t_begin "deadline stops a backtracking string pattern"
run_t 15 check --policies "$FX/slow-policies" --config "$FX/slow-policies.yaml" "$EX/configmap.yaml"
rc_is 1
has_re out "^  deny  backtrack: policy error "
lacks out "pattern done"
t_end

t_begin "policy with a syntax error: exit 2 with file:line"
run check --policies "$FX/load-errors/syntax" "$EX/configmap.yaml"
rc_is 2
has_re err "load-errors/syntax/syntax\.lua:4:"
t_end

t_begin "policy file returning a non-table: exit 2 with file:line"
run check --policies "$FX/load-errors/nontable" "$EX/configmap.yaml"
rc_is 2
has err "nontable.lua"
has_re err "nontable\.lua:[0-9]+"
t_end

t_begin "two policies with one id: exit 2 with file:line"
run check --policies "$FX/load-errors/dup" "$EX/configmap.yaml"
rc_is 2
has err '"same"'
has_re err "(one|two)\.lua:[0-9]+"
t_end

t_begin "policy file looping while it loads: exit 2 in time"
run_t 10 check --policies "$FX/load-errors/loop" "$EX/configmap.yaml"
rc_is 2
has err "loop.lua"
t_end

t_begin "policies directory with no policy: exit 2"
mkdir -p "$T/no-policies"
run check --policies "$T/no-policies" "$EX/configmap.yaml"
rc_is 2
has err "no-policies"
t_end

# ---- YAML semantics that must match what the cluster sees ---------------------------------------

printf 'bindings:\n  - {id: privileged, policy: psp-privileged-containers}\n' >"$T/priv.yaml"
cat >"$T/merge.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: merge-key
  namespace: shop
spec:
  containers:
    - name: shell
      image: registry.example.com/tools/shell:1.0
      securityContext:
        privileged: true
        <<: {privileged: false}
EOF
t_begin "YAML merge key does not override an explicit key"
run check --config "$T/priv.yaml" "$T/merge.yaml"
rc_is 1
has out "DENIED  Pod/shop/merge-key"
t_end

cat >"$T/dupkey.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: dup-key
  namespace: shop
spec:
  containers:
    - name: shell
      image: registry.example.com/tools/shell:1.0
      securityContext:
        privileged: true
        privileged: false
EOF
t_begin "YAML duplicate mapping key: exit 2 with file:line like kubectl"
run check --config "$T/priv.yaml" "$T/dupkey.yaml"
rc_is 2
has_re err "dupkey\.yaml:12(:[0-9]+)?: "
t_end

printf '\357\273\277apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bom\n  namespace: shop\n' >"$T/bom.yaml"
t_begin "YAML with a UTF-8 byte order mark is read"
run check "$T/bom.yaml"
rc_is 0
has out "ConfigMap/shop/bom"
t_end

printf 'apiVersion: v1\r\nkind: ConfigMap\r\nmetadata:\r\n  name: crlf\r\n  namespace: shop\r\n' >"$T/crlf.yaml"
t_begin "YAML with CRLF line ends is read"
run check "$T/crlf.yaml"
rc_is 0
has out "ConfigMap/shop/crlf  "
t_end

# ---- 17: paved test -----------------------------------------------------------------------

# ---- the request subject (team and service) ----------------------------------------------

printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c1\n  namespace: shop\n' >"$T/subj-ns.yaml"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c2\n  namespace: other\n  labels: {owner: web, app: front}\n' >"$T/subj-labels.yaml"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c3\n  namespace: other\n' >"$T/subj-none.yaml"
t_begin "subject: team from the configured label, else the namespace map, else unknown"
run check --policies "$FX/subject-policies" --config "$FX/subject.yaml" \
    "$T/subj-ns.yaml" "$T/subj-labels.yaml" "$T/subj-none.yaml"
rc_is 0
has out "team=payments service=c1"
has out "team=web service=front"
has out "team=unknown service=c3"
t_end

printf 'subject: {namespaces: [shop]}\nbindings: []\n' >"$T/subj-bad.yaml"
t_begin "subject: a namespace map that is not a mapping is refused"
run check --config "$T/subj-bad.yaml" "$EX/configmap.yaml"
rc_is 2
has err "subject.namespaces"
t_end

t_begin "paved test: one passing, one failing case"
run test "$FX/cases/mixed.jsonl"
rc_is 1
has_re out "^FAIL cli:tag-latest-wrongly-expected-allow "
has out "mixed.jsonl:2"
has out "expected allow with 0 violations"
has out "got deny with 1 violations"
lacks out "cli:tag-pinned"
has_re out "^1 passed, 1 failed$"
t_end

t_begin "paved test: all cases pass"
run test "$FX/cases/pass.jsonl"
rc_is 0
has_re out "^2 passed, 0 failed$"
lacks out "FAIL"
t_end

t_begin "paved test -v prints passed cases too"
run test -v "$FX/cases/pass.jsonl"
rc_is 0
has out "cli:tag-pinned"
has out "cli:tag-latest"
t_end

t_begin "paved test: a line that is not JSON fails with file:line"
run test "$FX/cases/notjson.jsonl"
rc_is 1
has_re out "^FAIL .*notjson\.jsonl:2"
has_re out "^1 passed, 1 failed$"
t_end

t_begin "paved test: a directory of case files"
run test "$FX/cases"
rc_is 1
has_re out "^4 passed, 2 failed$"
t_end

t_begin "paved test --only selects cases by policy id"
run test --only 'disallowed-*' "$FX/cases/pass.jsonl"
rc_is 0
has_re out "^2 passed, 0 failed$"
t_end

t_begin "paved test: missing file: exit 2"
run test "$T/no-such-cases.jsonl"
rc_is 2
has err "no-such-cases.jsonl"
t_end

t_begin "paved test with bad --policies: exit 2"
run test --policies "$FX/load-errors/syntax" "$FX/cases/pass.jsonl"
rc_is 2
has_re err "syntax\.lua:4:"
t_end

# ---- 18: version, help, usage errors ----------------------------------------------------------

t_begin "paved version"
run version
rc_is 0
has_re out "^paved [0-9]+\.[0-9]+\.[0-9]+"
t_end

t_begin "paved --help"
run --help
rc_is 0
has out "usage: paved COMMAND"
has out "check"
t_end

t_begin "paved help"
run help
rc_is 0
has out "usage: paved COMMAND"
t_end

t_begin "paved check --help"
run check --help
rc_is 0
has out "usage: paved check"
has out "--format"
t_end

t_begin "paved test --help"
run test --help
rc_is 0
has out "usage: paved test"
has out "--only"
t_end

t_begin "unknown command: exit 2"
run frobnicate
rc_is 2
has err "frobnicate"
t_end

t_begin "no command: exit 2 with usage"
run
rc_is 2
has all "usage: paved"
t_end

t_begin "check without a path: exit 2"
run check
rc_is 2
has err "no PATH"
t_end

t_begin "check with an unknown option: exit 2"
run check --bogus-flag "$EX/configmap.yaml"
rc_is 2
has err "bogus-flag"
t_end

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
