#!/usr/bin/env python3
"""tests/integration/run.py: integration tests of `paved serve` against the real thing.

Starts the real server ($PAVED, default build/paved) on 127.0.0.1 with a free port,
HTTPS with certificates from `paved certs`, a temporary SQLite audit store and a
temporary config (the shipped bindings of policies/default.yaml plus test tokens),
then runs:

  - every tests/integration/cases/NNNN-name.case (format below),
  - checks written in code: TLS, metrics, logs, concurrent load, corpus parity
    (server vs `paved check` on every object of ../shared/corpus), slow clients,
    SIGTERM shutdown, `paved audit verify`, tamper detection, and a kill -9 crash test.

Prints "ok - NAME" or "FAIL - NAME" (reasons indented below), and last
"N passed, N failed". Exit status 1 when anything failed. A failure that points at a
feature the server lacks says so: "FAIL - NAME (server: WHAT)".

Run from anywhere:  PAVED=build/asan/paved python3 tests/integration/run.py [PATTERN]
PATTERN keeps only the checks whose name contains it. PAVED_CORPUS overrides the corpus
directory (default ../shared/corpus next to the repository). PAVED_IT_KEEP=1 keeps the
temporary directory (server logs, databases) and prints its path.

Case format (STYLE.md section 8). Each "--- DIRECTIVE args" line starts a section; the
lines up to the next one are its body.

  --- name                  body: the case name
  --- request METHOD PATH   body: the request body (none when empty); ${TOKEN_CI},
                            ${TOKEN_READER}, ${TOKEN_ADMIN} are replaced
  --- header K: V           a request header (repeatable); "K:" with no value removes
                            the default (POSTs send Content-Type: application/json)
  --- generate NAME         body made in code instead: oversize (max body + 1 byte),
                            at-limit (exactly the max body), deep (JSON nested 10,000 deep)
  --- expect-status N       HTTP status
  --- expect-response       body: JSON that the response must contain field by field
                            (every key given must be equal; arrays element-wise, same length)
  --- expect-present        body: JSON pointers (RFC 6901) that must exist in the response
  --- expect-absent         body: JSON pointers that must not exist
  --- expect-contains       body: lines "POINTER TEXT": the string at POINTER contains TEXT;
                            POINTER "-" is the raw response body
  --- expect-header         body: lines "Name: value-prefix"
  --- expect-patch          body: JSON objects, one a line; each must be a field-by-field
                            subset of some operation of the base64 JSONPatch response.patch
  --- expect-audit          body: key=value pairs that must hold for the decisions row of
                            the decision id the response carried (auditAnnotations
                            paved.dev/decision-id, or decision_id). Keys are columns;
                            uid= is request_uid; policy= and binding= name a violation.
  --- expect-healthy        afterwards GET /healthz answers 200
  --- feature WHAT          if the case fails, the likely cause is that the server lacks WHAT
"""

import base64
import copy
import hashlib
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", category=DeprecationWarning)

HOST = "127.0.0.1"
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CASES = HERE / "cases"
MAX_BODY = 6 << 20  # the documented default (server.max_body_bytes)
CONN_TIMEOUT_S = 3  # server.connection_timeout_s in the test config
WATCHDOG_S = 300  # the whole run, hard stop

TOKENS = {
    "TOKEN_CI": ("it-ci", "ci", "paved-it-ci-0b7e41a9"),
    "TOKEN_READER": ("it-reader", "reader", "paved-it-reader-5c22f0d3"),
    "TOKEN_ADMIN": ("it-admin", "admin", "paved-it-admin-9a1d7e66"),
}

# ---------------------------------------------------------------------------------
# Results


class Results:
    def __init__(self, pattern):
        self.pattern = pattern
        self.passed = 0
        self.failed = 0
        self.lock = threading.Lock()

    def want(self, name):
        return not self.pattern or self.pattern in name

    def ok(self, name, note=""):
        with self.lock:
            self.passed += 1
            print("ok - %s%s" % (name, " # " + note if note else ""), flush=True)

    def fail(self, name, reasons, feature=None):
        with self.lock:
            self.failed += 1
            print("FAIL - %s%s" % (name, " (server: %s)" % feature if feature else ""), flush=True)
            for r in reasons:
                for line in str(r).splitlines() or [""]:
                    print("    " + line, flush=True)

    def check(self, name, reasons, feature=None, note=""):
        if reasons:
            self.fail(name, reasons, feature)
        else:
            self.ok(name, note)
        return not reasons


def clip(b, n=600):
    s = b.decode("utf-8", "replace") if isinstance(b, (bytes, bytearray)) else str(b)
    return s if len(s) <= n else s[:n] + "... (%d bytes)" % len(s)


# ---------------------------------------------------------------------------------
# HTTP over TLS


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case names
        self.body = body
        try:
            self.json = json.loads(body) if body else None
            self.is_json = body != b""
        except ValueError:
            self.json = None
            self.is_json = False


def client_context(cafile, verify=True):
    ctx = ssl.create_default_context(cafile=cafile)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def http_request(port, ctx, method, path, body=None, headers=None, timeout=15.0):
    """One request on a fresh connection. Raises OSError/HTTPException on failure."""
    hdrs = {}
    if body is not None:
        hdrs["Content-Type"] = "application/json"
    for k, v in (headers or {}).items():
        for old in [h for h in hdrs if h.lower() == k.lower()]:
            del hdrs[old]
        if v is not None:
            hdrs[k] = v
    if isinstance(body, str):
        body = body.encode()
    conn = http.client.HTTPSConnection(HOST, port, context=ctx, timeout=timeout)
    try:
        try:
            conn.request(method, path, body=body, headers=hdrs)
        except (BrokenPipeError, ConnectionResetError):
            # The server may answer (413) before it has read everything; read that answer.
            pass
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


class KeepAlive:
    """A keep-alive connection for load tests; reconnects once on a dropped connection."""

    def __init__(self, port, ctx, timeout=15.0):
        self.port, self.ctx, self.timeout = port, ctx, timeout
        self.conn = None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def post(self, path, body):
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPSConnection(HOST, self.port, context=self.ctx,
                                                        timeout=self.timeout)
            try:
                self.conn.request("POST", path, body=body,
                                  headers={"Content-Type": "application/json"})
                r = self.conn.getresponse()
                data = r.read()
                if (r.getheader("Connection") or "").lower() == "close":
                    self.close()
                return r.status, data
            except (http.client.RemoteDisconnected, http.client.BadStatusLine,
                    ConnectionResetError, BrokenPipeError, ssl.SSLError) as e:
                self.close()
                if attempt == 1:
                    raise e
        raise AssertionError("unreachable")


def decision_id_of(doc):
    if not isinstance(doc, dict):
        return None
    r = doc.get("response")
    if isinstance(r, dict):
        a = r.get("auditAnnotations")
        return a.get("paved.dev/decision-id") if isinstance(a, dict) else None
    v = doc.get("decision_id")
    return v if isinstance(v, str) else None


# ---------------------------------------------------------------------------------
# The server process


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((HOST, 0))
        return s.getsockname()[1]
    finally:
        s.close()


