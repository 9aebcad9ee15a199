#!/usr/bin/env python3
"""tests/integration/platform.py: short-lived credentials, quotas and cost against the
real server (issue 5).

Starts `paved serve` over HTTPS with a temporary SQLite store and a config that trusts
one upstream OIDC issuer whose JWKS is served by a real local HTTPS server in this
process (certificates from `paved certs`), grants payments a vault credential, and sets
quotas and a price table. Upstream tokens are minted here with PyJWT (Debian
python3-jwt) from keys made here (python3-cryptography); paved's tokens are checked by
the same independent verifier against the JWKS the server publishes.

Run:  PAVED=build/paved /usr/bin/python3 tests/integration/platform.py [PATTERN]
Prints "ok - NAME" / "FAIL - NAME" and last "N passed, N failed".
"""

import base64
import hashlib
import http.server
import json
import os
import shutil
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as it  # noqa: E402

try:
    import jwt  # PyJWT
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
except ImportError as e:  # pragma: no cover
    print("FAIL - setup: needs python3-jwt and python3-cryptography (make deps-test): %s" % e)
    print("0 passed, 1 failed")
    sys.exit(1)

ROOT = it.ROOT
ISSUER = "https://ci.example.test"
PAVED_ISS = "https://paved.test"
WATCHDOG_S = 240
TOKENS = {"ci": ("ci", "tok-ci-plat-11"), "dash": ("reader", "tok-dash-plat-22"),
          "root": ("admin", "tok-root-plat-33"), "cipay": ("ci", "tok-cipay-plat-44")}
TOKEN_TEAMS = {"cipay": ["payments"]}


def auth(name):
    return {"Authorization": "Bearer " + TOKENS[name][1]}


# ---------------------------------------------------------------------------------
# The upstream identity provider: keys and a JWKS over HTTPS


def b64u_fixed(n, size):
    return base64.urlsafe_b64encode(n.to_bytes(size, "big")).rstrip(b"=").decode()


