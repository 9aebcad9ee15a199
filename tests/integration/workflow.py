#!/usr/bin/env python3
"""tests/integration/workflow.py: the exception workflow, break-glass and outbound
notifications against the real server (issue 4), with a real HTTP receiver on loopback.

Starts `paved-test serve` (the paved binary with the test clock compiled in: the file
named by PAVED_TEST_CLOCK holds seconds added to the wall clock, so expiry and reminders
are tested without waiting days; the production binary has no such override) over
HTTPS with a temporary SQLite store, two approvers, a requester, a CI token, a reader
and an admin, and a notification endpoint pointing at a receiver thread in this
process that records every POST and checks its HMAC signature.

  request -> pending notification -> approve by another token -> the same
  AdmissionReview is allowed with path "exception" -> revoke -> denied again;
  refusals (self-approval, no role, over the cap, a policy that allows none,
  malformed requests); self-service; break-glass; expiry and reminders with the test
  clock; the receiver down: retries, then delivery after it comes back, across a
  server restart; the CLI (paved exceptions, paved check --exceptions, paved notify);
  and `paved audit verify` on the database that went through every transition.

Run:  PAVED=build/paved PAVED_TEST=build/release/paved-test python3 tests/integration/workflow.py [PATTERN]
Prints "ok - NAME" / "FAIL - NAME" lines and last "N passed, N failed".
"""

import copy
import hashlib
import hmac
import http.server
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as it  # noqa: E402  (the server harness of the main integration suite)

ROOT = it.ROOT
SECRET = "hook-secret-6c1d2e"
WATCHDOG_S = 240

TOKENS = {
    "alice": ("approver", "tok-alice-approver-41"),
    "bob": ("approver", "tok-bob-approver-77"),
    "svc": ("ci", "tok-svc-ci-93"),
    "dash": ("reader", "tok-dash-reader-12"),
    "root": ("admin", "tok-root-admin-55"),
    "svcpay": ("ci", "tok-svcpay-ci-66"),
}
TOKEN_TEAMS = {"svcpay": ["payments"]}


def auth(name):
    return {"Authorization": "Bearer " + TOKENS[name][1]}


# ---------------------------------------------------------------------------------
# The notification receiver: a real HTTP server on loopback


class Receiver:
    """Records POSTs; answers `status` (200 by default). stop()/start() on one port."""

    def __init__(self):
        self.port = it.free_port()
        self.got = []
        self.status = 200
        self.lock = threading.Lock()
        self.httpd = None

    def start(self):
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                ts = self.headers.get("X-Paved-Timestamp", "")
                sig = self.headers.get("X-Paved-Signature", "")
                want = "sha256=" + hmac.new(SECRET.encode(), ts.encode() + b"." + body,
                                            hashlib.sha256).hexdigest()
                entry = {"event": self.headers.get("X-Paved-Event"), "delivery":
                         self.headers.get("X-Paved-Delivery"), "sig_ok":
                         hmac.compare_digest(sig, want), "body": body}
                try:
                    entry["json"] = json.loads(body)
                except ValueError:
                    entry["json"] = None
                with rec.lock:
                    status = rec.status
                    if status == 200:
                        rec.got.append(entry)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer((it.HOST, self.port), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def events(self, name=None):
        with self.lock:
            return [g for g in self.got if name is None or g["event"] == name]

    def wait_for(self, pred, timeout=15.0):
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / 0.1) + 1):
            with self.lock:
                hit = [g for g in self.got if pred(g)]
            if hit:
                return hit[0]
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        return None


# ---------------------------------------------------------------------------------
# Set-up


