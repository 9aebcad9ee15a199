#!/bin/sh
# tests/cli/creds.sh: black-box tests of `paved keys rotate|list|jwks|sign` and `paved
# creds issue`, with independent verifiers. Run from the repo root:
#   PAVED=build/paved sh tests/cli/creds.sh
# Tokens signed by `paved keys sign` are checked against the JWKS `paved keys jwks`
# prints with python3-jwt (PyJWT) and, separately, with `openssl dgst -verify` after
# the public key and the signature are rebuilt as DER by a few lines of plain Python
# (no crypto library), so neither paved's code nor one library vouches for itself.
# `paved creds issue` talks to a small Python HTTP server on loopback that records the
# request. Prints "ok - NAME" or "FAIL - NAME"; the last line is "N passed, N failed";
# exit status 1 when any failed. Checks that need PyJWT are skipped, with a message,
# when it is missing (Debian: python3-jwt). POSIX sh (dash); temporaries live in one
# mktemp -d directory removed on exit.
set -u

PAVED=${PAVED:-build/paved}
passed=0
failed=0

if [ ! -x "$PAVED" ]; then
    echo "FAIL - setup: $PAVED is not an executable (build it with make)"
    echo "0 passed, 1 failed"
    exit 1
fi
if ! command -v openssl >/dev/null 2>&1 || ! command -v python3 >/dev/null 2>&1; then
    echo "FAIL - setup: needs openssl and python3 (make deps-test)"
    echo "0 passed, 1 failed"
    exit 1
fi
# The first python3 that has PyJWT (a pyenv shim may shadow the Debian one).
PY=python3
PYJWT=""
for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import jwt' >/dev/null 2>&1; then
        PY=$p
        PYJWT=$p
        break
    fi
done

T=$(mktemp -d "${TMPDIR:-/tmp}/paved-creds-cli.XXXXXX") || exit 1
SRV_PID=""
trap '[ -n "$SRV_PID" ] && kill "$SRV_PID" 2>/dev/null; rm -rf "$T"' EXIT
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