def b64u_int(n):
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class IdP:
    def __init__(self, certs):
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.mode = "ok"  # ok | garbage
        self.fetches = 0
        self.port = it.free_port()
        self.certs = certs
        self.httpd = None

    def jwks(self):
        rn = self.rsa.public_key().public_numbers()
        en = self.ec.public_key().public_numbers()
        return {"keys": [
            {"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256", "n": b64u_int(rn.n),
             "e": b64u_int(rn.e)},
            {"kty": "EC", "kid": "ec-1", "use": "sig", "alg": "ES256", "crv": "P-256",
             "x": b64u_fixed(en.x, 32), "y": b64u_fixed(en.y, 32)}]}

    def start(self):
        idp = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                idp.fetches += 1
                body = b"{not json" if idp.mode == "garbage" else json.dumps(idp.jwks()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer((it.HOST, self.port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(self.certs / "tls.crt"), str(self.certs / "tls.key"))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def token(self, alg="RS256", kid=None, **over):
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": "paved", "sub": "repo:acme-payments/checkout:ref:main",
                  "repository_owner": "acme-payments", "repository_name": "checkout",
                  "iat": now, "nbf": now, "exp": now + 300}
        claims.update(over)
        claims = {k: v for k, v in claims.items() if v is not None}
        key = self.rsa if alg == "RS256" else self.ec
        return jwt.encode(claims, key, algorithm=alg,
                          headers={"kid": kid or ("rsa-1" if alg == "RS256" else "ec-1")})


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


# ---------------------------------------------------------------------------------


def write_config(tmp, idp_port, certs):
    default = (ROOT / "policies" / "default.yaml").read_text("utf-8")
    default = default.replace(
        "      grants: []",
        '      grants: [{teams: [payments], audiences: [vault], scopes: ["db:payments:*"], '
        "max_ttl_s: 900}]")
    lines = [default.rstrip("\n"), "",
             "server:", "  connection_timeout_s: 5",
             "credentials:", "  issuer: %s" % PAVED_ISS, "  max_ttl: 10m", "  leeway: 30s",
             "  jwks_cache: 5m", "  oidc:",
             "    - issuer: %s" % ISSUER,
             "      jwks_url: https://%s:%d/jwks" % (it.HOST, idp_port),
             "      audience: paved", "      cacert: %s" % (certs / "ca.crt"),
             "      team_claim: repository_owner", "      service_claim: repository_name",
             "      teams: {acme-payments: payments, acme-search: search}",
             "quotas:",
             "  - {team: payments, cpu: 2, memory: 8Gi, monthly_cost: 1000}",
             "  - {team: race, cpu: 1}",
             "  - {team: \"*\", cpu: 4}",
             "prices: {currency: EUR, cpu_hour: 0.04, memory_gib_hour: 0.005, "
             "storage_gib_month: 0.1, environment_month: 50, hours_per_month: 730}",
             "tokens:"]
    for name, (role, secret) in TOKENS.items():
        teams = ", teams: [%s]" % ", ".join(TOKEN_TEAMS[name]) if name in TOKEN_TEAMS else ""
        lines.append("  - {name: %s, role: %s, sha256: %s%s}" %
                     (name, role, hashlib.sha256(secret.encode()).hexdigest(), teams))
    p = tmp / "paved.yaml"
    p.write_text("\n".join(lines) + "\n")
    return p


def post(srv, path, body, headers=None):
    return srv.request("POST", path, json.dumps(body).encode(), headers or {})


def issue(srv, body, headers=None):
    r = post(srv, "/v1/credentials", body, headers)
    return r, (r.json or {})


def published_key(srv, kid):
    jwks = srv.request("GET", "/.well-known/jwks.json").json
    for k in jwks.get("keys", []):
        if k.get("kid") == kid:
            return jwt.PyJWK(k).key
    return None


def verify_paved(srv, token, audience="vault"):
    """The independent verifier: PyJWT with the JWKS the server publishes."""
    kid = jwt.get_unverified_header(token).get("kid")
    key = published_key(srv, kid)
    if key is None:
        raise ValueError("kid %s is not published" % kid)
    return jwt.decode(token, key=key, algorithms=["ES256"], audience=audience, issuer=PAVED_ISS)


def deployment(name, team, replicas, cpu="500m", memory="256Mi", namespace="shop"):
    """The golden example Deployment, renamed, for 'team', with these requests."""
    import copy
    doc = it.load_example_review("review-golden.json")
    obj = copy.deepcopy(doc["request"]["object"])
    md = obj["metadata"]
    md["name"], md["namespace"] = name, namespace
    for labels in (md["labels"], obj["spec"]["template"]["metadata"]["labels"]):
        labels.update({"team": team, "service": name, "app.kubernetes.io/name": name,
                       "cost-center": "cc-7"})
    obj["spec"]["selector"] = {"matchLabels": {"app.kubernetes.io/name": name}}
    obj["spec"]["replicas"] = replicas
    for c in obj["spec"]["template"]["spec"]["containers"]:
        c["resources"]["requests"] = {"cpu": cpu, "memory": memory}
    return obj


def review(uid, obj, operation="CREATE", old=None):
    req = {"uid": uid, "kind": {"group": "apps", "version": "v1", "kind": obj["kind"]},
           "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
           "name": obj["metadata"]["name"], "namespace": obj["metadata"]["namespace"],
           "operation": operation, "userInfo": {"username": "alice"}}
    if operation == "DELETE":
        req["oldObject"] = obj
    else:
        req["object"] = obj
        if old is not None:
            req["oldObject"] = old
    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                       "request": req}).encode()


def validate(srv, uid, obj, **kw):
    r = srv.request("POST", "/k8s/validate", review(uid, obj, **kw))
    return (r.json or {}).get("response", {})


def db_rows(db, sql, args=()):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


# ---------------------------------------------------------------------------------