class Server:
    all = []

    def __init__(self, paved, tmp, name, db, config, certs, fsize_limit=None):
        self.paved, self.tmp, self.name = paved, tmp, name
        self.fsize_limit = fsize_limit
        self.db, self.config, self.certs = db, config, certs
        self.proc = None
        self.port = None
        self.log_path = tmp / ("%s.log" % name)
        self.ctx = client_context(str(certs / "ca.crt"))
        Server.all.append(self)

    def start(self, timeout=40.0):
        """Starts and waits for /healthz. Returns None or the reason it failed."""
        why = "not started"
        for attempt in range(3):
            self.port = free_port()
            env = dict(os.environ)
            env.pop("PAVED_LOG", None)
            log = open(self.log_path, "ab")
            log.write(("---- start %d port %d\n" % (attempt, self.port)).encode())
            log.flush()
            self.proc = subprocess.Popen(
                [str(self.paved), "serve", "--config", str(self.config),
                 "--listen", "%s:%d" % (HOST, self.port),
                 "--tls-cert", str(self.certs / "tls.crt"), "--tls-key", str(self.certs / "tls.key"),
                 "--db", str(self.db), "--threads", "4"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=str(self.tmp), env=env,
                preexec_fn=self.limit_files if self.fsize_limit else None)
            log.close()
            why = self.wait_healthy(timeout)
            if why is None:
                return None
            if self.proc.poll() is None:
                self.kill9()
                return why
            # Exited: maybe the port was taken between free_port() and bind; try another.
        return why

    def limit_files(self):
        """In the child: no file may grow past fsize_limit bytes (a full disk)."""
        import resource
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.fsize_limit, self.fsize_limit))

    def wait_healthy(self, timeout):
        deadline = time.monotonic() + timeout
        last = ""
        for _ in range(int(timeout / 0.05) + 1):
            if self.proc.poll() is not None:
                return "paved serve exited with status %s:\n%s" % (self.proc.returncode,
                                                                   self.log_tail())
            try:
                r = http_request(self.port, self.ctx, "GET", "/healthz", timeout=2.0)
                if r.status == 200:
                    return None
                last = "GET /healthz answered %d %s" % (r.status, clip(r.body, 200))
            except ssl.SSLCertVerificationError as e:
                return "TLS verification of the server certificate for %s failed: %s" % (HOST, e)
            except (OSError, http.client.HTTPException) as e:
                last = "GET /healthz: %s" % e
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        return "not healthy within %.0f s (%s)\n%s" % (timeout, last, self.log_tail())

    def request(self, method, path, body=None, headers=None, timeout=15.0):
        return http_request(self.port, self.ctx, method, path, body, headers, timeout)

    def terminate(self, timeout=10.0):
        """SIGTERM; returns (exit status or None when it did not stop, seconds)."""
        t0 = time.monotonic()
        if self.proc is None or self.proc.poll() is not None:
            return (self.proc.returncode if self.proc else None), 0.0
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            return None, time.monotonic() - t0
        return rc, time.monotonic() - t0

    def kill9(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass

    def log_text(self):
        try:
            return self.log_path.read_text("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, n=15):
        lines = self.log_text().splitlines()
        return "\n".join("  | " + l[:300] for l in lines[-n:])


# ---------------------------------------------------------------------------------
# The audit store, read directly


def db_connect(db):
    return sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)


def audit_rows(db, ids):
    """{id: row dict} for the ids present in the decisions table."""
    out = {}
    con = db_connect(db)
    try:
        con.row_factory = sqlite3.Row
        ids = list(ids)
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            q = "SELECT * FROM decisions WHERE id IN (%s)" % ",".join("?" * len(chunk))
            for row in con.execute(q, chunk):
                out[row["id"]] = dict(row)
    finally:
        con.close()
    return out


def run_paved(paved, args, timeout=60, cwd=None):
    p = subprocess.run([str(paved)] + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout, cwd=cwd)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def audit_verify(paved, db):
    try:
        return run_paved(paved, ["audit", "verify", "--db", str(db)], timeout=60)
    except subprocess.TimeoutExpired:
        return None, "", "paved audit verify did not finish within 60 s"


def missing_command(out):
    return bool(re.search(r"unknown command|usage: paved COMMAND", out))


# ---------------------------------------------------------------------------------
# Cases


def parse_case(path):
    case = {"file": path.name, "name": path.stem, "headers": [], "sections": {}}
    cur = None
    body = []

    def flush():
        if cur is not None:
            d, args = cur
            text = "\n".join(body).strip("\n")
            if d == "name":
                case["name"] = text.strip() or args or path.stem
            elif d == "request":
                m = args.split()
                if len(m) != 2:
                    raise ValueError("%s: '--- request METHOD PATH'" % path.name)
                case["method"], case["path"] = m
                case["body"] = text if text.strip() else None
            elif d == "header":
                k, _, v = args.partition(":")
                case["headers"].append((k.strip(), v.strip() or None))
            elif d in ("generate", "expect-status", "feature"):
                case[d] = args.strip() or text.strip()
            elif d in ("expect-response", "expect-present", "expect-absent", "expect-contains",
                       "expect-header", "expect-audit", "expect-patch"):
                case[d] = text
            elif d == "expect-healthy":
                case[d] = True
            else:
                raise ValueError("%s: unknown directive '--- %s'" % (path.name, d))

    for line in path.read_text("utf-8").splitlines():
        if line.startswith("--- "):
            flush()
            d, _, args = line[4:].partition(" ")
            cur = (d.strip(), args.strip())
            body = []
        elif cur is not None:
            body.append(line)
    flush()
    if "method" not in case:
        raise ValueError("%s: no '--- request'" % path.name)
    if "expect-response" in case:
        case["expect-response"] = json.loads(case["expect-response"])
    return case


def subst(s):
    for var, (_, _, secret) in TOKENS.items():
        s = s.replace("${%s}" % var, secret)
    return s


def pointer(doc, ptr):
    """(found, value) of an RFC 6901 JSON pointer."""
    if ptr in ("", "/"):
        return True, doc
    cur = doc
    for tok in ptr.lstrip("/").split("/"):
        tok = tok.replace("~1", "/").replace("~0", "~")
        if isinstance(cur, dict) and tok in cur:
            cur = cur[tok]
        elif isinstance(cur, list) and tok.isdigit() and int(tok) < len(cur):
            cur = cur[int(tok)]
        else:
            return False, None
    return True, cur


def subset(exp, act, where="$"):
    """Mismatches of 'exp' as a field-by-field subset of 'act'."""
    if isinstance(exp, dict):
        if not isinstance(act, dict):
            return ["%s: expected an object, got %s" % (where, json.dumps(act)[:200])]
        out = []
        for k, v in exp.items():
            if k not in act:
                out.append("%s.%s: missing (expected %s)" % (where, k, json.dumps(v)[:200]))
            else:
                out += subset(v, act[k], "%s.%s" % (where, k))
        return out
    if isinstance(exp, list):
        if not isinstance(act, list) or len(act) != len(exp):
            return ["%s: expected %d elements, got %s" % (where, len(exp), json.dumps(act)[:200])]
        out = []
        for i, (e, a) in enumerate(zip(exp, act)):
            out += subset(e, a, "%s[%d]" % (where, i))
        return out
    if type(exp) is not type(act) and not (isinstance(exp, (int, float)) and
                                           isinstance(act, (int, float)) and
                                           not isinstance(exp, bool) and not isinstance(act, bool)):
        return ["%s: expected %s, got %s" % (where, json.dumps(exp), json.dumps(act)[:200])]
    if exp != act:
        return ["%s: expected %s, got %s" % (where, json.dumps(exp), json.dumps(act)[:200])]
    return []


def base_review(uid):
    return {
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": uid, "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "resource": {"group": "", "version": "v1", "resource": "configmaps"},
            "name": "big", "namespace": "shop", "operation": "CREATE",
            "userInfo": {"username": "it@example.com"},
            "object": {"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "big", "namespace": "shop",
                                    "annotations": {"filler": ""}},
                       "data": {}},
        },
    }


def sized_review(uid, size):
    r = base_review(uid)
    empty = len(json.dumps(r, separators=(",", ":")).encode())
    r["request"]["object"]["metadata"]["annotations"]["filler"] = "x" * (size - empty)
    b = json.dumps(r, separators=(",", ":")).encode()
    assert len(b) == size, (len(b), size)
    return b


def generate(name):
    if name == "oversize":
        return sized_review("it-oversize", MAX_BODY + 1)
    if name == "at-limit":
        return sized_review("it-at-limit", MAX_BODY)
    if name == "deep":
        depth = 10000
        return ('{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":'
                '{"uid":"it-deep","operation":"CREATE","object":{"kind":"ConfigMap","data":'
                + "[" * depth + "]" * depth + "}}}").encode()
    raise ValueError("unknown generator %s" % name)