def write_config(tmp, receiver_port):
    default = (ROOT / "policies" / "default.yaml").read_text("utf-8")
    lines = [default.rstrip("\n"), "",
             "server:", "  connection_timeout_s: 5",
             "exceptions:", "  remind_days: 3",
             "breakglass:", "  max_duration: 1h",
             "notifications:", "  max_attempts: 50", "  backoff_initial_ms: 100",
             "  backoff_max_ms: 400", "  endpoints:",
             "    - name: receiver",
             "      url: http://%s:%d/hook" % (it.HOST, receiver_port),
             "      allow_http: true", "      secret_env: PAVED_WF_HOOK_SECRET",
             "      slack: true", "      timeout_ms: 2000",
             "      policies: [cost-tags]",
             "tokens:"]
    for name, (role, secret) in TOKENS.items():
        teams = ", teams: [%s]" % ", ".join(TOKEN_TEAMS[name]) if name in TOKEN_TEAMS else ""
        lines.append("  - {name: %s, role: %s, sha256: %s%s}" %
                     (name, role, hashlib.sha256(secret.encode()).hexdigest(), teams))
    p = tmp / "paved.yaml"
    p.write_text("\n".join(lines) + "\n")
    return p


def review(uid, drop_cost_center=True, namespace="shop"):
    doc = it.load_example_review("review-golden.json")
    doc = copy.deepcopy(doc)
    doc["request"]["uid"] = uid
    obj = doc["request"]["object"]
    if drop_cost_center:
        obj["metadata"]["labels"].pop("cost-center", None)
        obj["spec"]["template"]["metadata"]["labels"].pop("cost-center", None)
    doc["request"]["namespace"] = namespace
    obj["metadata"]["namespace"] = namespace
    return json.dumps(doc).encode()


def validate(srv, uid, **kw):
    r = srv.request("POST", "/k8s/validate", review(uid, **kw))
    resp = (r.json or {}).get("response", {})
    return r, resp


def api(srv, method, path, who, body=None):
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    hdrs = dict(auth(who)) if who else {}
    return srv.request(method, path, data, hdrs)


def set_clock(path, seconds):
    path.write_text("%d\n" % seconds)


# ---------------------------------------------------------------------------------
# The checks


