#!/usr/bin/python3
"""tests/chart/check.py: checks charts/paved without Helm.

What can be checked without rendering:
  - Chart.yaml and values.yaml parse; values.yaml validates against values.schema.json
    (JSON Schema draft-07), and the schema is strict (every object closed, every value
    typed), so a typo in values fails;
  - a table of bad values each fails validation, a few good overrides pass;
  - the invariants of the templates, read from their sources: the webhook
    configurations always exclude kube-system and the release namespace, answer
    admission.k8s.io/v1 without side effects, take timeoutSeconds and failurePolicy
    from values; the Deployment's restricted security context and probes; the
    single-replica guard for SQLite (schema and template `fail`);
  - the keys of the rendered paved.yaml against the key lists of server/config.c (so a
    renamed key in paved fails here), and the default bindings against
    policies/default.yaml;
  - with a paved binary (argument 1), the paved.yaml the chart renders from the
    default values is loaded by paved's own config parser.

Prints "ok - ..." / "FAIL - ..." and ends with "N passed, N failed"; exits 1 on a
failure.
"""
import copy
import json
import os
import re
import subprocess
import sys
import tempfile

try:
    import jsonschema
    import yaml
except ImportError as e:  # the test setup installs python3-jsonschema and python3-yaml
    print("FAIL - python modules missing (%s): apt-get install python3-jsonschema python3-yaml" % e)
    print("0 passed, 1 failed")
    sys.exit(1)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CHART = os.path.join(ROOT, "charts", "paved")
TPL = os.path.join(CHART, "templates")
PAVED = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "paved")

passed = failed = skipped = 0