def run_case(srv, case, res):
    name = "%s: %s" % (case["file"].split("-")[0], case["name"])
    reasons = []
    headers = {k: (subst(v) if v is not None else None) for k, v in case["headers"]}
    if "generate" in case:
        body = generate(case["generate"])
    else:
        body = subst(case["body"]).encode() if case["body"] is not None else None
    what = "%s %s" % (case["method"], case["path"])
    try:
        r = srv.request(case["method"], case["path"], body, headers, timeout=30.0)
    except (OSError, http.client.HTTPException) as e:
        res.fail(name, ["%s: no answer: %r" % (what, e), srv.log_tail(8)], case.get("feature"))
        return
    doc = r.json
    if "expect-status" in case and r.status != int(case["expect-status"]):
        reasons.append("status %d, expected %s" % (r.status, case["expect-status"]))
    if "expect-response" in case:
        if doc is None:
            reasons.append("the body is not JSON")
        else:
            reasons += subset(case["expect-response"], doc)
    for ptr in (case.get("expect-present") or "").split():
        if doc is None or not pointer(doc, ptr)[0]:
            reasons.append("%s: missing" % ptr)
    for ptr in (case.get("expect-absent") or "").split():
        if doc is not None and pointer(doc, ptr)[0]:
            reasons.append("%s: present (%s), expected absent" %
                           (ptr, json.dumps(pointer(doc, ptr)[1])[:200]))
    for line in (case.get("expect-contains") or "").splitlines():
        if not line.strip():
            continue
        ptr, _, text = line.strip().partition(" ")
        if ptr == "-":
            hay = r.body.decode("utf-8", "replace")
        else:
            found, hay = pointer(doc, ptr) if doc is not None else (False, None)
            if not found or not isinstance(hay, str):
                reasons.append("%s: no string there (looking for %r)" % (ptr, text))
                continue
        if text not in hay:
            reasons.append("%s: %r not found in %r" % (ptr, text, clip(hay, 300)))
    for line in (case.get("expect-header") or "").splitlines():
        if not line.strip():
            continue
        k, _, v = line.partition(":")
        got = r.headers.get(k.strip().lower())
        if got is None or not got.lower().startswith(v.strip().lower()):
            reasons.append("header %s: %r, expected %r" % (k.strip(), got, v.strip()))
    if "expect-patch" in case:
        reasons += check_patch(doc, case["expect-patch"])
    if "expect-audit" in case:
        did = decision_id_of(doc)
        if did is None:
            reasons.append("expect-audit: the response carries no decision id")
        else:
            reasons += check_audit(srv.db, did, case["expect-audit"])
    if case.get("expect-healthy"):
        try:
            h = srv.request("GET", "/healthz", timeout=10.0)
            if h.status != 200:
                reasons.append("afterwards GET /healthz: %d" % h.status)
        except (OSError, http.client.HTTPException) as e:
            reasons.append("afterwards GET /healthz: %r (server exit status %s)\n%s" %
                           (e, srv.proc.poll(), srv.log_tail(8)))
    if reasons:
        reasons.append("request: %s %s" % (what, clip(body or b"", 300)))
        reasons.append("response: %d %s" % (r.status, clip(r.body, 800)))
    res.check(name, reasons, case.get("feature"))


def check_patch(doc, spec):
    found, b64 = pointer(doc, "/response/patch") if doc is not None else (False, None)
    if not found or not isinstance(b64, str):
        return ["expect-patch: no response.patch"]
    try:
        ops = json.loads(base64.b64decode(b64, validate=True))
    except (ValueError, TypeError) as e:
        return ["expect-patch: response.patch is not base64 of JSON: %s" % e]
    if not isinstance(ops, list):
        return ["expect-patch: the patch is not a JSON array: %s" % clip(json.dumps(ops), 300)]
    out = []
    for line in spec.splitlines():
        if not line.strip():
            continue
        want = json.loads(line)
        if not any(not subset(want, op) for op in ops):
            out.append("expect-patch: no operation matches %s in %s" %
                       (line.strip(), clip(json.dumps(ops), 600)))
    return out


def check_audit(db, did, spec):
    try:
        rows = audit_rows(db, [did])
    except sqlite3.Error as e:
        return ["audit: cannot read %s: %s" % (db, e)]
    row = rows.get(did)
    if row is None:
        return ["audit: decision %s is not in the decisions table (committed before the answer?)"
                % did]
    out = []
    for kv in shlex.split(spec):
        k, _, v = kv.partition("=")
        if k in ("policy", "binding"):
            try:
                vs = json.loads(row["violations"])
            except (ValueError, TypeError):
                vs = []
            names = [x.get(k) for x in vs if isinstance(x, dict)]
            if v not in names:
                out.append("audit: no violation with %s=%s (violations: %s)" %
                           (k, v, clip(row["violations"], 300)))
            continue
        col = "request_uid" if k == "uid" else k
        if col not in row:
            out.append("audit: no column %s (columns: %s)" % (col, ", ".join(row)))
            continue
        got = "NULL" if row[col] is None else str(row[col])
        if got != v:
            out.append("audit: %s=%s, expected %s" % (col, got, v))
    return out


# ---------------------------------------------------------------------------------
# Reviews for the code checks


def load_example_review(name):
    return json.loads((ROOT / "examples" / name).read_text())


def review_bytes(template, uid, dry_run=False):
    r = copy.deepcopy(template)
    r["request"]["uid"] = uid
    r["request"]["dryRun"] = dry_run
    return json.dumps(r, separators=(",", ":")).encode()


def gvk(obj):
    av = obj.get("apiVersion") or "v1"
    group, _, version = av.rpartition("/")
    return {"group": group, "version": version, "kind": obj.get("kind") or ""}


def wrap(obj, uid, namespace):
    md = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    k = gvk(obj)
    req = {"uid": uid, "kind": k,
           "resource": {"group": k["group"], "version": k["version"],
                        "resource": (k["kind"].lower() + "s") if k["kind"] else ""},
           "operation": "CREATE", "userInfo": {"username": "corpus@example.com"},
           "object": obj, "dryRun": False}
    if md.get("name"):
        req["name"] = md["name"]
    ns = namespace or md.get("namespace")
    if ns:
        req["namespace"] = ns
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req}