skip() {
    echo "ok - $1 # SKIP $2"
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

# check_py NAME SCRIPT ARGS...: runs the Python SCRIPT (stdout in $T/py); passes when
# it exits 0.
check_py() {
    _name=$1
    _script=$2
    shift 2
    if timeout 60 "$PY" -c "$_script" "$@" >"$T/py" 2>&1; then
        pass "$_name"
    else
        failed=$((failed + 1))
        echo "FAIL - $_name"
        sed 's/^/    py: /' "$T/py" | head -n 20
    fi
}

mode_of() {
    stat -c %a "$1" 2>/dev/null
}

# The environment must not lend these commands a server or a token.
unset PAVED_SERVER PAVED_TOKEN
NOW=$(date +%s)
K="$T/keys"

# ---- rotate, list, jwks --------------------------------------------------------------

run keys rotate --dir "$K"
check "rotate: first key" 0
KID1=$(cat "$T/out")
if echo "$KID1" | grep -qE '^k-[0-9a-f]{16}$'; then
    pass "rotate: prints a kid k-<16 hex>"
else
    fail "rotate: prints a kid k-<16 hex>" "got '$KID1'"
fi
if [ "$(mode_of "$K")" = 700 ]; then pass "files: the directory is 0700"; else
    fail "files: the directory is 0700" "mode $(mode_of "$K")"; fi
if [ "$(mode_of "$K/$KID1.pem")" = 600 ]; then pass "files: the key is 0600"; else
    fail "files: the key is 0600" "mode $(mode_of "$K/$KID1.pem")"; fi
if grep -q "BEGIN PRIVATE KEY" "$K/$KID1.pem" &&
    openssl pkey -in "$K/$KID1.pem" -noout -text 2>/dev/null | grep -q "prime256v1"; then
    pass "files: the key is a PKCS #8 P-256 key"
else
    fail "files: the key is a PKCS #8 P-256 key" "openssl pkey disagrees"
fi
[ -f "$K/keys.json" ] && pass "files: keys.json" || fail "files: keys.json" "missing"

run keys list --dir "$K"
check "list: the key" 0 "$KID1"
check "list: it is current" 0 "yes"

run keys jwks --dir "$K"
check "jwks: prints the key" 0 "$KID1"
cp "$T/out" "$T/jwks1.json"
check_py "jwks: one public EC P-256 key, no private part" '
import json, sys
j = json.load(open(sys.argv[1]))
assert len(j["keys"]) == 1, j
k = j["keys"][0]
assert k["kty"] == "EC" and k["crv"] == "P-256" and k["alg"] == "ES256" and k["use"] == "sig", k
assert k["kid"] == sys.argv[2], k
assert "d" not in k, k
' "$T/jwks1.json" "$KID1"

# ---- sign, verified by others ----------------------------------------------------------

EXP=$((NOW + 300))
printf '{"iss":"paved","aud":"relying-party","sub":"svc:checkout","exp":%s,"iat":%s}\n' \
    "$EXP" "$NOW" >"$T/claims.json"
run keys sign --dir "$K" --claims "$T/claims.json"
check "sign: prints a token" 0 "."
cp "$T/out" "$T/token1"
if [ "$(tr -cd . <"$T/token1" | wc -c)" -eq 2 ]; then pass "sign: three parts"; else
    fail "sign: three parts" "$(cat "$T/token1")"; fi

if [ -n "$PYJWT" ]; then
    check_py "pyjwt: the token verifies with the JWKS" '
import json, sys, jwt
token = open(sys.argv[1]).read().strip()
jwks = json.load(open(sys.argv[2]))
key = jwt.PyJWK(jwks["keys"][0]).key
c = jwt.decode(token, key=key, algorithms=["ES256"], audience="relying-party", issuer="paved")
assert c["sub"] == "svc:checkout", c
h = jwt.get_unverified_header(token)
assert h == {"alg": "ES256", "typ": "JWT", "kid": sys.argv[3]}, h
' "$T/token1" "$T/jwks1.json" "$KID1"
    check_py "pyjwt: and not for another audience" '
import json, sys, jwt
token = open(sys.argv[1]).read().strip()
key = jwt.PyJWK(json.load(open(sys.argv[2]))["keys"][0]).key
try:
    jwt.decode(token, key=key, algorithms=["ES256"], audience="someone-else")
except jwt.InvalidAudienceError:
    sys.exit(0)
sys.exit(1)
' "$T/token1" "$T/jwks1.json"
else
    skip "pyjwt: the token verifies with the JWKS" "python3-jwt is not installed"
    skip "pyjwt: and not for another audience" "python3-jwt is not installed"
fi

# openssl: the JWK as an SPKI PEM (fixed P-256 prefix + 04||x||y) and r||s as a DER
# ECDSA-Sig-Value, built by hand.
check_py "openssl: rebuild the public key and the DER signature" '
import base64, json, sys
def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
token = open(sys.argv[1]).read().strip()
k = json.load(open(sys.argv[2]))["keys"][0]
spki = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200") + b"\x04" + b64d(k["x"]) + b64d(k["y"])
pem = "-----BEGIN PUBLIC KEY-----\n" + base64.encodebytes(spki).decode() + "-----END PUBLIC KEY-----\n"
open(sys.argv[3] + "/pub.pem", "w").write(pem)
h, p, s = token.split(".")
open(sys.argv[3] + "/input", "wb").write((h + "." + p).encode())
sig = b64d(s)
assert len(sig) == 64, len(sig)
def der_int(b):
    b = b.lstrip(b"\x00") or b"\x00"
    if b[0] & 0x80:
        b = b"\x00" + b
    return b"\x02" + bytes([len(b)]) + b
body = der_int(sig[:32]) + der_int(sig[32:])
open(sys.argv[3] + "/sig.der", "wb").write(b"\x30" + bytes([len(body)]) + body)
' "$T/token1" "$T/jwks1.json" "$T"
if openssl dgst -sha256 -verify "$T/pub.pem" -signature "$T/sig.der" "$T/input" >"$T/out" 2>"$T/err"; then
    rc=0
else
    rc=1
fi
check "openssl: dgst -verify says Verified OK" 0 "Verified OK"
printf 'x' >>"$T/input"
if openssl dgst -sha256 -verify "$T/pub.pem" -signature "$T/sig.der" "$T/input" >"$T/out" 2>"$T/err"; then
    rc=0
else
    rc=1
fi
check "openssl: and fails on a changed input" 1

# ---- rotation ------------------------------------------------------------------------

run keys rotate --dir "$K" --max-ttl 30m
check "rotate: second key" 0
KID2=$(cat "$T/out")
[ "$KID2" != "$KID1" ] && pass "rotate: a new kid" || fail "rotate: a new kid" "$KID2"
run keys list --dir "$K"
check "list: two keys" 0 "$KID2"
if grep "$KID2" "$T/out" | grep -q yes && ! grep "$KID1" "$T/out" | grep -q yes; then
    pass "list: the new key is current, the old one is not"
else
    fail "list: the new key is current, the old one is not" "see the table"
fi
check_py "rotate: the old key is published 30m + 10m after it was retired" '
import json, sys
keys = {k["kid"]: k for k in json.load(open(sys.argv[1]))["keys"]}
old, new = keys[sys.argv[2]], keys[sys.argv[3]]
assert old["retired_ms"] is not None, old
assert old["publish_until_ms"] - old["retired_ms"] == 40 * 60 * 1000, old
assert new["retired_ms"] is None and new["publish_until_ms"] is None, new
' "$K/keys.json" "$KID1" "$KID2"
run keys jwks --dir "$K"
cp "$T/out" "$T/jwks2.json"
check_py "jwks: both keys, the current one first" '
import json, sys
ks = json.load(open(sys.argv[1]))["keys"]
assert [k["kid"] for k in ks] == [sys.argv[3], sys.argv[2]], ks
' "$T/jwks2.json" "$KID1" "$KID2"
run keys sign --dir "$K" --claims "$T/claims.json"
cp "$T/out" "$T/token2"
if [ -n "$PYJWT" ]; then
    check_py "pyjwt: old and new tokens verify with the new JWKS, by kid" '
import json, sys, jwt
jwks = jwt.PyJWKSet.from_dict(json.load(open(sys.argv[1])))
for path, kid in ((sys.argv[2], sys.argv[4]), (sys.argv[3], sys.argv[5])):
    token = open(path).read().strip()
    h = jwt.get_unverified_header(token)
    assert h["kid"] == kid, (h, kid)
    key = [k for k in jwks.keys if k.key_id == h["kid"]][0].key
    jwt.decode(token, key=key, algorithms=["ES256"], audience="relying-party")
' "$T/jwks2.json" "$T/token1" "$T/token2" "$KID1" "$KID2"
else
    skip "pyjwt: old and new tokens verify with the new JWKS, by kid" "python3-jwt is not installed"
fi

# --config: keys_dir and max_ttl come from paved.yaml.
cat >"$T/paved.yaml" <<EOF
bindings: []
credentials:
  keys_dir: $T/cfgkeys
  max_ttl: 15m
EOF
run keys rotate --config "$T/paved.yaml"
check "config: rotate in credentials.keys_dir" 0
run keys rotate --config "$T/paved.yaml"
check_py "config: credentials.max_ttl sets the overlap (15m + 10m)" '
import json, sys
ks = json.load(open(sys.argv[1]))["keys"]
assert len(ks) == 2, ks
assert ks[0]["publish_until_ms"] - ks[0]["retired_ms"] == 25 * 60 * 1000, ks
' "$T/cfgkeys/keys.json"
run keys list --config "$T/paved.yaml"
check "config: list" 0 "yes"

# ---- errors and usage ----------------------------------------------------------------

run keys list --dir "$T/empty"
check "errors: list with no keys" 1 "no signing keys" "$T/err"
check "errors: says how to make one" 1 "paved keys rotate" "$T/err"
run keys jwks --dir "$T/empty"
check "errors: jwks with no keys" 1 "no signing keys" "$T/err"
echo '[1,2]' >"$T/array.json"
run keys sign --dir "$K" --claims "$T/array.json"
check "errors: claims that are not an object" 1 "not a JSON object" "$T/err"
echo '{"iss":"paved"}' >"$T/noexp.json"
run keys sign --dir "$K" --claims "$T/noexp.json"
check "sign: warns about a missing exp" 0 "no exp" "$T/err"
run keys sign --dir "$K"
check "usage: sign needs --claims" 2 "--claims" "$T/err"
run keys rotate --dir "$K" --max-ttl 2d
check "usage: --max-ttl over 24h" 2 "--max-ttl" "$T/err"
run keys rotate --dir "$K" --config "$T/paved.yaml"
check "usage: --dir and --config" 2 "not both" "$T/err"
run keys frob
check "usage: an unknown subcommand" 2 "unknown command" "$T/err"
run keys list --frob
check "usage: an unknown option" 2 "unknown option" "$T/err"
echo garbage >"$T/bad.yaml"
run keys rotate --config "$T/bad.yaml"
check "errors: a bad config" 1 "" "$T/err"
for sub in rotate list jwks sign; do
    run keys $sub --help
    check "help: keys $sub" 0 "usage: paved keys $sub"
done
run keys --help
check "help: keys" 0 "commands:"

# A key file someone replaced with garbage is an error naming it, not a crash.
cp -r "$K" "$T/broken"
echo "not a key" >"$T/broken/$KID2.pem"
run keys jwks --dir "$T/broken"
check "errors: a corrupt key file is named" 1 "$KID2.pem" "$T/err"

# ---- creds issue -----------------------------------------------------------------------

run creds issue --help
check "help: creds issue" 0 "usage: paved creds issue"
run creds --help
check "help: creds" 0 "issue"
run creds issue --server http://127.0.0.1:1 --insecure-http --scope s
check "usage: creds issue needs --audience" 2 "--audience" "$T/err"
run creds issue --server http://127.0.0.1:1 --insecure-http --audience a
check "usage: creds issue needs a --scope" 2 "--scope" "$T/err"
run creds issue --server http://127.0.0.1:1 --insecure-http --audience a --scope s --ttl 2d
check "usage: --ttl over 24h" 2 "--ttl" "$T/err"
printf '  eyJhbGciOiJSUzI1NiJ9.e30.c2ln \n' >"$T/idtoken"
run creds issue --server http://127.0.0.1:1 --insecure-http --audience a --scope s \
    --id-token "$T/idtoken" --token abc
check "usage: --id-token and --token" 2 "not both" "$T/err"
run creds issue --server https://127.0.0.1:1 --audience a --scope s --id-token "$T/missing"
check "errors: a missing --id-token file" 2 "--id-token" "$T/err"
: >"$T/emptytoken"
run creds issue --server https://127.0.0.1:1 --audience a --scope s --id-token "$T/emptytoken"
check "errors: an empty --id-token file" 2 "empty" "$T/err"
run creds issue --server http://127.0.0.1:1 --audience a --scope s --id-token "$T/idtoken"
check "usage: http:// without --insecure-http" 2 "insecure-http" "$T/err"
run creds issue --server http://127.0.0.1:1 --insecure-http --audience a --scope s \
    --id-token "$T/idtoken" --timeout 5s
check "errors: a server that is not there" 2 "127.0.0.1" "$T/err"

# A fake paved server: records each request, answers with a token (or 403 for the
# audience "denied").
cat >"$T/server.py" <<'EOF'
import json, sys, http.server
out = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with open(out, "a") as f:
            f.write(json.dumps({"path": self.path, "auth": self.headers.get("Authorization"),
                                "body": json.loads(body)}) + "\n")
        req = json.loads(body)
        if req.get("audience") == "denied":
            code, ans = 403, {"error": "policy credential-scopes: scope deploy:prod is not allowed"}
        else:
            code, ans = 200, {"token": "eyJ.minted.token", "expires_at": "2026-12-04T10:15:00Z",
                              "jti": "cred-1", "scopes": req.get("scopes")}
        data = json.dumps(ans).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[2], "w").write(str(s.server_address[1]))