def check_credentials(srv, idp, res, ctx):
    name = "creds: an RS256 CI token becomes a paved ES256 token that an independent verifier accepts"
    r, a = issue(srv, {"id_token": idp.token(), "audience": "vault",
                       "scopes": ["db:payments:read", "db:billing:write"], "ttl": "1h"})
    why = []
    claims = {}
    try:
        claims = verify_paved(srv, a.get("token", ""))
    except Exception as e:  # noqa: BLE001
        why.append("verify: %s: %s" % (type(e).__name__, e))
    if r.status != 201:
        why.append("%d %s" % (r.status, it.clip(r.body)))
    elif claims:
        if claims.get("team") != "payments" or claims.get("service") != "checkout":
            why.append("subject: %r" % claims)
        if claims.get("scope") != "db:payments:read":
            why.append("the policy should have dropped db:billing:write: %r" % claims.get("scope"))
        if claims["exp"] - claims["iat"] != 600:
            why.append("lifetime %d, want 600 (credentials.max_ttl caps the grant's 900)" %
                       (claims["exp"] - claims["iat"]))
        if claims.get("paved_decision_id") != a.get("decision_id") or not claims.get("jti"):
            why.append("jti/decision: %r %r" % (claims, a.get("decision_id")))
        ctx["first"] = (a.get("token"), claims)
    res.check(name, why)

    name = "creds: an ES256 upstream token verifies too; the signature also checks with openssl"
    r, a = issue(srv, {"id_token": idp.token("ES256"), "audience": "vault",
                       "scopes": ["db:payments:write"], "ttl": "5m"})
    why = []
    if r.status != 201:
        why.append("%d %s" % (r.status, it.clip(r.body)))
    else:
        tok = a["token"]
        head, payload, sig = tok.split(".")
        raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"),
                                   int.from_bytes(raw[32:], "big"))
        key = published_key(srv, jwt.get_unverified_header(tok)["kid"])
        pem = key.public_bytes(serialization.Encoding.PEM,
                               serialization.PublicFormat.SubjectPublicKeyInfo)
        (ctx["tmp"] / "pub.pem").write_bytes(pem)
        (ctx["tmp"] / "sig.der").write_bytes(der)
        (ctx["tmp"] / "input").write_bytes(("%s.%s" % (head, payload)).encode())
        p = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(ctx["tmp"] / "pub.pem"),
                            "-signature", str(ctx["tmp"] / "sig.der"), str(ctx["tmp"] / "input")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        if p.returncode != 0 or b"Verified OK" not in p.stdout:
            why.append("openssl: %s %s" % (p.stdout, p.stderr))
    res.check(name, why)

    now = int(time.time())
    # HS256 "signed" with the RSA public key as the HMAC secret (the classic confusion).
    import hmac as hmac_mod
    pub_pem = idp.rsa.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    hs_head = b64u(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
    hs_body = b64u(json.dumps({"iss": ISSUER, "aud": "paved", "sub": "x", "exp": now + 300,
                               "repository_owner": "acme-payments",
                               "repository_name": "checkout"}).encode())
    hs_sig = b64u(hmac_mod.new(pub_pem, ("%s.%s" % (hs_head, hs_body)).encode(),
                               hashlib.sha256).digest())
    hs = "%s.%s.%s" % (hs_head, hs_body, hs_sig)
    good = idp.token()
    h, p, s = good.split(".")
    none_head = b64u(json.dumps({"alg": "none", "typ": "JWT", "kid": "rsa-1"}).encode())
    tampered = "%s.%s.%s" % (h, b64u(json.dumps(dict(jwt.decode(
        good, options={"verify_signature": False}), repository_owner="acme-search")).encode()), s)
    refusals = [
        ("expired", idp.token(exp=now - 3600, iat=now - 7200, nbf=now - 7200), b"expired"),
        ("not yet valid", idp.token(nbf=now + 3600), b"not"),
        ("wrong audience", idp.token(aud="someone-else"), b"audience"),
        ("wrong issuer", idp.token(iss="https://evil.example"), b"issuer"),
        ("unknown kid", idp.token(kid="rsa-9"), b"kid"),
        ("bad signature", tampered, b"signature"),
        ("alg none", "%s.%s." % (none_head, p), b"none"),
        ("HS256 signed with the public key", hs, b"HS256"),
        ("malformed", "not.a.jwt.at-all", b"malformed"),
        ("a team not in the mapping", idp.token(repository_owner="acme-evil"), b"repository_owner"),
    ]
    for what, tok, text in refusals:
        name = "creds: refused, with a clear reason: %s" % what
        r, a = issue(srv, {"id_token": tok, "audience": "vault", "scopes": ["db:payments:read"]})
        res.check(name, [] if r.status == 401 and text.lower() in r.body.lower() and
                  a.get("decision_id") else ["%d %s" % (r.status, it.clip(r.body))])

    name = "creds: the policy denies a credential no grant gives (403, recorded)"
    r, a = issue(srv, {"id_token": idp.token(), "audience": "s3", "scopes": ["bucket:x"]})
    res.check(name, [] if r.status == 403 and a.get("decision_id") and b"no grant" in r.body
              else ["%d %s" % (r.status, it.clip(r.body))])

    name = "creds: an API token (ci role) with team and service; a reader token is refused"
    r, a = issue(srv, {"audience": "vault", "scopes": ["db:payments:read"], "team": "payments",
                       "service": "checkout"}, auth("ci"))
    r2, _ = issue(srv, {"audience": "vault", "scopes": ["db:payments:read"], "team": "payments",
                        "service": "checkout"}, auth("dash"))
    ok = r.status == 201
    try:
        verify_paved(srv, a.get("token", ""))
    except Exception:  # noqa: BLE001
        ok = False
    res.check(name, [] if ok and r2.status == 403 else ["ci %d %s; reader %d" %
                                                          (r.status, it.clip(r.body), r2.status)])

    name = "creds: a token with teams: acts only for those teams"
    body = {"audience": "vault", "scopes": ["db:payments:read"], "service": "checkout"}
    r1, _ = issue(srv, dict(body, team="payments"), auth("cipay"))
    r2, a2 = issue(srv, dict(body, team="search"), auth("cipay"))
    res.check(name, [] if r1.status == 201 and r2.status == 403 and b"may not act" in r2.body and
              a2.get("decision_id") else ["payments %d; search %d %s" % (r1.status, r2.status,
                                                                          it.clip(r2.body))])

    name = "creds: malformed requests answer 400"
    bad = [{"audience": "vault"}, {"scopes": ["a"], "audience": ""}, {"audience": "vault",
           "scopes": ["a b"]}, {"audience": "vault", "scopes": ["a"], "ttl": "forever"},
           {"audience": "vault", "scopes": ["a"], "colour": 1}]
    got = [post(srv, "/v1/credentials", b, auth("ci")).status for b in bad]
    got.append(srv.request("POST", "/v1/credentials", b"{nope", auth("ci")).status)
    res.check(name, [] if all(g == 400 for g in got) else ["statuses %r" % got])

    name = "creds: the JWKS endpoint returning garbage or down is a clear refusal, not a crash"
    # A new issuer entry is not possible at run time; the cached JWKS is fresh, so make the
    # server refetch with an unknown kid (rate-limited: once per 10 s per issuer).
    idp.mode = "garbage"
    r1, _ = issue(srv, {"id_token": idp.token(kid="rsa-new"), "audience": "vault",
                        "scopes": ["db:payments:read"]})
    idp.mode = "ok"
    idp.stop()
    time.sleep(10.5)
    r2, _ = issue(srv, {"id_token": idp.token(kid="rsa-newer"), "audience": "vault",
                        "scopes": ["db:payments:read"]})
    r3, _ = issue(srv, {"id_token": idp.token(), "audience": "vault",
                        "scopes": ["db:payments:read"]})
    healthy = srv.request("GET", "/healthz").status == 200
    res.check(name, [] if r1.status == 401 and r2.status == 401 and r3.status == 201 and healthy
              else ["garbage %d %s; down %d %s; cached key while down %d; healthy %s" %
                    (r1.status, it.clip(r1.body, 200), r2.status, it.clip(r2.body, 200),
                     r3.status, healthy)])

    name = "creds: paved keys rotate: new tokens use the new key, the old one stays published"
    old_token, old_claims = ctx.get("first", (None, None))
    old_kid = jwt.get_unverified_header(old_token)["kid"] if old_token else None
    rc, out, err = it.run_paved(ctx["paved"], ["keys", "rotate", "--dir", str(ctx["tmp"] / "keys"),
                                               "--max-ttl", "10m"])
    r, a = issue(srv, {"audience": "vault", "scopes": ["db:payments:read"], "team": "payments",
                       "service": "checkout"}, auth("ci"))
    why = []
    if rc != 0:
        why.append("rotate: %d %s %s" % (rc, out, err))
    new_kid = jwt.get_unverified_header(a["token"])["kid"] if r.status == 201 else None
    if new_kid is None or new_kid == old_kid:
        why.append("kid after rotation: %r (before %r)" % (new_kid, old_kid))
    try:
        verify_paved(srv, old_token)
        verify_paved(srv, a.get("token", ""))
    except Exception as e:  # noqa: BLE001
        why.append("verify after rotation: %s" % e)
    res.check(name, why)

    name = "creds: every issuance and refusal is in paved audit query; never the token"
    rc, out, err = it.run_paved(ctx["paved"], ["audit", "query", "--db", str(srv.db), "--format",
                                               "json", "--limit", "1000"])
    try:
        rows = [x for x in json.loads(out) if x.get("kind") == "credential"]
    except ValueError:
        rows = []
    allowed = [x for x in rows if x["decision"] == "allow"]
    denied = [x for x in rows if x["decision"] == "deny"]
    dump = json.dumps(rows)
    why = []
    if len(allowed) < 4 or len(denied) < 12:
        why.append("allowed %d denied %d" % (len(allowed), len(denied)))
    if ctx.get("first") and ctx["first"][0].split(".")[2] in dump:
        why.append("a token's signature is in the audit log")
    jtis = set(r[0] for r in db_rows(srv.db, "SELECT jti FROM credentials"))
    want = set((x.get("details") or {}).get("credential", {}).get("jti") for x in allowed)
    if not want or want - jtis:
        why.append("credentials table misses %r" % (want - jtis))
    res.check(name, why)


def check_quotas(srv, res, ctx):
    name = "quota: a deployment that would pass the team's cpu is denied with the numbers"
    a = validate(srv, "q-1", deployment("api", "payments", 2))             # 1000m
    b = validate(srv, "q-2", deployment("worker", "payments", 3))          # +1500m > 2000m
    msg = b.get("status", {}).get("message", "")
    res.check(name, [] if a.get("allowed") and b.get("allowed") is False and
              "team payments would use 2.5 of 2 cpu" in msg
              else ["first %r, second %r %r" % (a.get("allowed"), b.get("allowed"), msg)])

    name = "quota: UPDATE charges the difference (3 -> 2 replicas frees 500m)"
    u = validate(srv, "q-3", deployment("api", "payments", 1), operation="UPDATE",
                 old=deployment("api", "payments", 2))
    w = validate(srv, "q-4", deployment("worker", "payments", 3))          # 500 + 1500 = 2000
    rows = dict(db_rows(srv.db, "SELECT key, cpu_millis FROM ledger WHERE team = 'payments'"))
    res.check(name, [] if u.get("allowed") and w.get("allowed") and
              rows == {"Deployment/shop/api": 500, "Deployment/shop/worker": 1500}
              else ["update %r worker %r ledger %r" % (u.get("allowed"), w.get("allowed"), rows)])

    name = "quota: DELETE releases what the object held"
    d = validate(srv, "q-5", deployment("worker", "payments", 3), operation="DELETE")
    x = validate(srv, "q-6", deployment("batch", "payments", 3))           # fits again
    rows = dict(db_rows(srv.db, "SELECT key, cpu_millis FROM ledger WHERE team = 'payments'"))
    res.check(name, [] if d.get("allowed") and x.get("allowed") and
              "Deployment/shop/worker" not in rows and rows.get("Deployment/shop/batch") == 1500
              else ["delete %r then %r ledger %r" % (d.get("allowed"), x.get("allowed"), rows)])

    name = "quota: 16 concurrent requests race for the last unit: exactly one wins"
    results = []
    lock = threading.Lock()

    def one(i):
        resp = validate(srv, "race-%d" % i, deployment("r%d" % i, "race", 2))  # 1000m each
        with lock:
            results.append(resp.get("allowed"))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    held = db_rows(srv.db, "SELECT count(*), coalesce(sum(cpu_millis), 0) FROM ledger "
                           "WHERE team = 'race'")[0]
    res.check(name, [] if results.count(True) == 1 and results.count(False) == 15 and
              tuple(held) == (1, 1000)
              else ["allowed %d denied %d ledger %r" % (results.count(True),
                                                        results.count(False), held)])

    name = "quota: dry runs are checked but never charged"
    doc = json.loads(review("q-dry", deployment("dry", "dryteam", 1)))
    doc["request"]["dryRun"] = True
    r = srv.request("POST", "/k8s/validate", json.dumps(doc).encode())
    rows = dict(db_rows(srv.db, "SELECT key, cpu_millis FROM ledger"))
    res.check(name, [] if (r.json or {}).get("response", {}).get("allowed") and
              "Deployment/shop/dry" not in rows else ["%s ledger %r" % (it.clip(r.body), rows)])

    name = "quota: paved quota show and GET /v1/quotas/TEAM agree with the ledger"
    env = dict(os.environ, PAVED_TOKEN=TOKENS["dash"][1])
    p = subprocess.run([str(ctx["paved"]), "quota", "show", "payments", "--server",
                        "https://%s:%d" % (it.HOST, srv.port), "--cacert",
                        str(srv.certs / "ca.crt"), "--format", "json"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env, timeout=30)
    t = subprocess.run([str(ctx["paved"]), "quota", "show", "payments", "--server",
                        "https://%s:%d" % (it.HOST, srv.port), "--cacert",
                        str(srv.certs / "ca.crt")], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env, timeout=30)
    try:
        q = json.loads(p.stdout)
    except ValueError:
        q = {}
    res.check(name, [] if p.returncode == 0 and q.get("used", {}).get("cpu_millis") == 2000 and
              q.get("limits", {}).get("cpu_millis") == 2000 and
              q.get("remaining", {}).get("cpu_millis") == 0 and t.returncode == 0 and
              b"cpu" in t.stdout
              else ["%d %s %s" % (p.returncode, it.clip(p.stdout), it.clip(p.stderr))])



def check_costs(srv, res, ctx):
    name = "cost: exact monthly figures for known inputs (api 1 x 500m/256Mi, batch 3 x same)"
    # 0.5 cpu x 0.04 x 730 = 14.6; 0.25 GiB x 0.005 x 730 = 0.9125; one pod = 15.5125
    want = {"Deployment/shop/api": 15.5125, "Deployment/shop/batch": 46.5375}
    got = dict(db_rows(srv.db, "SELECT key, monthly_cost FROM ledger WHERE team = 'payments'"))
    r = srv.request("GET", "/v1/costs?team=payments&group_by=service", None, auth("dash"))
    cur = {x["service"]: x["monthly_cost"] for x in (r.json or {}).get("current", [])}
    why = []
    for k, v in want.items():
        if abs(got.get(k, -1) - v) > 1e-9:
            why.append("%s: %r, want %r" % (k, got.get(k), v))
    if abs(cur.get("payments/api", -1) - 15.5125) > 1e-9 or \
            abs(cur.get("payments/batch", -1) - 46.5375) > 1e-9:
        why.append("/v1/costs: %s" % it.clip(r.body))
    res.check(name, why)

    name = "cost: each allowed decision records its cost; paved audit report --cost sums them"
    rows = db_rows(srv.db, "SELECT json_extract(details, '$.cost.monthly'), "
                           "json_extract(details, '$.cost.currency') FROM decisions "
                           "WHERE request_uid = 'q-6'")
    p = subprocess.run([str(ctx["paved"]), "audit", "report", "--db", str(srv.db), "--cost",
                        "--team", "payments", "--format", "json"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    try:
        doc = json.loads(p.stdout)
        total = sum(x["monthly_cost"] for x in doc["current"])
    except (ValueError, KeyError):
        total = None
    res.check(name, [] if rows and abs(rows[0][0] - 46.5375) < 1e-9 and rows[0][1] == "EUR" and
              total is not None and abs(total - 62.05) < 1e-9
              else ["details %r, report %s %s" % (rows, it.clip(p.stdout), it.clip(p.stderr))])

    name = "quota: a deploy checked through /v1/decide (a CI gate) is checked but not charged"
    before = dict(db_rows(srv.db, "SELECT key, cpu_millis FROM ledger"))
    body = {"kind": "deploy", "object": deployment("ci-only", "citeam", 1)}
    r = srv.request("POST", "/v1/decide", json.dumps(body).encode(), auth("ci"))
    bad = srv.request("POST", "/v1/decide", json.dumps(dict(body, operation="DESTROY")).encode(),
                      auth("ci"))
    after = dict(db_rows(srv.db, "SELECT key, cpu_millis FROM ledger"))
    res.check(name, [] if r.status == 200 and (r.json or {}).get("allowed") and
              before == after and bad.status == 400
              else ["%d %s; ledger %r -> %r; bad op %d" % (r.status, it.clip(r.body), before,
                                                          after, bad.status)])

    name = "cost: a provision request charges an environment and its size (/v1/decide)"
    body = {"kind": "provision", "object": {"environment": "review-42", "size": {
        "cpu": "1", "memory": "2Gi", "storage": "10Gi"}, "metadata": {"labels": {
            "team": "search", "service": "review-42"}}}}
    r = srv.request("POST", "/v1/decide", json.dumps(body).encode(), auth("ci"))
    env = db_rows(srv.db, "SELECT environments, monthly_cost FROM ledger WHERE key = "
                          "'env/review-42'")
    # 1 x 0.04 x 730 + 2 x 0.005 x 730 + 10 x 0.1 + 50 = 29.2 + 7.3 + 1 + 50 = 87.5
    res.check(name, [] if r.status == 200 and env and env[0][0] == 1 and
              abs(env[0][1] - 87.5) < 1e-9 else ["%d %s %r" % (r.status, it.clip(r.body), env)])


def check_chain(srv, res, ctx):
    name = "audit: paved audit verify passes; quota denials are in paved audit query"
    rc, out, err = it.audit_verify(ctx["paved"], srv.db)
    rc2, out2, _ = it.run_paved(ctx["paved"], ["audit", "query", "--db", str(srv.db), "--policy",
                                               "quota", "--format", "json"])
    try:
        n = len(json.loads(out2))
    except ValueError:
        n = -1
    res.check(name, [] if rc == 0 and "chain ok" in out and n >= 16
              else ["verify %s %s %s; quota denials %d" % (rc, out, err, n)])


class ConfigDbServer(it.Server):
    """A server that takes its audit store (and nothing else) from the config: no --db."""

    def start(self, timeout=40.0):
        self.port = it.free_port()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(self.paved), "serve", "--config", str(self.config), "--listen",
             "%s:%d" % (it.HOST, self.port), "--tls-cert", str(self.certs / "tls.crt"),
             "--tls-key", str(self.certs / "tls.key"), "--threads", "2"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=str(self.tmp))
        log.close()
        return self.wait_healthy(timeout)


def check_reload_with_config_db(paved, tmp, res):
    """Regression: the audit path from the config outlives the snapshot it came from."""
    import signal
    name = "serve: after SIGHUP reloads, a store named by the config still serves the API"
    db = tmp / "cfgdb.db"
    config = tmp / "cfgdb.yaml"
    text = (tmp / "paved.yaml").read_text()
    config.write_text(text + "audit:\n  db: %s\n" % db)
    srv = ConfigDbServer(paved, tmp, "cfgdb", db, config, tmp / "certs")
    why = srv.start()
    if why:
        res.fail(name, [why])
        return
    for _ in range(2):
        srv.proc.send_signal(signal.SIGHUP)
        time.sleep(1.5)
    r = srv.request("GET", "/v1/exceptions", None, auth("dash"))
    q = srv.request("GET", "/v1/quotas/payments", None, auth("dash"))
    rc, _ = srv.terminate(10.0)
    res.check(name, [] if r.status == 200 and q.status == 200 and rc == 0 and db.exists()
              else ["exceptions %d quotas %d exit %r\n%s" % (r.status, q.status, rc,
                                                          srv.log_tail())])


def main():
    pattern = sys.argv[1] if len(sys.argv) > 1 else ""
    res = it.Results(pattern)
    paved = Path(os.environ.get("PAVED", str(ROOT / "build" / "paved"))).resolve()
    tmp = Path(tempfile.mkdtemp(prefix="paved-plat."))
    dog = threading.Timer(WATCHDOG_S, lambda: (print("FAIL - watchdog: over %d s" % WATCHDOG_S),
                                               [s.kill9() for s in it.Server.all],
                                               print("%d passed, %d failed" %
                                                     (res.passed, res.failed + 1)),
                                               os._exit(1)))
    dog.daemon = True
    dog.start()
    idp = None
    try:
        rc, out, err = it.run_paved(paved, ["certs", "--out", str(tmp / "certs"), "--host",
                                            it.HOST])
        if rc != 0:
            return it.setup_fail(res, "paved certs failed: %s %s" % (out, err))
        idp = IdP(tmp / "certs")
        idp.start()
        config = write_config(tmp, idp.port, tmp / "certs")
        srv = it.Server(paved, tmp, "plat", tmp / "plat.db", config, tmp / "certs")
        why = srv.start()
        if why:
            return it.setup_fail(res, "paved serve did not start: " + why)
        ctx = {"paved": paved, "tmp": tmp}
        check_quotas(srv, res, ctx)
        check_costs(srv, res, ctx)
        check_credentials(srv, idp, res, ctx)
        srv.terminate(10.0)
        check_chain(srv, res, ctx)
        check_reload_with_config_db(paved, tmp, res)
    finally:
        dog.cancel()
        if idp is not None:
            idp.stop()
        for s in it.Server.all:
            s.kill9()
        if os.environ.get("PAVED_IT_KEEP") == "1":
            print("# kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (res.passed, res.failed))
    return 1 if res.failed else 0


if __name__ == "__main__":
    sys.exit(main())