def parallel(n_threads, items, fn, deadline):
    """Runs fn(item) over items on n_threads threads; returns the list of results (or
    the exception) in item order. Stops taking items after 'deadline' (monotonic)."""
    out = [None] * len(items)
    idx = [0]
    lock = threading.Lock()

    def worker():
        for _ in range(len(items)):
            with lock:
                i = idx[0]
                idx[0] += 1
            if i >= len(items) or time.monotonic() > deadline:
                return
            try:
                out[i] = fn(items[i])
            except Exception as e:  # reported per item by the caller
                out[i] = e

    ts = [threading.Thread(target=worker, daemon=True) for _ in range(n_threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(max(0.0, deadline - time.monotonic()) + 30)
    return out


# ---------------------------------------------------------------------------------
# Code checks against the running server


def metric_values(text, name):
    vals = []
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            try:
                vals.append(float(line.rsplit(" ", 1)[1]))
            except ValueError:
                pass
    return vals


def check_tls(srv, res):
    cafile = str(srv.certs / "ca.crt")
    if res.want("tls: TLS 1.2 accepted"):
        ctx = client_context(cafile)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        try:
            r = http_request(srv.port, ctx, "GET", "/healthz", timeout=10)
            res.check("tls: TLS 1.2 accepted", [] if r.status == 200 else ["status %d" % r.status])
        except (OSError, http.client.HTTPException) as e:
            res.fail("tls: TLS 1.2 accepted", [repr(e)])
    if res.want("tls: TLS 1.1 refused"):
        ctx = client_context(cafile)
        try:
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        except (ValueError, ssl.SSLError) as e:
            res.ok("tls: TLS 1.1 refused", "SKIP: this Python cannot offer TLS 1.1 (%s)" % e)
            ctx = None
        if ctx is not None:
            try:
                r = http_request(srv.port, ctx, "GET", "/healthz", timeout=10)
                res.fail("tls: TLS 1.1 refused", ["a TLS 1.1 client got %d" % r.status])
            except ssl.SSLError as e:
                res.ok("tls: TLS 1.1 refused")
            except (OSError, http.client.HTTPException) as e:
                res.ok("tls: TLS 1.1 refused", "connection failed: %s" % e)
    if res.want("tls: plain HTTP on the TLS port gets no answer"):
        name = "tls: plain HTTP on the TLS port gets no answer"
        c = http.client.HTTPConnection(HOST, srv.port, timeout=10)
        try:
            c.request("GET", "/healthz")
            r = c.getresponse()
            res.check(name, [] if r.status != 200 else ["plain HTTP got 200 from the TLS port"])
        except (OSError, http.client.HTTPException):
            res.ok(name)
        finally:
            c.close()


def check_metrics_and_logs(srv, res, golden, privileged):
    # Make one decision of each kind, then read /metrics.
    try:
        before = srv.request("GET", "/metrics").body.decode("utf-8", "replace")
        r1 = srv.request("POST", "/k8s/validate", review_bytes(golden, "it-metrics-golden"))
        r2 = srv.request("POST", "/k8s/validate", review_bytes(privileged, "it-metrics-deny"))
        after = srv.request("GET", "/metrics").body.decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as e:
        res.fail("metrics: counters move", [repr(e)])
        return
    b = sum(metric_values(before, "paved_decisions_total"))
    a = sum(metric_values(after, "paved_decisions_total"))
    if res.want("metrics: counters move"):
        res.check("metrics: counters move",
                  [] if a >= b + 2 else ["paved_decisions_total went from %g to %g after two "
                                         "decisions" % (b, a)])
    checks = [
        ("metrics: latency histogram", r"^\w+_bucket\{[^}]*le=\"\+Inf\"\}", None),
        ("metrics: audit queue depth", r"^\w*queue\w*(\{[^}]*\})? \d", None),
        ("metrics: decisions by policy", r"^paved_\w+\{[^}]*policy=\"psa-restricted\"[^}]*\} \d",
         "a /metrics series labelled policy=\"...\" (decisions by policy, issue 3 item 2)"),
        ("metrics: audit commit latency", r"^\w*commit\w*(seconds|latency)\w*(\{[^}]*\})? \d",
         "an audit commit latency metric (issue 3 item 2)"),
        ("metrics: reloads", r"^\w*reload\w*(\{[^}]*\})? \d",
         "a reload counter in /metrics (issue 3 item 2)"),
    ]
    for name, rx, feature in checks:
        if res.want(name):
            ok = re.search(rx, after, re.M) is not None
            fams = sorted({l.split("{")[0].split(" ")[0] for l in after.splitlines()
                           if l and not l.startswith("#")})
            res.check(name, [] if ok else ["no line matches /%s/ in GET /metrics; its series: %s"
                                           % (rx, ", ".join(fams))], feature)
    name = "logs: one JSON line on stderr per decision, with its id"
    if res.want(name):
        ids = [decision_id_of(r1.json), decision_id_of(r2.json)]
        reasons = []
        lines = srv.log_text().splitlines()
        for did in ids:
            if did is None:
                reasons.append("a response carried no decision id")
                continue
            hits = [l for l in lines if did in l]
            js = []
            for l in hits:
                try:
                    js.append(json.loads(l))
                except ValueError:
                    pass
            if len(js) != 1:
                reasons.append("decision %s: %d JSON log lines name it (of %d lines); expected 1"
                               % (did, len(js), len(hits)))
        if reasons:
            reasons.append("stderr tail:\n" + srv.log_tail(6))
        res.check(name, reasons)


def check_load(srv, res, golden, privileged, n_threads=8, per_thread=50):
    name = "load: %d threads x %d reviews, every answer right, ids distinct and stored" % (
        n_threads, per_thread)
    if not res.want(name):
        return
    deadline = time.monotonic() + 60
    results = [[] for _ in range(n_threads)]
    errors = []
    lock = threading.Lock()

    def worker(t):
        ka = KeepAlive(srv.port, srv.ctx)
        try:
            for i in range(per_thread):
                if time.monotonic() > deadline:
                    with lock:
                        errors.append("thread %d: out of time after %d requests" % (t, i))
                    return
                deny = (i % 2 == 1)
                uid = "it-load-%d-%d" % (t, i)
                try:
                    st, body = ka.post("/k8s/validate",
                                       review_bytes(privileged if deny else golden, uid))
                except (OSError, http.client.HTTPException) as e:
                    with lock:
                        errors.append("%s: %r" % (uid, e))
                    continue
                results[t].append((uid, deny, st, body))
        finally:
            ka.close()

    ts = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(n_threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(max(0.0, deadline - time.monotonic()) + 20)
    reasons = list(errors[:10])
    ids = {}
    for per in results:
        for uid, deny, st, body in per:
            try:
                doc = json.loads(body)
            except ValueError:
                doc = None
            resp = doc.get("response") if isinstance(doc, dict) else None
            if st != 200 or not isinstance(resp, dict):
                reasons.append("%s: %d %s" % (uid, st, clip(body, 200)))
                continue
            if resp.get("uid") != uid or resp.get("allowed") is not (not deny):
                reasons.append("%s: uid %r allowed %r, expected allowed %s" %
                               (uid, resp.get("uid"), resp.get("allowed"), not deny))
            did = decision_id_of(doc)
            if did is None:
                reasons.append("%s: no decision id" % uid)
            elif did in ids:
                reasons.append("%s: decision id %s also given to %s" % (uid, did, ids[did]))
            else:
                ids[did] = uid
    n = sum(len(p) for p in results)
    if n != n_threads * per_thread:
        reasons.append("%d of %d requests answered" % (n, n_threads * per_thread))
    try:
        rows = audit_rows(srv.db, ids)
        missing = [d for d in ids if d not in rows]
        if missing:
            reasons.append("%d decision ids not in the store, e.g. %s" % (len(missing), missing[:3]))
        bad = [d for d, row in rows.items() if row["request_uid"] != ids[d]]
        if bad:
            reasons.append("%d rows carry another request_uid, e.g. %s" % (len(bad), bad[:3]))
    except sqlite3.Error as e:
        reasons.append("cannot read the store: %s" % e)
    res.check(name, reasons[:20])


def find_corpus():
    env = os.environ.get("PAVED_CORPUS")
    p = Path(env) if env else ROOT.parent / "shared" / "corpus"
    return p.resolve() if p.is_dir() else None


def check_parity(srv, res, paved, config, tmp):
    corpus = find_corpus()
    files = sorted(corpus.glob("*.jsonl")) if corpus else []
    if not files:
        name = "parity: /k8s/validate, /v1/decide and `paved check` agree on the corpus"
        if res.want(name):
            res.ok(name, "SKIP: no corpus at %s (set PAVED_CORPUS)" %
                   (os.environ.get("PAVED_CORPUS") or ROOT.parent / "shared" / "corpus"))
        return
    for f in files:
        name = ("parity: /k8s/validate, /v1/decide, `paved check` and `paved check --server` "
                "agree on every object of %s" % f.name)
        if not res.want(name):
            continue
        cases = []
        for ln, line in enumerate(f.read_text("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                c = json.loads(line)
            except ValueError:
                continue
            if isinstance(c.get("object"), dict):
                cases.append((ln, c))
        d = tmp / ("parity-" + f.stem)
        d.mkdir(exist_ok=True)
        for ln, c in cases:
            (d / ("%05d.json" % ln)).write_text(json.dumps(c["object"]))
        # Offline: one `paved check` per object. (One invocation over many files would
        # treat them as one set: inventory policies such as pdb-limits or
        # unique-ingress-host would see the other objects.)
        reasons = []

        def offline_one(item):
            ln, c = item
            args = ["check", "--config", str(config), "--format", "json"]
            if c.get("namespace"):
                args += ["--namespace", c["namespace"]]
            rc, out, err = run_paved(paved, args + [str(d / ("%05d.json" % ln))], timeout=60)
            try:
                objs = [o for o in json.loads(out).get("objects", []) if "allowed" in o]
            except (ValueError, AttributeError):
                return "paved check: not JSON (exit %d): %s %s" % (rc, clip(out, 200),
                                                                   clip(err, 200))
            # The same gate, deciding on the server (`paved check --server`): the same
            # verdict and the same exit status.
            rargs = ["check", "--server", "https://127.0.0.1:%d" % srv.port, "--token",
                     TOKENS["TOKEN_CI"][2], "--cacert", str(srv.certs / "ca.crt"), "--format",
                     "json"]
            if c.get("namespace"):
                rargs += ["--namespace", c["namespace"]]
            rrc, rout, rerr = run_paved(paved, rargs + [str(d / ("%05d.json" % ln))], timeout=60)
            try:
                robjs = [o for o in json.loads(rout).get("objects", []) if "allowed" in o]
            except (ValueError, AttributeError):
                return "paved check --server: not JSON (exit %d): %s %s" % (
                    rrc, clip(rout, 200), clip(rerr, 200))
            if rrc != rc or [o["allowed"] for o in robjs] != [o["allowed"] for o in objs]:
                return "paved check exit %d allowed %s, paved check --server exit %d allowed %s" % (
                    rc, [o["allowed"] for o in objs], rrc, [o["allowed"] for o in robjs])
            return objs

        offline_list = parallel(max(2, min(8, os.cpu_count() or 2)), cases, offline_one,
                                time.monotonic() + 90)
        offline = {}
        for (ln, c), objs in zip(cases, offline_list):
            if isinstance(objs, list):
                offline[str(d / ("%05d.json" % ln))] = objs
            elif len(reasons) < 5:
                reasons.append("line %d: %s" % (ln, objs if objs is not None else "not run"))
        # Server: every object as a CREATE AdmissionReview.
        items = [(ln, c, str(d / ("%05d.json" % ln))) for ln, c in cases]

        tl = threading.local()
        conns = []

        def send(item):
            ln, c, _ = item
            if not hasattr(tl, "ka"):
                tl.ka = KeepAlive(srv.port, srv.ctx)
                conns.append(tl.ka)
            body = json.dumps(wrap(c["object"], "corpus-%s-%d" % (f.stem, ln),
                                   c.get("namespace"))).encode()
            review = tl.ka.post("/k8s/validate", body)
            req = {"kind": "deploy", "object": c["object"]}
            if c.get("namespace"):
                req["namespace"] = c["namespace"]
            r = http_request(srv.port, srv.ctx, "POST", "/v1/decide", json.dumps(req),
                             {"Authorization": "Bearer " + TOKENS["TOKEN_CI"][2]})
            return review, (r.status, r.body)

        answers = parallel(4, items, send, time.monotonic() + 90)
        for ka in conns:
            ka.close()
        compared = skipped = n_allowed = 0
        mismatches = []
        for (ln, c, path), ans in zip(items, answers):
            objs = offline.get(path)
            if not objs or len(objs) != 1:
                skipped += 1  # an input error offline (or a List): nothing to compare
                continue
            if isinstance(ans, Exception) or ans is None:
                mismatches.append("line %d: the server did not answer: %r" % (ln, ans))
                continue
            (st, body), (dst, dbody) = ans
            try:
                resp = json.loads(body)["response"]
                allowed = resp["allowed"]
            except (ValueError, KeyError, TypeError):
                mismatches.append("line %d: %d %s" % (ln, st, clip(body, 200)))
                continue
            try:
                d_allowed = json.loads(dbody)["allowed"]
            except (ValueError, KeyError, TypeError):
                d_allowed = "(%d %s)" % (dst, clip(dbody, 200))
            compared += 1
            n_allowed += objs[0]["allowed"] is True
            if d_allowed is not objs[0]["allowed"]:
                mismatches.append("line %d (%s %s): POST /v1/decide allowed=%s, paved check "
                                  "allowed=%s" % (ln, c.get("policy"), c["object"].get("kind"),
                                                  d_allowed, objs[0]["allowed"]))
            if allowed is not objs[0]["allowed"]:
                mismatches.append(
                    "line %d (%s %s/%s): server allowed=%s (%s), paved check allowed=%s (%s)" % (
                        ln, c.get("policy"), c["object"].get("kind"),
                        (c["object"].get("metadata") or {}).get("name"), allowed,
                        clip((resp.get("status") or {}).get("message", ""), 160),
                        objs[0]["allowed"],
                        clip("; ".join(v.get("message", "") for v in objs[0].get("violations", [])
                                       if v.get("enforcement") == "deny"), 160)))
        if compared == 0:
            reasons.append("nothing compared (%d objects, %d skipped)" % (len(items), skipped))
        if mismatches:
            reasons.append("%d of %d objects decided differently:" % (len(mismatches), compared))
            reasons += mismatches[:15]
        res.check(name, reasons, note="%d objects compared (%d allowed, %d denied), %d input "
                  "errors offline skipped" % (compared, n_allowed, compared - n_allowed, skipped))


def check_chunked_limit(srv, res):
    name = "limits: a chunked body over the limit (no Content-Length) is 413, server healthy"
    if not res.want(name):
        return
    chunk = b" " * 65536
    n_chunks = MAX_BODY // len(chunk) + 2

    def body():
        yield b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"it-chunked"}'
        for _ in range(n_chunks):
            yield chunk

    reasons = []
    conn = http.client.HTTPSConnection(HOST, srv.port, context=srv.ctx, timeout=30)
    try:
        try:
            conn.request("POST", "/k8s/validate", body=body(),
                         headers={"Content-Type": "application/json"}, encode_chunked=True)
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = conn.getresponse()
        data = r.read()
        if r.status != 413:
            reasons.append("status %d, expected 413: %s" % (r.status, clip(data, 300)))
    except (OSError, http.client.HTTPException) as e:
        reasons.append("no answer: %r" % e)
    finally:
        conn.close()
    try:
        h = srv.request("GET", "/healthz", timeout=10)
        if h.status != 200:
            reasons.append("afterwards GET /healthz: %d" % h.status)
    except (OSError, http.client.HTTPException) as e:
        reasons.append("afterwards GET /healthz: %r\n%s" % (e, srv.log_tail(8)))
    res.check(name, reasons)


def check_sanitizers(servers, res):
    name = "sanitizers: no AddressSanitizer/UBSan report in the server logs"
    if not res.want(name):
        return
    reasons = []
    for s in servers:
        text = s.log_text()
        m = re.search(r"(ERROR: (Address|Leak)Sanitizer.*|runtime error:.*)", text)
        if m:
            i = text.find(m.group(0))
            reasons.append("%s: %s" % (s.log_path.name, clip(text[i:i + 1500], 1500)))
    res.check(name, reasons)


def tls_socket(srv, timeout):
    raw = socket.create_connection((HOST, srv.port), timeout=timeout)
    return srv.ctx.wrap_socket(raw, server_hostname=HOST)


def check_slow_clients(srv, res, golden):
    name = "slow clients: 16 stalled connections, other clients still answered"
    name2 = "slow clients: the server drops a stalled connection after connection_timeout_s"
    if not (res.want(name) or res.want(name2)):
        return
    stalled = []
    reasons = []
    try:
        # 8 send half a body, 4 half a header, 4 connect and never start TLS.
        for i in range(8):
            s = tls_socket(srv, 10)
            s.sendall(b"POST /k8s/validate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 4000\r\n\r\n"
                      b'{"apiVersion":"admission.k8s.io/v1","kind":"Adm')
            stalled.append(("half body", s))
        for i in range(4):
            s = tls_socket(srv, 10)
            s.sendall(b"POST /k8s/validate HTTP/1.1\r\nHost: 127.0")
            stalled.append(("half header", s))
        for i in range(4):
            stalled.append(("no TLS handshake", socket.create_connection((HOST, srv.port),
                                                                          timeout=10)))
    except OSError as e:
        reasons.append("could not open the stalled connections: %r" % e)
    t0 = time.monotonic()
    for i in range(20):
        try:
            r = srv.request("POST", "/k8s/validate", review_bytes(golden, "it-slow-%d" % i),
                            timeout=5.0)
            if r.status != 200 or decision_id_of(r.json) is None:
                reasons.append("request %d: %d %s" % (i, r.status, clip(r.body, 200)))
        except (OSError, http.client.HTTPException) as e:
            reasons.append("request %d while clients stall: %r" % (i, e))
            break
    took = time.monotonic() - t0
    if res.want(name):
        res.check(name, reasons, note="20 answers in %.2f s" % took)
    # Each stalled connection must be closed by the server after the idle timeout.
    if res.want(name2):
        r2 = []
        deadline = time.monotonic() + CONN_TIMEOUT_S + 8
        for kind, s in stalled:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                data = s.recv(4096)
                # b"" is a close; an answer (e.g. 408) followed by a close is fine too.
            except (socket.timeout, TimeoutError):
                r2.append("%s: still open %.0f s after connection_timeout_s=%d" %
                          (kind, CONN_TIMEOUT_S + 8, CONN_TIMEOUT_S))
            except (OSError, ssl.SSLError):
                pass  # reset: closed
        res.check(name2, r2[:6])
    for _, s in stalled:
        try:
            s.close()
        except OSError:
            pass
    name3 = "slow clients: healthy afterwards"
    if res.want(name3):
        try:
            h = srv.request("GET", "/healthz", timeout=10)
            res.check(name3, [] if h.status == 200 else ["GET /healthz: %d" % h.status])
        except (OSError, http.client.HTTPException) as e:
            res.fail(name3, [repr(e), srv.log_tail(8)])


# ---------------------------------------------------------------------------------
# Store checks: verify, tamper, crash


def db_copy(src, dst):
    s = db_connect(src)
    d = sqlite3.connect(str(dst))
    try:
        s.backup(d)
    finally:
        s.close()
        d.close()


def check_verify_and_tamper(paved, db, tmp, res):
    name = "audit verify: exit 0 on the store of the run"
    if res.want(name):
        rc, out, err = audit_verify(paved, db)
        feature = "paved audit verify" if missing_command(out + err) else None
        res.check(name, [] if rc == 0 else ["exit %s: %s %s" % (rc, clip(out, 400), clip(err, 400))],
                  feature)
    try:
        con = db_connect(db)
        rows = con.execute("SELECT rowid, id, team FROM decisions ORDER BY rowid").fetchall()
        con.close()
    except sqlite3.Error as e:
        res.fail("tamper: setup", ["cannot read %s: %s" % (db, e)])
        return
    if len(rows) < 5:
        res.fail("tamper: setup", ["only %d decisions in the store" % len(rows)])
        return
    rowid, did, team = rows[len(rows) // 2]

    name = "tamper: a changed team makes audit verify exit 1 naming the row"
    if res.want(name):
        t = tmp / "tamper-team.db"
        db_copy(db, t)
        con = sqlite3.connect(str(t))
        con.execute("UPDATE decisions SET team = ? WHERE rowid = ?", (team + "-x", rowid))
        con.commit()
        con.close()
        rc, out, err = audit_verify(paved, t)
        text = out + err
        reasons = []
        if rc != 1:
            reasons.append("exit %s, expected 1" % rc)
        if did not in text and not re.search(r"(?<![\w-])%d(?![\w-])" % rowid, text):
            reasons.append("the output names neither decision %s nor row %d" % (did, rowid))
        if reasons:
            reasons.append("output: %s %s" % (clip(out, 400), clip(err, 400)))
        res.check(name, reasons, "paved audit verify" if missing_command(text) else None)

    name = "tamper: a deleted row makes audit verify exit 1"
    if res.want(name):
        t = tmp / "tamper-delete.db"
        db_copy(db, t)
        con = sqlite3.connect(str(t))
        con.execute("DELETE FROM decisions WHERE rowid = ?", (rowid,))
        con.commit()
        con.close()
        rc, out, err = audit_verify(paved, t)
        res.check(name, [] if rc == 1 else ["exit %s, expected 1: %s %s" %
                                           (rc, clip(out, 300), clip(err, 300))],
                  "paved audit verify" if missing_command(out + err) else None)

    name = "tamper: a changed verdict of the last row makes audit verify exit 1"
    if res.want(name):
        t = tmp / "tamper-last.db"
        db_copy(db, t)
        con = sqlite3.connect(str(t))
        last_rowid, last_id, _ = rows[-1]
        con.execute("UPDATE decisions SET decision = CASE decision WHEN 'allow' THEN 'deny' "
                    "ELSE 'allow' END WHERE rowid = ?", (last_rowid,))
        con.commit()
        con.close()
        rc, out, err = audit_verify(paved, t)
        reasons = [] if rc == 1 else ["exit %s, expected 1" % rc]
        if rc == 1 and last_id not in out + err and not re.search(
                r"(?<![\w-])%d(?![\w-])" % last_rowid, out + err):
            reasons.append("the output names neither decision %s nor row %d" % (last_id,
                                                                                last_rowid))
        if reasons:
            reasons.append("output: %s %s" % (clip(out, 300), clip(err, 300)))
        res.check(name, reasons, "paved audit verify" if missing_command(out + err) else None)


def check_reload(paved, tmp, certs, golden, res):
    names = ["reload: SIGHUP applies a changed binding (replicas warn -> deny)",
             "reload: a broken config is rejected and the last good one keeps serving"]
    if not any(res.want(n) for n in names):
        return
    cfg = tmp / "reload.yaml"
    good = write_config(tmp, "reload-good.yaml").read_text()
    m = re.search(r"- id: replicas\n(?:[ \t].*\n)*?\s*enforcement: warn\n", good)
    if m is None:
        res.fail(names[0], ["setup: no replicas binding with enforcement: warn in "
                            "policies/default.yaml"])
        return
    stricter = good[:m.start()] + m.group(0).replace("enforcement: warn", "enforcement: deny") + \
        good[m.end():]
    cfg.write_text(good)
    srv = Server(paved, tmp, "reload", tmp / "reload.db", cfg, certs)
    why = srv.start()
    if why:
        res.fail(names[0], ["the server did not start: " + why])
        return
    one = copy.deepcopy(golden)
    one["request"]["object"]["spec"]["replicas"] = 1
    seq = [0]

    def decide():
        seq[0] += 1
        r = srv.request("POST", "/k8s/validate", review_bytes(one, "it-reload-%d" % seq[0]))
        return (r.json or {}).get("response", {}).get("allowed"), r

    def replace(text):
        t = cfg.with_suffix(".tmp")
        t.write_text(text)
        os.replace(t, cfg)

    def reloads(result):
        text = srv.request("GET", "/metrics").body.decode("utf-8", "replace")
        return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
                   if l.startswith("paved_reloads_total{") and 'result="%s"' % result in l)

    try:
        r0 = []
        allowed, r = decide()
        if allowed is not True:
            r0.append("before the reload replicas 1 is not allowed: %s" % clip(r.body, 300))
        replace(stricter)
        srv.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        for _ in range(200):
            allowed, r = decide()
            if allowed is False or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if allowed is not False:
            r0.append("10 s after SIGHUP replicas 1 is still allowed: %s" % clip(r.body, 300))
        res.check(names[0], r0)

        r1 = []
        rejected_before = reloads("rejected")
        replace("bindings: [\n  - id: {broken\n")
        srv.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        for _ in range(200):
            if reloads("rejected") > rejected_before or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if reloads("rejected") <= rejected_before:
            r1.append('paved_reloads_total{result="rejected"} did not grow within 10 s')
        if srv.proc.poll() is not None:
            r1.append("the server exited (%s)\n%s" % (srv.proc.returncode, srv.log_tail(8)))
        else:
            allowed, r = decide()
            if allowed is not False:
                r1.append("after the rejected reload the last good bundle is not serving "
                          "(replicas 1: %s)" % clip(r.body, 300))
            h = srv.request("GET", "/readyz")
            if h.status != 200:
                r1.append("GET /readyz: %d %s" % (h.status, clip(h.body, 200)))
        res.check(names[1], r1)
    except (OSError, http.client.HTTPException) as e:
        res.fail("reload", [repr(e), srv.log_tail(8)])
    finally:
        replace(good)
        rc, secs = srv.terminate(10.0)
        if rc != 0:
            res.fail("reload: SIGTERM exit status", ["%s after %.1f s" % (rc, secs),
                                                     srv.log_tail(8)])


def check_full_disk(paved, tmp, config, certs, golden, res):
    """The disk fills up under the server (RLIMIT_FSIZE): requests then fail cleanly
    instead of being answered unrecorded, /readyz fails, and every decision that was
    answered is in the store, whose chain still verifies."""
    names = ["full disk: a decision that cannot be recorded is not answered as decided",
             "full disk: /readyz fails once the store cannot commit",
             "full disk: every answered decision is in the store and the chain verifies"]
    if not any(res.want(n) for n in names):
        return
    db = tmp / "full.db"
    srv = Server(paved, tmp, "full-disk", db, config, certs, fsize_limit=256 * 1024)
    why = srv.start()
    if why:
        res.fail(names[0], ["the server did not start: " + why])
        return
    answered, failed, other = [], 0, []
    try:
        for i in range(3000):
            r = srv.request("POST", "/k8s/validate", review_bytes(golden, "full-%d" % i))
            try:
                resp = json.loads(r.body)["response"]
            except (ValueError, KeyError):
                other.append("%d %s" % (r.status, clip(r.body, 200)))
                break
            did = decision_id_of(json.loads(r.body))
            if resp.get("allowed") is True and did:
                answered.append(did)
            elif resp.get("allowed") is False and (resp.get("status") or {}).get("code") == 500:
                failed += 1
                if did:
                    other.append("a failed answer carries decision id %s" % did)
                if failed >= 3:
                    break
            else:
                other.append(clip(r.body, 300))
                break
        ready = srv.request("GET", "/readyz")
    except (OSError, http.client.HTTPException) as e:
        res.fail(names[0], [repr(e), srv.log_tail(8)])
        srv.kill9()
        return
    srv.terminate(10.0)
    res.check(names[0], other + ([] if failed else
                                 ["no request failed: the limit was never reached (%d answered)"
                                  % len(answered)]),
              note="%d answered before the disk filled, then %d answered 500" %
              (len(answered), failed))
    res.check(names[1], [] if ready.status == 503 else
              ["GET /readyz answered %d %s" % (ready.status, clip(ready.body, 200))])
    reasons = []
    stored = audit_rows(db, answered)
    lost = [d for d in answered if d not in stored]
    if lost:
        reasons.append("%d answered decisions are not in the store, e.g. %s" % (len(lost),
                                                                                lost[:3]))
    rc, out, err = audit_verify(paved, db)
    if rc != 0:
        reasons.append("paved audit verify: exit %s %s %s" % (rc, clip(out, 300), clip(err, 300)))
    res.check(names[2], reasons, note="%d answered decisions checked" % len(answered))


def check_cert_rotation(paved, tmp, config, res):
    """A renewed certificate (files replaced, as cert-manager does) is served without a
    restart; a broken replacement is rejected and the current one keeps serving."""
    name = "tls: a replaced serving certificate is picked up without a restart"
    if not res.want(name):
        return
    old, new, live = tmp / "rot-old", tmp / "rot-new", tmp / "rot-live"
    for d in (old, new):
        rc, o, e = run_paved(paved, ["certs", "--out", str(d), "--host", HOST], timeout=60)
        if rc != 0:
            res.fail(name, ["paved certs: %s %s" % (clip(o, 200), clip(e, 200))])
            return
    live.mkdir(exist_ok=True)
    for f in ("ca.crt", "tls.crt", "tls.key"):
        shutil.copy(old / f, live / f)
    srv = Server(paved, tmp, "rotation", tmp / "rotation.db", config, live)
    why = srv.start()
    if why:
        res.fail(name, ["the server did not start: " + why])
        return
    reasons = []

    def answers(cafile):
        try:
            r = http_request(srv.port, client_context(str(cafile)), "GET", "/healthz",
                             timeout=5.0)
            return r.status == 200
        except (OSError, http.client.HTTPException):
            return False

    try:
        # A broken replacement first: rejected, the old pair keeps serving.
        (live / "tls.crt").write_text("not a certificate\n")
        time.sleep(2.5)
        if not answers(old / "ca.crt"):
            reasons.append("after a broken certificate file the old certificate no longer serves")
        for f in ("tls.key", "tls.crt"):
            shutil.copy(new / f, live / (f + ".tmp"))
            os.replace(live / (f + ".tmp"), live / f)
        ok = False
        for _ in range(50):
            if answers(new / "ca.crt"):
                ok = True
                break
            time.sleep(0.2)
        if not ok:
            reasons.append("the new certificate was not served within 10 s")
        if answers(old / "ca.crt"):
            reasons.append("the old certificate is still served")
        if "new certificate rejected" not in srv.log_text():
            reasons.append("the broken replacement was not reported in the log")
    finally:
        rc, secs = srv.terminate(10.0)
    res.check(name, reasons)


def check_backup(paved, tmp, config, certs, golden, res):
    """paved audit backup copies the store while the server keeps deciding; each copy
    verifies and holds every decision answered before the copy began."""
    name = "backup: paved audit backup while serving gives copies that verify"
    if not res.want(name):
        return
    srv = Server(paved, tmp, "backup", tmp / "backup.db", config, certs)
    why = srv.start()
    if why:
        res.fail(name, ["the server did not start: " + why])
        return
    reasons, answered, stop = [], [], [False]

    def load():
        for i in range(2000):
            if stop[0]:
                return
            try:
                r = srv.request("POST", "/k8s/validate", review_bytes(golden, "bk-%d" % i))
                did = decision_id_of(json.loads(r.body))
                if did:
                    answered.append(did)
            except (OSError, http.client.HTTPException, ValueError):
                return

    t = threading.Thread(target=load)
    t.start()
    copies = 0
    try:
        for k in range(3):
            time.sleep(0.3)
            before = list(answered)
            out = tmp / ("backup-%d.db" % k)
            rc, o, e = run_paved(paved, ["audit", "backup", "--db", str(srv.db), "--out",
                                         str(out)], timeout=60)
            if rc != 0 or "chain ok" not in o:
                reasons.append("backup %d: exit %s %s %s" % (k, rc, clip(o, 200), clip(e, 200)))
                continue
            missing = [d for d in before if d not in audit_rows(out, before)]
            if missing:
                reasons.append("backup %d lacks %d decisions answered before it began, e.g. %s"
                               % (k, len(missing), missing[:2]))
            copies += 1
    finally:
        stop[0] = True
        t.join(30)
        srv.terminate(10.0)
    rc, o, e = audit_verify(paved, srv.db)
    if rc != 0:
        reasons.append("the live store no longer verifies: %s %s" % (clip(o, 200), clip(e, 200)))
    res.check(name, reasons, note="%d copies while %d decisions were answered" %
              (copies, len(answered)))


def check_crash(paved, tmp, config, certs, golden, privileged, res):
    names = ["crash: every decision id a client received survives kill -9",
             "crash: audit verify passes after kill -9 and restart",
             "crash: the restarted server keeps deciding and the chain stays valid"]
    if not any(res.want(n) for n in names):
        return
    db = tmp / "crash.db"
    a = Server(paved, tmp, "crash-a", db, config, certs)
    why = a.start()
    if why:
        res.fail(names[0], ["the server did not start: " + why])
        return
    n_threads = 8
    received = []
    errors = []
    sent = [0]
    lock = threading.Lock()
    killed = threading.Event()
    t_start = time.monotonic()
    t_end = t_start + 3.0

    def worker(t):
        ka = KeepAlive(a.port, a.ctx, timeout=10.0)
        try:
            for i in range(100000):
                if killed.is_set() or time.monotonic() > t_end:
                    return
                uid = "it-crash-%d-%d" % (t, i)
                body = review_bytes(privileged if i % 3 == 2 else golden, uid)
                try:
                    with lock:
                        sent[0] += 1
                    st, data = ka.post("/k8s/validate", body)
                except (OSError, http.client.HTTPException) as e:
                    if killed.is_set():
                        return
                    with lock:
                        errors.append("%s: %r" % (uid, e))
                    time.sleep(0.01)
                    continue
                try:
                    did = decision_id_of(json.loads(data)) if st == 200 else None
                except ValueError:
                    did = None
                if did is not None:
                    with lock:
                        received.append((did, uid))
        finally:
            ka.close()

    ts = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(n_threads)]
    for t in ts:
        t.start()
    time.sleep(1.5)
    with lock:
        n_before_kill = len(received)
    killed.set()  # first: an error after this point is the kill, not a server failure
    os.kill(a.proc.pid, signal.SIGKILL)
    for t in ts:
        t.join(20)
    try:
        a.proc.wait(10)
    except subprocess.TimeoutExpired:
        pass
    ids = dict(received)

    b = Server(paved, tmp, "crash-b", db, config, certs)
    why = b.start()
    reasons = []
    if why:
        res.fail(names[0], ["the server did not restart on the store after kill -9: " + why])
        return
    if n_before_kill == 0:
        reasons.append("no decision was received in the 1.5 s before the kill (%d sent, "
                       "errors: %s)" % (sent[0], errors[:3]))
    try:
        rows = audit_rows(db, ids)
        missing = [(d, ids[d]) for d in ids if d not in rows]
        if missing:
            reasons.append("%d of %d acknowledged decisions are not in the store, e.g. %s" %
                           (len(missing), len(ids), missing[:5]))
    except sqlite3.Error as e:
        reasons.append("cannot read the store: %s" % e)
    if errors:
        reasons.append("%d request errors before the kill, e.g. %s" % (len(errors), errors[:3]))
    if res.want(names[0]):
        res.check(names[0], reasons, note="%d decisions acknowledged, %d requests sent" %
                  (len(ids), sent[0]))

    if res.want(names[1]):
        rc, out, err = audit_verify(paved, db)
        res.check(names[1], [] if rc == 0 else ["exit %s: %s %s" % (rc, clip(out, 400),
                                                                     clip(err, 400))],
                  "paved audit verify" if missing_command(out + err) else None)

    if res.want(names[2]):
        r = []
        new_ids = []
        for i in range(20):
            try:
                resp = b.request("POST", "/k8s/validate",
                                 review_bytes(golden if i % 2 else privileged, "it-after-%d" % i))
                did = decision_id_of(resp.json)
                if resp.status != 200 or did is None:
                    r.append("it-after-%d: %d %s" % (i, resp.status, clip(resp.body, 200)))
                else:
                    new_ids.append(did)
            except (OSError, http.client.HTTPException) as e:
                r.append("it-after-%d: %r" % (i, e))
                break
        rc, secs = b.terminate(10.0)
        if rc != 0:
            r.append("SIGTERM: exit status %s after %.1f s\n%s" % (rc, secs, b.log_tail(8)))
        try:
            rows = audit_rows(db, new_ids)
            if len(rows) != len(new_ids):
                r.append("%d of %d new decisions not stored" % (len(new_ids) - len(rows),
                                                                len(new_ids)))
        except sqlite3.Error as e:
            r.append("cannot read the store: %s" % e)
        rc, out, err = audit_verify(paved, db)
        if rc != 0:
            r.append("audit verify: exit %s: %s %s" % (rc, clip(out, 400), clip(err, 400)))
        res.check(names[2], r, "paved audit verify" if missing_command(out + err) else None)
    b.terminate(10.0)


# ---------------------------------------------------------------------------------
# Setup and main


def write_config(tmp, name="paved.yaml"):
    default = (ROOT / "policies" / "default.yaml").read_text("utf-8")
    lines = [default.rstrip("\n"), "", "# ---- added by tests/integration/run.py ----",
             "server:", "  connection_timeout_s: %d" % CONN_TIMEOUT_S, "tokens:"]
    for var, (name, role, secret) in TOKENS.items():
        lines.append("  - {name: %s, role: %s, sha256: %s}" %
                     (name, role, hashlib.sha256(secret.encode()).hexdigest()))
    p = tmp / name
    p.write_text("\n".join(lines) + "\n")
    return p


def main():
    pattern = sys.argv[1] if len(sys.argv) > 1 else ""
    res = Results(pattern)
    paved = Path(os.environ.get("PAVED", str(ROOT / "build" / "paved")))
    if not paved.is_absolute():
        paved = (Path.cwd() / paved) if (Path.cwd() / paved).exists() else (ROOT / paved)
    tmp = Path(tempfile.mkdtemp(prefix="paved-it."))
    keep = os.environ.get("PAVED_IT_KEEP") == "1"

    def watchdog():
        print("FAIL - watchdog: the run took longer than %d s; stopping" % WATCHDOG_S, flush=True)
        for s in Server.all:
            s.kill9()
        print("%d passed, %d failed" % (res.passed, res.failed + 1), flush=True)
        os._exit(1)

    dog = threading.Timer(WATCHDOG_S, watchdog)
    dog.daemon = True
    dog.start()
    try:
        return run_all(res, paved, tmp)
    finally:
        dog.cancel()
        for s in Server.all:
            s.kill9()
        if keep:
            print("# kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def setup_fail(res, what, feature=None):
    res.fail("setup: " + what.splitlines()[0], what.splitlines()[1:], feature)
    print("%d passed, %d failed" % (res.passed, res.failed))
    return 1


def run_all(res, paved, tmp):
    t_run = time.monotonic()
    if not os.access(str(paved), os.X_OK):
        return setup_fail(res, "%s is not an executable (build it with make)" % paved)
    certs = tmp / "certs"
    try:
        rc, out, err = run_paved(paved, ["certs", "--out", str(certs), "--host", HOST], timeout=60)
    except subprocess.TimeoutExpired:
        return setup_fail(res, "paved certs did not finish within 60 s")
    missing = [f for f in ("ca.crt", "tls.crt", "tls.key") if not (certs / f).is_file()]
    if rc != 0 or missing:
        return setup_fail(res, "paved certs --out DIR --host %s: exit %s, missing %s\n%s\n%s" %
                          (HOST, rc, missing, clip(out, 400), clip(err, 400)),
                          "paved certs" if missing_command(out + err) else None)
    config = write_config(tmp)
    try:
        cases = [parse_case(p) for p in sorted(CASES.glob("*.case"))]
    except (ValueError, OSError) as e:
        return setup_fail(res, "cases: %s" % e)
    golden = load_example_review("review-golden.json")
    privileged = load_example_review("review-privileged.json")

    srv = Server(paved, tmp, "main", tmp / "paved.db", config, certs)
    why = srv.start()
    if why and "TLS verification" in why:
        res.fail("tls: the certificate of paved certs verifies for %s" % HOST, [why])
        return setup_fail(res, "cannot talk to the server over verified TLS")
    if why:
        return setup_fail(res, "paved serve did not start: " + why)
    if res.want("tls: the certificate"):
        res.ok("tls: the certificate of paved certs verifies for %s" % HOST)

    for c in cases:
        if res.want(c["file"]) or res.want(c["name"]):
            run_case(srv, c, res)
    check_tls(srv, res)
    check_metrics_and_logs(srv, res, golden, privileged)
    check_load(srv, res, golden, privileged)
    check_parity(srv, res, paved, config, tmp)
    check_slow_clients(srv, res, golden)
    check_chunked_limit(srv, res)

    # A few more decisions, so that the store checks below have rows even when PATTERN
    # selected few checks.
    for i in range(10):
        try:
            srv.request("POST", "/k8s/validate",
                        review_bytes(privileged if i % 2 else golden, "it-fill-%d" % i))
        except (OSError, http.client.HTTPException):
            break

    name = "shutdown: SIGTERM stops the server with exit status 0 within 10 s"
    rc, secs = srv.terminate(10.0)
    if res.want(name) or rc != 0:
        res.check(name, [] if rc == 0 else ["exit status %s after %.1f s (None: still running, "
                                            "killed)\n%s" % (rc, secs, srv.log_tail(10))],
                  note="%.2f s" % secs)

    check_verify_and_tamper(paved, srv.db, tmp, res)
    check_reload(paved, tmp, certs, golden, res)
    check_crash(paved, tmp, config, certs, golden, privileged, res)
    check_full_disk(paved, tmp, config, certs, golden, res)
    check_backup(paved, tmp, config, certs, golden, res)
    check_cert_rotation(paved, tmp, config, res)
    check_sanitizers(Server.all, res)

    print("# %.1f s" % (time.monotonic() - t_run))
    print("%d passed, %d failed" % (res.passed, res.failed))
    return 1 if res.failed else 0


if __name__ == "__main__":
    sys.exit(main())