s.timeout = 1
for _ in range(120):
    s.handle_request()
EOF
"$PY" "$T/server.py" "$T/requests" "$T/port" >/dev/null 2>&1 &
SRV_PID=$!
i=0
while [ ! -s "$T/port" ] && [ $i -lt 50 ]; do
    sleep 0.1
    i=$((i + 1))
done
URL="http://127.0.0.1:$(cat "$T/port" 2>/dev/null)"

run creds issue --server "$URL" --insecure-http --audience artifacts --scope read:packages \
    --scope write:packages --ttl 15m --id-token "$T/idtoken"
check "creds issue: prints the token alone" 0 "eyJ.minted.token"
if [ "$(cat "$T/out")" = "eyJ.minted.token" ]; then pass "creds issue: nothing else on stdout"; else
    fail "creds issue: nothing else on stdout" "extra output"; fi
check_py "creds issue: the request body, and no API token with --id-token" '
import json, sys
r = json.loads(open(sys.argv[1]).read().splitlines()[-1])
assert r["path"] == "/v1/credentials", r
assert r["auth"] is None, r
assert r["body"] == {"id_token": "eyJhbGciOiJSUzI1NiJ9.e30.c2ln", "audience": "artifacts",
                     "scopes": ["read:packages", "write:packages"], "ttl": "15m"}, r
' "$T/requests"

export PAVED_TOKEN=api-token-1
run creds issue --server "$URL" --insecure-http --audience deploy-api --scope deploy:staging \
    --team payments --service checkout --format json
unset PAVED_TOKEN
check "creds issue: --format json prints the answer" 0 "\"jti\":"
check_py "creds issue: an API token is sent as bearer, no id_token or ttl" '
import json, sys
r = json.loads(open(sys.argv[1]).read().splitlines()[-1])
assert r["auth"] == "Bearer api-token-1", r
assert r["body"] == {"audience": "deploy-api", "team": "payments", "service": "checkout",
                     "scopes": ["deploy:staging"]}, r
' "$T/requests"

run creds issue --server "$URL" --insecure-http --audience denied --scope deploy:prod --token t \
    --team payments --service checkout
check "creds issue: a refusal exits 1 with the server's reason" 1 "scope deploy:prod is not allowed" "$T/err"

run creds issue --server "$URL" --insecure-http --audience a --scope s --team t --service s
check "usage: no identity at all" 2 "no API token" "$T/err"
run creds issue --server "$URL" --insecure-http --audience a --scope s --token t
check "usage: an API token needs --team and --service" 2 "--team and --service" "$T/err"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