def ok(cond, what, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok - " + what)
    else:
        failed += 1
        print("FAIL - " + what + ("\n       " + detail if detail else ""))
    return cond


def skip(what):
    global skipped
    skipped += 1
    print("skip - " + what)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def template(name):
    return read(os.path.join(TPL, name))


# ---------------------------------------------------------------- YAML files parse

docs = {}
for name in ("Chart.yaml", "values.yaml"):
    try:
        docs[name] = yaml.safe_load(read(os.path.join(CHART, name)))
        ok(isinstance(docs[name], dict), "%s parses to a mapping" % name)
    except (OSError, yaml.YAMLError) as e:
        ok(False, "%s parses" % name, str(e))
        docs[name] = {}
chart = docs["Chart.yaml"]
values = docs["values.yaml"]

ok(chart.get("apiVersion") == "v2" and chart.get("name") == "paved"
   and chart.get("version") == "0.1.0" and str(chart.get("appVersion")) == "0.1.0",
   "Chart.yaml: apiVersion v2, name paved, version and appVersion 0.1.0")
ok(str(chart.get("kubeVersion", "")).startswith(">=1.25"), "Chart.yaml: kubeVersion >=1.25")

# ---------------------------------------------------------------- the schema

try:
    schema = json.loads(read(os.path.join(CHART, "values.schema.json")))
    jsonschema.Draft7Validator.check_schema(schema)
    ok(schema.get("$schema", "").startswith("http://json-schema.org/draft-07/"),
       "values.schema.json is a valid draft-07 schema")
except (OSError, ValueError, jsonschema.SchemaError) as e:
    ok(False, "values.schema.json is a valid draft-07 schema", str(e))
    schema = {"type": "object"}
validator = jsonschema.Draft7Validator(schema)


def errors(v):
    return sorted(validator.iter_errors(v), key=lambda e: list(e.path))


errs = errors(values)
ok(not errs, "values.yaml validates against values.schema.json",
   "; ".join("%s: %s" % ("/".join(map(str, e.path)), e.message[:160]) for e in errs[:5]))

# Strictness: every object schema closes its properties (additionalProperties false or
# a typed schema); only these free-form places (Kubernetes objects passed through, a
# policy's own params, Helm's global) may stay open.
OPEN_OK = {
    "properties/global",
    "definitions/k8sObject",
    "definitions/binding/properties/params",
}


def walk(node, path, problems):
    if isinstance(node, dict):
        t = node.get("type")
        types = t if isinstance(t, list) else [t]
        if "object" in types:
            ap = node.get("additionalProperties")
            if ap is None or (ap is True and path not in OPEN_OK):
                problems.append(path or "(root)")
        for key, sub in node.get("properties", {}).items():
            if "allOf" in path:  # if/then narrow properties typed elsewhere
                continue
            if not any(k in sub for k in ("type", "$ref", "oneOf", "anyOf", "enum", "const")):
                problems.append(path + "/properties/" + key + " (untyped)")
        for k, sub in node.items():
            if k in ("properties", "definitions"):
                for name, s in sub.items():
                    walk(s, (path + "/" if path else "") + k + "/" + name, problems)
            elif isinstance(sub, (dict, list)) and k != "enum":
                walk(sub, (path + "/" if path else "") + k, problems)
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            walk(sub, "%s/%d" % (path, i), problems)


problems = []
walk(schema, "", problems)
ok(not problems, "values.schema.json: every object closed (additionalProperties), every property typed",
   ", ".join(problems[:8]))


def merged(override):
    """values.yaml with override merged the way Helm merges -f/--set: mappings
    merge, lists and scalars replace, null removes the key."""
    def merge(base, over):
        for k, v in over.items():
            if v is None:
                base.pop(k, None)
            elif isinstance(v, dict) and isinstance(base.get(k), dict):
                merge(base[k], v)
            else:
                base[k] = copy.deepcopy(v)
        return base
    return merge(copy.deepcopy(values), override)


BAD = [
    ("a typo'd top-level key", {"replicaCout": 1}),
    ("a typo'd nested key", {"webhook": {"timeoutSecond": 3}}),
    ("failurePolicy Block", {"webhook": {"validating": {"failurePolicy": "Block"}}}),
    ("mutating failurePolicy lower case", {"webhook": {"mutating": {"failurePolicy": "ignore"}}}),
    ("timeoutSeconds \"3\" as a string", {"webhook": {"timeoutSeconds": "3"}}),
    ("timeoutSeconds 31 (the API server allows 1 to 30)", {"webhook": {"timeoutSeconds": 31}}),
    ("timeoutSeconds 0", {"webhook": {"timeoutSeconds": 0}}),
    ("replicaCount 2 with sqlite", {"replicaCount": 2}),
    ("replicaCount 0", {"replicaCount": 0}),
    ("replicaCount \"1\" as a string", {"replicaCount": "1"}),
    ("tls.mode unknown", {"tls": {"mode": "selfSigned"}}),
    ("tls.mode existingSecret without a secret name or caBundle", {"tls": {"mode": "existingSecret"}}),
    ("negative cpu request", {"resources": {"requests": {"cpu": "-100m"}}}),
    ("negative memory limit as a number", {"resources": {"limits": {"memory": -1}}}),
    ("a resource name typo", {"resources": {"requests": {"cpus": "100m"}}}),
    ("audit.durability fsync", {"config": {"audit": {"durability": "fsync"}}}),
    ("storage.backend postgres (not yet)", {"storage": {"backend": "postgres"}}),
    ("config.server.listen (set by the chart)", {"config": {"server": {"listen": "0.0.0.0:9443"}}}),
    ("config.server unknown key", {"config": {"server": {"request_timeout": 5000}}}),
    ("config.server.threads 0", {"config": {"server": {"threads": 0}}}),
    ("config.audit.queue_max as a string", {"config": {"audit": {"queue_max": "65536"}}}),
    ("config.policy_limits.max_memory_mb above 4096", {"config": {"policy_limits": {"max_memory_mb": 8192}}}),
    ("config top-level typo", {"config": {"binding": []}}),
    ("a binding with an unknown key", {"config": {"bindings": [{"policy": "cost-tags", "enforce": "deny"}]}}),
    ("a binding with enforcement block", {"config": {"bindings": [{"policy": "cost-tags", "enforcement": "block"}]}}),
    ("a binding without policy", {"config": {"bindings": [{"id": "x"}]}}),
    ("a binding match key typo", {"config": {"bindings": [{"policy": "cost-tags", "match": {"excludeNamespaces": ["a"]}}]}}),
    ("a token role root", {"apiTokens": {"tokens": [{"name": "a", "role": "root", "value": "x" * 32}]}}),
    ("a token with value and sha256", {"apiTokens": {"tokens": [{"name": "a", "role": "ci", "value": "x" * 32, "sha256": "a" * 64}]}}),
    ("a token sha256 not hex", {"apiTokens": {"tokens": [{"name": "a", "role": "ci", "sha256": "z" * 64}]}}),
    ("a token name with a slash", {"apiTokens": {"tokens": [{"name": "a/b", "role": "ci", "value": "x" * 32}]}}),
    ("excludedNamespaces as a string", {"webhook": {"excludedNamespaces": "team-a"}}),
    ("a matchCondition without expression", {"webhook": {"validating": {"matchConditions": [{"name": "x"}]}}}),
    ("a webhook rule with operation PATCH", {"webhook": {"validating": {"rules": [
        {"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "operations": ["PATCH"]}]}}}),
    ("empty validating rules", {"webhook": {"validating": {"rules": []}}}),
    ("a policy file not ending in .lua", {"policies": {"my-policy.txt": "return {}"}}),
    ("persistence.size 5GB", {"storage": {"persistence": {"size": "5GB"}}}),
    ("image.pullPolicy sometimes", {"image": {"pullPolicy": "Sometimes"}}),
    ("podDisruptionBudget.maxUnavailable 0", {"podDisruptionBudget": {"maxUnavailable": 0}}),
    ("a toleration with an unknown key", {"tolerations": [{"key": "a", "operatr": "Exists"}]}),
    ("serviceMonitor.enabled \"true\" as a string", {"serviceMonitor": {"enabled": "true"}}),
    ("networkPolicy ingressFrom peer typo", {"networkPolicy": {"ingressFrom": [{"podSelectr": {}}]}}),
]
for what, override in BAD:
    ok(errors(merged(override)), "schema rejects " + what)

GOOD = [
    ("replicaCount 1", {"replicaCount": 1}),
    ("validating failurePolicy Ignore", {"webhook": {"validating": {"failurePolicy": "Ignore"}}}),
    ("matchConditions given", {"webhook": {"validating": {"matchConditions": [
        {"name": "not-node-users", "expression": '!request.userInfo.username.startsWith("system:node:")'}]}}}),
    ("extra excluded namespaces and a namespace label condition", {"webhook": {
        "excludedNamespaces": ["cert-manager", "monitoring"],
        "namespaceSelector": {"matchExpressions": [{"key": "paved.dev/ignore", "operator": "DoesNotExist"}]}}}),
    ("tls.mode chart", {"tls": {"mode": "chart"}}),
    ("tls.mode existingSecret with name and caBundle", {"tls": {"mode": "existingSecret",
        "existingSecret": {"name": "paved-tls", "caBundle": "LS0tLS1CRUdJTg=="}}}),
    ("tokens by value and by sha256", {"apiTokens": {"tokens": [
        {"name": "ci-main", "role": "ci", "value": "a-long-random-token-value"},
        {"name": "ops", "role": "admin", "sha256": "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"}]}}),
    ("audit async, threads 4", {"config": {"audit": {"durability": "async"}, "server": {"threads": 4}}}),
    ("bindings: [] (enforce nothing)", {"config": {"bindings": []}}),
    ("a binding with per-entry enforcement", {"config": {"bindings": [
        {"id": "probes-advice", "policy": "required-probes", "params": {"probes": ["readinessProbe"]},
         "enforcement": {"default": "deny", "admission": "warn", "ci": "deny"}}]}}),
    ("custom policies", {"policies": {"my-policy.lua": "return {id = 'my-policy', check = function() end}"}}),
    ("persistence off, numeric cpu", {"storage": {"persistence": {"enabled": False}},
                                      "resources": {"requests": {"cpu": 0.5}}}),
    ("pdb minAvailable", {"podDisruptionBudget": {"minAvailable": 1}}),
    ("serviceMonitor on with labels", {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}),
]
for what, override in GOOD:
    errs = errors(merged(override))
    ok(not errs, "schema accepts " + what, "; ".join(e.message[:160] for e in errs[:3]))

# ---------------------------------------------------------------- template sources

ACTION = re.compile(r"{{-?\s*(.*?)\s*-?}}", re.S)
OPENERS = ("if", "range", "with", "define", "block")


def balance(text):
    """The {{ }} actions pair up and every if/range/with/define closes with an end."""
    if text.count("{{") != text.count("}}"):
        return "unbalanced {{ }}"
    depth = 0
    for m in ACTION.finditer(text):
        body = m.group(1)
        if body.startswith("/*"):
            if not body.endswith("*/"):
                return "unterminated comment"
            continue
        word = re.match(r"[a-z]*", body).group(0)
        if word in OPENERS:
            depth += 1
        elif word == "end":
            depth -= 1
            if depth < 0:
                return "an end without an opener"
    return "" if depth == 0 else "%d block(s) not closed" % depth


templates = sorted(f for f in os.listdir(TPL) if f.endswith((".yaml", ".tpl", ".txt")))
for name in templates:
    problem = balance(template(name))
    ok(not problem, "templates/%s: actions balanced" % name, problem)

EXPECTED = {"_helpers.tpl", "NOTES.txt", "deployment.yaml", "service.yaml",
            "validatingwebhookconfiguration.yaml", "mutatingwebhookconfiguration.yaml",
            "certificate.yaml", "configmap.yaml", "policies-configmap.yaml", "secret.yaml",
            "pvc.yaml", "pdb.yaml", "networkpolicy.yaml", "servicemonitor.yaml",
            "serviceaccount.yaml", "validate.yaml"}
ok(EXPECTED <= set(templates), "every template is there", ", ".join(sorted(EXPECTED - set(templates))))


def schema_has(path):
    node = schema
    for part in path:
        while "$ref" in node:
            node = schema["definitions"][node["$ref"].split("/")[-1]]
        props = node.get("properties", {})
        if part not in props:
            return False
        node = props[part]
    return True


missing = set()
for name in templates:
    for m in re.finditer(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)", template(name)):
        path = m.group(1).strip(".").split(".")
        if not schema_has(path):
            missing.add("%s: .Values.%s" % (name, ".".join(path)))
ok(not missing, "every .Values path the templates use is declared in the schema", ", ".join(sorted(missing)))


def block_after(text, key, lines=14):
    i = text.find(key)
    return "" if i < 0 else "\n".join(text[i:].splitlines()[:lines])


for name, kind, fp in (("validatingwebhookconfiguration.yaml", "validating", "Fail"),
                       ("mutatingwebhookconfiguration.yaml", "mutating", "Ignore")):
    t = template(name)
    sel = block_after(t, "namespaceSelector:")
    notin = re.search(r"key: kubernetes\.io/metadata\.name\s*\n\s*operator: NotIn\s*\n\s*values:\s*\n(.*)", sel)
    ok(notin is not None and '"kube-system"' in notin.group(1) and ".Release.Namespace" in notin.group(1)
       and ".Values.webhook.excludedNamespaces" in notin.group(1)
       and "{{" not in sel[:sel.find("values:")],
       "%s: namespaceSelector always excludes kube-system and .Release.Namespace (values only add)" % name, sel)
    ok(re.search(r"admissionReviewVersions:\s*\[\s*\"?v1\"?\s*\]", t) is not None,
       "%s: admissionReviewVersions [v1]" % name)
    ok(re.search(r"^\s*sideEffects: None\s*$", t, re.M) is not None, "%s: sideEffects None" % name)
    ok(re.search(r"timeoutSeconds: {{ \.Values\.webhook\.timeoutSeconds }}", t) is not None,
       "%s: timeoutSeconds from values" % name)
    ok(re.search(r"failurePolicy: {{ \.Values\.webhook\.%s\.failurePolicy }}" % kind, t) is not None,
       "%s: failurePolicy from values" % name)
    ok(values.get("webhook", {}).get(kind, {}).get("failurePolicy") == fp,
       "values.yaml: webhook.%s.failurePolicy defaults to %s" % (kind, fp))
    ok(re.search(r"with \.Values\.webhook\.%s\.matchConditions }}\s*\n\s*matchConditions:" % kind, t) is not None,
       "%s: matchConditions rendered only when given" % name)
    ok("/k8s/%s" % ("validate" if kind == "validating" else "mutate") in t, "%s: calls /k8s/%s" % (
        name, "validate" if kind == "validating" else "mutate"))
    ok("paved.webhookAnnotations" in t and "paved.caBundle" in t, "%s: CA injection or caBundle per tls.mode" % name)
    ok(re.search(r"objectSelector:", t) is not None, "%s: objectSelector supported" % name)
ok(values.get("webhook", {}).get("timeoutSeconds") == 3, "values.yaml: webhook.timeoutSeconds defaults to 3")
for p in (["webhook", "validating", "failurePolicy"], ["webhook", "mutating", "failurePolicy"]):
    node = schema["properties"]["webhook"]["properties"][p[1]]["properties"]["failurePolicy"]
    if "$ref" in node:
        node = schema["definitions"][node["$ref"].split("/")[-1]]
    ok(sorted(node.get("enum", [])) == ["Fail", "Ignore"], "schema: %s is Fail or Ignore" % ".".join(p))

rules = values.get("webhook", {}).get("validating", {}).get("rules", [])
sent = {r for rule in rules for r in rule.get("resources", [])}
want = {"pods", "replicationcontrollers", "deployments", "replicasets", "statefulsets", "daemonsets",
        "jobs", "cronjobs", "services", "ingresses", "namespaces", "rolebindings", "clusterrolebindings"}
ok(want <= sent, "values.yaml: the validating webhook is sent pod-bearing kinds, Services, Ingresses, Namespaces, RBAC bindings",
   ", ".join(sorted(want - sent)))

dep = template("deployment.yaml")
for needle, what in (
        ("runAsNonRoot: true", "runAsNonRoot"),
        ("runAsUser: 65532", "runAsUser 65532"),
        ("allowPrivilegeEscalation: false", "allowPrivilegeEscalation false"),
        ("readOnlyRootFilesystem: true", "readOnlyRootFilesystem"),
        ('drop: ["ALL"]', "capabilities drop ALL"),
        ("type: RuntimeDefault", "seccompProfile RuntimeDefault"),
        ("automountServiceAccountToken: false", "no service account token"),
        ("podAntiAffinity:", "podAntiAffinity"),
        ("topologySpreadConstraints:", "topologySpreadConstraints"),
        ("checksum/config:", "a checksum annotation of the config"),
        ("mountPath: /tmp", "an emptyDir for /tmp"),
        ("persistentVolumeClaim:", "the data PVC"),
        ("- --policies", "--policies when custom policies are given")):
    ok(needle in dep, "deployment.yaml: " + what)
ok(re.search(r"securityContext:\s*\n(\s+\S.*\n)*?\s+seccompProfile:\s*\n\s+type: RuntimeDefault", dep) is not None
   and dep.count("type: RuntimeDefault") >= 2, "deployment.yaml: seccompProfile RuntimeDefault on pod and container")
for path, probe in (("/healthz", "livenessProbe"), ("/readyz", "readinessProbe")):
    ok(re.search(r"%s:\s*\n\s+httpGet:\s*\n\s+path: %s\s*\n\s+port: https\s*\n\s+scheme: HTTPS" % (probe, path), dep)
       is not None, "deployment.yaml: %s on %s over HTTPS" % (probe, path))
args = re.search(r"args:\s*\n((?:\s+- .*\n)+)", dep)
args = [a.strip()[2:] for a in args.group(1).splitlines()] if args else []
ok(args[:1] == ["serve"] and all(f in args for f in ("--config", "--tls-cert", "--tls-key", "--db", "--listen")),
   "deployment.yaml: serve --config --tls-cert --tls-key --db --listen", " ".join(args))
ok("--db" in args and args[args.index("--db") + 1] == "/var/lib/paved/paved.db" and
   "--listen" in args and args[args.index("--listen") + 1] == "0.0.0.0:8443",
   "deployment.yaml: --db /var/lib/paved/paved.db --listen 0.0.0.0:8443")
ok(re.search(r'if eq \.Values\.storage\.backend "sqlite" }}(.*\n){1,4}\s+strategy:\s*\n\s+type: Recreate', dep) is not None,
   "deployment.yaml: strategy Recreate with sqlite")

# The single-replica guard for SQLite, twice: schema and template.
guard = [c for c in schema.get("allOf", []) if "if" in c]
ok(any(c["if"].get("properties", {}).get("storage", {}).get("properties", {}).get("backend", {}).get("const") == "sqlite"
       and c.get("then", {}).get("properties", {}).get("replicaCount", {}).get("maximum") == 1 for c in guard),
   "schema: if storage.backend is sqlite then replicaCount maximum 1")
val = template("validate.yaml")
ok(re.search(r'if and \(eq \.Values\.storage\.backend "sqlite"\) \(gt \(int \.Values\.replicaCount\) 1\) }}\s*\n\s*{{-? fail "', val)
   is not None, "validate.yaml: fails on replicaCount > 1 with sqlite")
ok(values.get("replicaCount") == 1 and values.get("storage", {}).get("backend") == "sqlite",
   "values.yaml: one replica, sqlite")
ok(read(os.path.join(TPL, "servicemonitor.yaml")).find('.Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor"') > 0,
   "servicemonitor.yaml: only when the monitoring.coreos.com/v1 API exists")
cert = template("certificate.yaml")
ok(all(s in cert for s in ("selfSigned: {}", "isCA: true", "ca:\n    secretName:", "kind: Certificate", "dnsNames:")),
   "certificate.yaml: self-signed Issuer, CA Certificate, CA Issuer, serving Certificate")
ok("genCA" in read(os.path.join(TPL, "_helpers.tpl")) and "lookup \"v1\" \"Secret\"" in read(os.path.join(TPL, "_helpers.tpl")),
   "_helpers.tpl: chart TLS generated with genCA and kept with lookup")
ok("cert-manager.io/inject-ca-from:" in read(os.path.join(TPL, "_helpers.tpl")), "_helpers.tpl: cert-manager CA injection annotation")
np = template("networkpolicy.yaml")
ok("port: 8443" in np and "port: 53" in np and "- Egress" in np, "networkpolicy.yaml: in on 8443, out DNS only")
notes = template("NOTES.txt")
ok(all(s in notes for s in ("get pods", "port-forward", "/readyz", "kubectl -n default run", "paved audit query --db /var/lib/paved/paved.db")),
   "NOTES.txt: pods, port-forward + /readyz, a denied kubectl run, the audit query")

# ---------------------------------------------------------------- paved.yaml keys vs server/config.c

config_c = read(os.path.join(ROOT, "server", "config.c"))


def c_keys(function, array="keys"):
    """The string list `static const char *const ARRAY[] = {...}` of FUNCTION."""
    m = re.search(r"\n[a-z_ ]*\b%s\(" % re.escape(function), config_c)
    if not m:
        return None
    body = config_c[m.end():]
    a = re.search(r"static const char \*const %s\[\] = \{(.*?)\};" % re.escape(array), body, re.S)
    return set(re.findall(r'"([^"]*)"', a.group(1))) if a else None


allowed = {
    "top": c_keys("config_parse"),
    "server": c_keys("parse_server"),
    "audit": c_keys("parse_audit"),
    "policy_limits": c_keys("parse_limits"),
    "tokens": c_keys("parse_tokens"),
    "binding": c_keys("parse_binding"),
    "match": c_keys("parse_binding", "match_keys"),
}
ok(all(allowed.values()) and "bindings" in allowed["top"] and "listen" in allowed["server"],
   "server/config.c: the key lists are found", str({k: bool(v) for k, v in allowed.items()}))
allowed = {k: v or set() for k, v in allowed.items()}

cm = template("configmap.yaml")
body = cm[cm.find("paved.yaml: |"):]
rendered = {"top": set(), "server": set(), "audit": set(), "tokens": set()}
section = None
for line in body.splitlines()[1:]:
    m = re.match(r"^( *)(- )?([a-z0-9_]+):", line)
    if not m:
        continue
    indent = len(m.group(1))
    if indent == 4:
        section = m.group(3)
        rendered["top"].add(section)
    elif section in ("server", "audit") and indent == 6:
        rendered[section].add(m.group(3))
    elif section == "tokens" and indent in (6, 8):
        rendered["tokens"].add(m.group(3))
for part in ("top", "server", "audit", "tokens"):
    extra = rendered[part] - allowed[part]
    ok(rendered[part] and not extra, "configmap.yaml: the %s keys it writes are keys paved accepts (%s)" % (
        part, ", ".join(sorted(rendered[part]))), "not in server/config.c: " + ", ".join(sorted(extra)))
for part, spath in (("server", ["config", "server"]), ("audit", ["config", "audit"]),
                    ("policy_limits", ["config", "policy_limits"]), ("top", ["config"])):
    node = schema["properties"]
    for p in spath:
        node = node[p]["properties"] if "properties" in node.get(p, {}) else {}
    keys = set(node)
    extra = keys - allowed[part]
    ok(keys and not extra, "schema: values config%s keys are keys paved accepts" % (
        "" if part == "top" else "." + part), ", ".join(sorted(extra)))
ok({"db", "durability", "queue_max"} <= allowed["audit"] and "db" in rendered["audit"]
   and "durability" in values["config"]["audit"], "configmap.yaml: audit.db and audit.durability rendered")
binding_schema = schema["definitions"]["binding"]["properties"]
ok(set(binding_schema) == allowed["binding"], "schema: a binding's keys are exactly paved's",
   "schema %s vs config.c %s" % (sorted(binding_schema), sorted(allowed["binding"])))
ok(set(binding_schema["match"]["properties"]) == allowed["match"], "schema: a binding's match keys are exactly paved's",
   "schema %s vs config.c %s" % (sorted(binding_schema["match"]["properties"]), sorted(allowed["match"])))
tok_schema = schema["properties"]["apiTokens"]["properties"]["tokens"]["items"]["properties"]
ok(set(tok_schema) - {"value"} <= allowed["tokens"], "schema: token keys (besides value) are paved's")

# The default bindings are the shipped golden path.
try:
    shipped = yaml.safe_load(read(os.path.join(ROOT, "policies", "default.yaml")))["bindings"]
except (OSError, KeyError, TypeError, yaml.YAMLError) as e:
    shipped = None
mine = {b.get("id", b.get("policy")): b for b in values.get("config", {}).get("bindings", [])}
theirs = {b.get("id", b.get("policy")): b for b in (shipped or [])}
ok(shipped is not None and values.get("config", {}).get("bindings") == shipped,
   "values.yaml: config.bindings are policies/default.yaml's bindings",
   "differ: " + ", ".join(sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))))


def rendered_paved_yaml(v, token_dir="/etc/paved/tokens"):
    """What templates/configmap.yaml renders (a mirror of it, for paved to load)."""
    out = {"server": dict({"listen": "0.0.0.0:8443", "tls_cert": "/etc/paved/tls/tls.crt",
                           "tls_key": "/etc/paved/tls/tls.key"}, **v["config"].get("server", {})),
           "audit": dict({"db": "/var/lib/paved/paved.db"}, **v["config"].get("audit", {}))}
    if v["config"].get("policy_limits"):
        out["policy_limits"] = v["config"]["policy_limits"]
    if v.get("apiTokens", {}).get("tokens"):
        out["tokens"] = [dict(name=t["name"], role=t["role"], **(
            {"sha256": t["sha256"]} if t.get("sha256") else {"file": os.path.join(token_dir, t["name"])}))
            for t in v["apiTokens"]["tokens"]]
    out["bindings"] = v["config"]["bindings"]
    return out


if os.access(PAVED, os.X_OK):
    with tempfile.TemporaryDirectory() as d:
        cfg = os.path.join(d, "paved.yaml")
        with open(os.path.join(d, "ci-main"), "w") as f:
            f.write("a-long-random-token-value\n")
        with_tokens = merged({"apiTokens": {"tokens": [
            {"name": "ci-main", "role": "ci", "value": "a-long-random-token-value"},
            {"name": "ops", "role": "admin", "sha256": "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"}]}})
        with open(cfg, "w") as f:
            yaml.safe_dump(rendered_paved_yaml(with_tokens, d), f, sort_keys=False)
        obj = os.path.join(d, "cm.yaml")
        with open(obj, "w") as f:
            f.write("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: shop}\ndata: {}\n")
        r = subprocess.run([PAVED, "check", "--config", cfg, obj], capture_output=True, text=True, timeout=60)
        ok(r.returncode == 0, "paved loads the paved.yaml rendered from the default values and two tokens (%s check --config)" % PAVED,
           (r.stdout + r.stderr)[-400:])
        bad = rendered_paved_yaml(merged({"config": {"audit": {"durabilty": "sync"}}}))
        with open(cfg, "w") as f:
            yaml.safe_dump(bad, f, sort_keys=False)
        r = subprocess.run([PAVED, "check", "--config", cfg, obj], capture_output=True, text=True, timeout=60)
        ok(r.returncode == 2 and "durabilty" in r.stderr, "paved refuses a paved.yaml with a typo'd key (the check above can fail)",
           (r.stdout + r.stderr)[-400:])
else:
    skip("paved loads the rendered paved.yaml: no paved binary at %s (pass it as argument 1)" % PAVED)

print("%d passed, %d failed%s" % (passed, failed, ", %d skipped" % skipped if skipped else ""))
sys.exit(1 if failed else 0)