def check_workflow(srv, rcv, res, ctx):
    exc_req = {"team": "payments", "service": "checkout", "namespace": "shop",
               "policies": ["cost-tags"], "justification": "cost center is being migrated",
               "ticket": "https://tickets.example/PAY-7", "duration": "7d"}

    name = "workflow: a cost-tags denial names the policy, the fix and the exact exception command"
    r, resp = validate(srv, "wf-1")
    msg = resp.get("status", {}).get("message", "")
    want = "paved exceptions request --team payments --service checkout --namespace shop " \
           "--policy cost-tags"
    res.check(name, [] if resp.get("allowed") is False and "cost-center" in msg and want in msg
              else ["allowed=%r message=%r" % (resp.get("allowed"), msg[:500])])

    name = "workflow: request (201 pending), exception.requested delivered with a valid HMAC"
    r = api(srv, "POST", "/v1/exceptions", "alice", exc_req)
    x = (r.json or {}).get("exception", {})
    ctx["exc"] = x.get("id")
    got = rcv.wait_for(lambda g: g["event"] == "exception.requested" and
                       (g["json"] or {}).get("exception", {}).get("id") == ctx["exc"])
    why = []
    if r.status != 201 or x.get("state") != "pending" or not str(x.get("id", "")).startswith("EXC-"):
        why.append("POST /v1/exceptions: %d %s" % (r.status, it.clip(r.body)))
    if got is None:
        why.append("no exception.requested at the receiver: %r" % rcv.events())
    elif not got["sig_ok"] or "text" not in got["json"] or not got["delivery"]:
        why.append("bad delivery: sig_ok=%s json=%r" % (got["sig_ok"], got["json"]))
    res.check(name, why)

    name = "workflow: the requester cannot approve their own exception (403, separation of duties)"
    r = api(srv, "POST", "/v1/exceptions/%s/approve" % ctx["exc"], "alice", {})
    res.check(name, [] if r.status == 403 and b"separation of duties" in r.body
              else ["%d %s" % (r.status, it.clip(r.body))])

    name = "workflow: approval without the approver role is refused (403)"
    r = api(srv, "POST", "/v1/exceptions/%s/approve" % ctx["exc"], "svc", {})
    r2 = api(srv, "POST", "/v1/exceptions/%s/approve" % ctx["exc"], "dash", {})
    res.check(name, [] if r.status == 403 and r2.status == 403
              else ["ci: %d %s; reader: %d" % (r.status, it.clip(r.body), r2.status)])

    name = "workflow: another approver approves; exception.approved delivered"
    r = api(srv, "POST", "/v1/exceptions/%s/approve" % ctx["exc"], "bob", {"reason": "ok until Q1"})
    x = (r.json or {}).get("exception", {})
    got = rcv.wait_for(lambda g: g["event"] == "exception.approved" and
                       (g["json"] or {}).get("exception", {}).get("id") == ctx["exc"])
    res.check(name, [] if r.status == 200 and x.get("state") == "approved" and
              x.get("decided_by") == "bob" and x.get("expires_ms") and got
              else ["%d %s; receiver: %s" % (r.status, it.clip(r.body), bool(got))])

    name = "workflow: approving twice is a conflict (409)"
    r = api(srv, "POST", "/v1/exceptions/%s/approve" % ctx["exc"], "bob", {})
    res.check(name, [] if r.status == 409 else ["%d %s" % (r.status, it.clip(r.body))])

    name = "workflow: the same AdmissionReview is now allowed with path exception, and warns"
    r, resp = validate(srv, "wf-2")
    ann = resp.get("auditAnnotations", {})
    warns = " ".join(resp.get("warnings", []))
    did = ann.get("paved.dev/decision-id")
    rows = it.audit_rows(srv.db, [did]) if did else {}
    row = rows.get(did, {})
    why = []
    if resp.get("allowed") is not True or ann.get("paved.dev/path") != "exception":
        why.append("allowed=%r path=%r" % (resp.get("allowed"), ann.get("paved.dev/path")))
    if "allowed by exception %s until" % ctx["exc"] not in warns:
        why.append("warnings: %r" % warns[:400])
    if row.get("path") != "exception" or ctx["exc"] not in (row.get("violations") or ""):
        why.append("audit row: %r" % {k: row.get(k) for k in ("path", "violations")})
    res.check(name, why)

    name = "workflow: GET /v1/exceptions/{id} lists its events (requested, approved) in the chain"
    r = api(srv, "GET", "/v1/exceptions/%s" % ctx["exc"], "dash")
    ev = [e.get("event") for e in (r.json or {}).get("exception", {}).get("events", [])]
    res.check(name, [] if r.status == 200 and ev == ["exception.requested", "exception.approved"]
              else ["%d events %r" % (r.status, ev)])

    name = "workflow: list filters by state, team, policy and expiring_within"
    a = api(srv, "GET", "/v1/exceptions?state=approved&team=payments&policy=cost-tags", "dash")
    b = api(srv, "GET", "/v1/exceptions?state=pending", "dash")
    c = api(srv, "GET", "/v1/exceptions?expiring_within=8d", "dash")
    d = api(srv, "GET", "/v1/exceptions?expiring_within=1d", "dash")
    ids = lambda resp: [e["id"] for e in (resp.json or {}).get("exceptions", [])]  # noqa: E731
    res.check(name, [] if ctx["exc"] in ids(a) and ctx["exc"] not in ids(b) and
              ctx["exc"] in ids(c) and ctx["exc"] not in ids(d)
              else ["approved %r pending %r 8d %r 1d %r" % (ids(a), ids(b), ids(c), ids(d))])

    name = "workflow: paved exceptions list --format json + paved check --exceptions decide as the cluster"
    why = []
    env = dict(os.environ, PAVED_TOKEN=TOKENS["dash"][1])
    p = subprocess.run([str(ctx["paved"]), "exceptions", "list", "--server",
                        "https://%s:%d" % (it.HOST, srv.port), "--cacert",
                        str(srv.certs / "ca.crt"), "--state", "approved", "--format", "json"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=30)
    exc_file = ctx["tmp"] / "exceptions.json"
    exc_file.write_bytes(p.stdout)
    manifest = ctx["tmp"] / "checkout.json"
    manifest.write_text(json.dumps(json.loads(review("x"))["request"]["object"]))
    c1 = subprocess.run([str(ctx["paved"]), "check", str(manifest)], stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, timeout=30)
    c2 = subprocess.run([str(ctx["paved"]), "check", "--exceptions", str(exc_file), "--format",
                         "json", str(manifest)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        timeout=30)
    if p.returncode != 0:
        why.append("exceptions list: %d %s" % (p.returncode, it.clip(p.stderr)))
    if c1.returncode != 1 or b"paved exceptions request --team payments" not in c1.stdout:
        why.append("check without exceptions: %d %s" % (c1.returncode, it.clip(c1.stdout)))
    try:
        obj = json.loads(c2.stdout)["objects"][0]
    except (ValueError, KeyError, IndexError):
        obj = {}
    if c2.returncode != 0 or obj.get("path") != "exception":
        why.append("check --exceptions: %d %s %s" % (c2.returncode, it.clip(c2.stdout),
                                                      it.clip(c2.stderr)))
    res.check(name, why)

    name = "workflow: revoke; the same AdmissionReview is denied again; exception.revoked delivered"
    r = api(srv, "POST", "/v1/exceptions/%s/revoke" % ctx["exc"], "bob", {"reason": "migrated"})
    _, resp = validate(srv, "wf-3")
    got = rcv.wait_for(lambda g: g["event"] == "exception.revoked")
    res.check(name, [] if r.status == 200 and (r.json or {}).get("exception", {}).get("state") ==
              "revoked" and resp.get("allowed") is False and got
              else ["revoke %d %s; allowed=%r; receiver %s" % (r.status, it.clip(r.body),
                                                               resp.get("allowed"), bool(got))])

    name = "workflow: a denial of a watched policy is delivered as decision.denied"
    got = rcv.wait_for(lambda g: g["event"] == "decision.denied" and "cost-tags" in
                       (g["json"] or {}).get("decision", {}).get("policies", []))
    res.check(name, [] if got and got["sig_ok"] else ["receiver: %r" % rcv.events()[-3:]])


def check_refusals(srv, res):
    base = {"team": "payments", "service": "checkout", "policies": ["cost-tags"],
            "justification": "why", "duration": "7d"}
    cases = [
        ("duration over the policy's cap (cost-tags: 30 days)", "svc",
         dict(base, duration="45d"), 422, b"30-day cap"),
        ("a policy that allows no exceptions", "svc",
         dict(base, policies=["disallow-anonymous"]), 422, b"allows no exceptions"),
        ("a policy this server does not enforce", "svc",
         dict(base, policies=["no-such-policy"]), 422, b"not enforced"),
        ("missing justification", "svc",
         {k: v for k, v in base.items() if k != "justification"}, 400, b"justification"),
        ("an unknown field", "svc", dict(base, colour="red"), 400, b"unknown field"),
        ("a wrong type", "svc", dict(base, team=7), 400, b"team"),
        ("a bad duration", "svc", dict(base, duration="7 days"), 400, b"duration"),
        ("malformed JSON", "svc", b"{\"team\": ", 400, b"JSON object"),
        ("a reader token", "dash", base, 403, b"role"),
        ("a token limited to other teams", "svcpay", dict(base, team="search"), 403,
         b"may not act"),
        ("no token", None, base, 401, b"token"),
    ]
    for what, who, body, status, text in cases:
        name = "refusal: exception request with %s answers %d" % (what, status)
        r = api(srv, "POST", "/v1/exceptions", who, body)
        res.check(name, [] if r.status == status and text in r.body
                  else ["%d %s" % (r.status, it.clip(r.body))])
    name = "refusal: approve an unknown exception answers 404; deny without reason 400"
    r = api(srv, "POST", "/v1/exceptions/EXC-NOPE/approve", "bob", {})
    r2 = api(srv, "POST", "/v1/exceptions/EXC-NOPE/deny", "bob", {})
    res.check(name, [] if r.status == 404 and r2.status == 400
              else ["approve %d, deny %d %s" % (r.status, r2.status, it.clip(r2.body))])

    name = "refusal: deny a pending request (with reason) -> denied; then approve is 409"
    r = api(srv, "POST", "/v1/exceptions", "svc", base)
    xid = (r.json or {}).get("exception", {}).get("id", "?")
    d = api(srv, "POST", "/v1/exceptions/%s/deny" % xid, "bob", {"reason": "fix it instead"})
    a = api(srv, "POST", "/v1/exceptions/%s/approve" % xid, "alice", {})
    res.check(name, [] if d.status == 200 and (d.json or {}).get("exception", {}).get("state") ==
              "denied" and a.status == 409
              else ["deny %d %s; approve %d" % (d.status, it.clip(d.body), a.status)])

    name = "self-service: required-probes approves at once, still recorded as an exception"
    r = api(srv, "POST", "/v1/exceptions", "svc",
            dict(base, policies=["required-probes"], duration="3d"))
    x = (r.json or {}).get("exception", {})
    res.check(name, [] if r.status == 201 and x.get("state") == "approved" and
              x.get("self_service") is True and x.get("decided_by") == "self-service"
              else ["%d %s" % (r.status, it.clip(r.body))])


def check_breakglass(srv, rcv, res, ctx):
    name = "break-glass: only admin may start it (403 for an approver)"
    body = {"duration": "30m", "reason": "incident 42: cost labels service down",
            "namespaces": ["shop"]}
    r = api(srv, "POST", "/v1/breakglass", "bob", body)
    res.check(name, [] if r.status == 403 else ["%d %s" % (r.status, it.clip(r.body))])

    name = "break-glass: a duration over breakglass.max_duration is refused (422)"
    r = api(srv, "POST", "/v1/breakglass", "root", dict(body, duration="2h"))
    res.check(name, [] if r.status == 422 else ["%d %s" % (r.status, it.clip(r.body))])

    name = "break-glass: while open, denials in scope are warnings with path breakglass"
    r = api(srv, "POST", "/v1/breakglass", "root", body)
    bg = (r.json or {}).get("breakglass", {})
    ctx["bg"] = bg.get("id")
    _, resp = validate(srv, "wf-bg-1")
    _, other = validate(srv, "wf-bg-2", namespace="billing")
    ann = resp.get("auditAnnotations", {})
    warns = " ".join(resp.get("warnings", []))
    started = rcv.wait_for(lambda g: g["event"] == "breakglass.started")
    why = []
    if r.status != 201 or not bg.get("active"):
        why.append("start: %d %s" % (r.status, it.clip(r.body)))
    if resp.get("allowed") is not True or ann.get("paved.dev/path") != "breakglass" or \
            "BREAK-GLASS" not in warns:
        why.append("in scope: allowed=%r path=%r warnings=%r" %
                   (resp.get("allowed"), ann.get("paved.dev/path"), warns[:300]))
    if other.get("allowed") is not False:
        why.append("namespace billing is out of scope but allowed=%r" % other.get("allowed"))
    if started is None:
        why.append("no breakglass.started at the receiver")
    res.check(name, why)

    name = "break-glass: ending it restores denials; breakglass.ended delivered"
    r = api(srv, "POST", "/v1/breakglass/%s/end" % ctx["bg"], "root", {})
    _, resp = validate(srv, "wf-bg-3")
    ended = rcv.wait_for(lambda g: g["event"] == "breakglass.ended")
    res.check(name, [] if r.status == 200 and resp.get("allowed") is False and ended
              else ["end %d %s allowed=%r ended=%s" % (r.status, it.clip(r.body),
                                                       resp.get("allowed"), bool(ended))])


def check_clock(srv, rcv, res, ctx):
    """Expiry and reminders with the test clock (paved-test)."""
    clock = ctx["clock"]
    req = {"team": "payments", "service": "checkout", "namespace": "shop",
           "policies": ["cost-tags"], "justification": "short one", "duration": "5d"}
    r = api(srv, "POST", "/v1/exceptions", "svc", req)
    xid = (r.json or {}).get("exception", {}).get("id", "?")
    api(srv, "POST", "/v1/exceptions/%s/approve" % xid, "alice", {})
    _, before = validate(srv, "wf-clock-1")

    name = "clock: the reminder goes out remind_days before the expiry, once"
    set_clock(clock, 2 * 86400 + 3600)  # 2d1h later: 2d23h left, inside the 3 days
    got = rcv.wait_for(lambda g: g["event"] == "exception.expiring" and
                       (g["json"] or {}).get("exception", {}).get("id") == xid, timeout=15)
    time.sleep(2.5)
    n = len([g for g in rcv.events("exception.expiring")
             if (g["json"] or {}).get("exception", {}).get("id") == xid])
    res.check(name, [] if before.get("allowed") is True and got and n == 1
              else ["allowed before=%r, reminder=%s, count=%d" % (before.get("allowed"),
                                                                   bool(got), n)])

    name = "clock: past the expiry the review is denied and the exception becomes expired"
    set_clock(clock, 6 * 86400)
    _, after = validate(srv, "wf-clock-2")
    got = rcv.wait_for(lambda g: g["event"] == "exception.expired" and
                       (g["json"] or {}).get("exception", {}).get("id") == xid, timeout=15)
    r = api(srv, "GET", "/v1/exceptions/%s" % xid, "dash")
    state = (r.json or {}).get("exception", {}).get("state")
    res.check(name, [] if after.get("allowed") is False and got and state == "expired"
              else ["allowed after=%r, expired event=%s, state=%r" % (after.get("allowed"),
                                                                     bool(got), state)])

    name = "clock: a break-glass window ends by itself"
    r = api(srv, "POST", "/v1/breakglass", "root",
            {"duration": "10m", "reason": "drill", "teams": ["payments"]})
    bid = (r.json or {}).get("breakglass", {}).get("id", "?")
    _, during = validate(srv, "wf-clock-3")
    set_clock(clock, 6 * 86400 + 3600)
    got = rcv.wait_for(lambda g: g["event"] == "breakglass.ended" and
                       (g["json"] or {}).get("breakglass", {}).get("id") == bid, timeout=15)
    _, after = validate(srv, "wf-clock-4")
    res.check(name, [] if during.get("allowed") is True and got and after.get("allowed") is False
              else ["during=%r ended=%s after=%r" % (during.get("allowed"), bool(got),
                                                     after.get("allowed"))])


def outbox_rows(db, event):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
    try:
        return con.execute("SELECT id, state, attempts FROM outbox WHERE event = ? ORDER BY id",
                           (event,)).fetchall()
    finally:
        con.close()


def check_receiver_down(srv, rcv, res, ctx):
    name = "notify: receiver down -> retries; delivered after it is back, across a server restart"
    rcv.stop()
    r = api(srv, "POST", "/v1/exceptions", "svc",
            {"team": "search", "service": "indexer", "policies": ["cost-tags"],
             "justification": "while the receiver is down", "duration": "2d"})
    xid = (r.json or {}).get("exception", {}).get("id", "?")
    deadline = time.monotonic() + 10
    attempts = 0
    while time.monotonic() < deadline:
        rows = [x for x in outbox_rows(srv.db, "exception.requested")]
        attempts = rows[-1][2] if rows else 0
        if attempts >= 2:
            break
        time.sleep(0.1)
    rc, _ = srv.terminate(10.0)
    why = ["attempts before the restart: %d" % attempts] if attempts < 2 else []
    if rc != 0:
        why.append("SIGTERM exit status %r" % rc)
    state_down = outbox_rows(srv.db, "exception.requested")[-1][1]
    if state_down != "pending":
        why.append("outbox state while down: %r" % state_down)
    why_start = srv.start()
    if why_start:
        why.append("restart: " + why_start)
    rcv.start()
    got = rcv.wait_for(lambda g: g["event"] == "exception.requested" and
                       (g["json"] or {}).get("exception", {}).get("id") == xid, timeout=20)
    if got is None:
        why.append("not delivered after the receiver came back")
    elif not got["sig_ok"]:
        why.append("delivered with a bad signature")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and outbox_rows(srv.db, "exception.requested")[-1][1] != \
            "delivered":
        time.sleep(0.1)
    if outbox_rows(srv.db, "exception.requested")[-1][1] != "delivered":
        why.append("outbox row not marked delivered")
    res.check(name, why)

    name = "notify: paved notify list shows the outbox"
    p = subprocess.run([str(ctx["paved"]), "notify", "list", "--db", str(srv.db), "--format",
                        "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    try:
        rows = json.loads(p.stdout)
        rows = rows.get("messages", rows) if isinstance(rows, dict) else rows
    except ValueError:
        rows = None
    res.check(name, [] if p.returncode == 0 and isinstance(rows, list) and len(rows) >= 5
              else ["%d %s %s" % (p.returncode, it.clip(p.stdout), it.clip(p.stderr))])


def check_report(srv, res, ctx):
    name = "report: GET /v1/reports/adoption agrees with paved audit report --format json"
    # Absolute bounds: the server's clock was moved forward by the clock checks.
    r = api(srv, "GET", "/v1/reports/adoption?since=2020-01-01&until=2040-01-01", "dash")
    p = subprocess.run([str(ctx["paved"]), "audit", "report", "--db", str(srv.db), "--since",
                        "2020-01-01", "--until", "2040-01-01", "--format", "json"],
                       stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    why = []
    try:
        api_doc = r.json or {}
        cli_doc = json.loads(p.stdout)
    except ValueError:
        cli_doc = {}
    team = lambda d: [t for t in d.get("teams", []) if t.get("team") == "payments"]  # noqa: E731
    a, c = team(api_doc), team(cli_doc)
    if r.status != 200 or not a:
        why.append("API: %d %s" % (r.status, it.clip(r.body)))
    elif not c:
        why.append("CLI: %d %s %s" % (p.returncode, it.clip(p.stdout), it.clip(p.stderr)))
    else:
        ta, tc = a[0]["total"], c[0]["total"]
        keys = ("new_services", "golden", "exception", "off_road", "denied", "breakglass")
        if any(ta.get(k) != tc.get(k) for k in keys):
            why.append("API %r != CLI %r" % ({k: ta.get(k) for k in keys},
                                              {k: tc.get(k) for k in keys}))
        if ta.get("exception", 0) < 1 or ta.get("denied", 0) < 1 or ta.get("breakglass", 0) < 1:
            why.append("the workflow's decisions are missing: %r" % ta)
        if not any(x.get("policy") == "cost-tags" for x in api_doc.get("top_exception_policies",
                                                                         [])):
            why.append("cost-tags is not among the top exception policies: %r" %
                       api_doc.get("top_exception_policies"))
    res.check(name, why)

    name = "report: /metrics has the adoption and exception gauges"
    deadline = time.monotonic() + 15
    text = ""
    while time.monotonic() < deadline:
        text = srv.request("GET", "/metrics").body.decode()
        if 'paved_adoption_headline_ratio{team="payments"}' in text:
            break
        time.sleep(0.5)
    want = ['paved_adoption_headline_ratio{team="payments"}', "paved_exceptions_active ",
            "paved_breakglass_active ", 'paved_notifications_total{result="delivered"}',
            'paved_decisions_by_path_total{path="exception"}']
    res.check(name, ["missing %s" % w for w in want if w not in text])


def check_chain(srv, res, ctx):
    name = "audit: paved audit verify passes after every transition; events are chained rows"
    rc, out, err = it.audit_verify(ctx["paved"], srv.db)
    con = sqlite3.connect("file:%s?mode=ro" % srv.db, uri=True, timeout=10)
    try:
        kinds = dict(con.execute("SELECT kind, count(*) FROM decisions GROUP BY kind").fetchall())
        # The state each exception event left behind, as the chained rows record it.
        states = set(r[0] for r in con.execute(
            "SELECT DISTINCT decision FROM decisions WHERE kind = 'exception'"))
    finally:
        con.close()
    why = []
    if rc != 0 or "chain ok" not in out:
        why.append("verify: %s %s %s" % (rc, out, err))
    if kinds.get("exception", 0) < 8 or kinds.get("breakglass", 0) < 4:
        why.append("event rows: %r" % kinds)
    for s in ("approved", "denied", "revoked", "expired", "pending"):
        if s not in states:
            why.append("no exception went through %s: %r" % (s, states))
    res.check(name, why)


def main():
    pattern = sys.argv[1] if len(sys.argv) > 1 else ""
    res = it.Results(pattern)
    paved = Path(os.environ.get("PAVED", str(ROOT / "build" / "paved"))).resolve()
    paved_test = Path(os.environ.get("PAVED_TEST", str(paved.parent / "paved-test"))).resolve()
    if not paved_test.exists():
        paved_test = (ROOT / "build" / "release" / "paved-test").resolve()
    tmp = Path(tempfile.mkdtemp(prefix="paved-wf."))
    dog = threading.Timer(WATCHDOG_S, lambda: (print("FAIL - watchdog: over %d s" % WATCHDOG_S),
                                               [s.kill9() for s in it.Server.all],
                                               print("%d passed, %d failed" %
                                                     (res.passed, res.failed + 1)),
                                               os._exit(1)))
    dog.daemon = True
    dog.start()
    rcv = Receiver()
    try:
        rc, out, err = it.run_paved(paved, ["certs", "--out", str(tmp / "certs"), "--host",
                                            it.HOST])
        if rc != 0:
            return it.setup_fail(res, "paved certs failed: %s %s" % (out, err))
        clock = tmp / "clock"
        set_clock(clock, 0)
        os.environ["PAVED_TEST_CLOCK"] = str(clock)
        os.environ["PAVED_WF_HOOK_SECRET"] = SECRET
        rcv.start()
        config = write_config(tmp, rcv.port)
        srv = it.Server(paved_test, tmp, "wf", tmp / "paved.db", config, tmp / "certs")
        why = srv.start()
        if why:
            return it.setup_fail(res, "paved-test serve did not start: " + why)
        ctx = {"paved": paved, "tmp": tmp, "clock": clock}
        check_workflow(srv, rcv, res, ctx)
        check_refusals(srv, res)
        check_breakglass(srv, rcv, res, ctx)
        check_receiver_down(srv, rcv, res, ctx)
        check_clock(srv, rcv, res, ctx)
        check_report(srv, res, ctx)
        srv.terminate(10.0)
        check_chain(srv, res, ctx)
    finally:
        dog.cancel()
        rcv.stop()
        for s in it.Server.all:
            s.kill9()
        if os.environ.get("PAVED_IT_KEEP") == "1":
            print("# kept %s" % tmp)
        else:
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (res.passed, res.failed))
    return 1 if res.failed else 0


if __name__ == "__main__":
    sys.exit(main())
