/* tests/unit/test_vm.c: the policy sandbox and its limits, the `paved` helpers, the
 * JSON conversion and policy loading, through the public vm API with inline policies. */
#include "vm.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "t.h"

static struct bundle bundle;

static const struct vm_limits small_limits = {
    .max_memory = (size_t)4 << 20,
    .max_instructions = 2000000,
    .timeout_ms = 2000,
};

/* Loads one inline policy (id "p") whose check body is 'body'. */
static struct vm *vm_with(const char *body, const struct vm_limits *lim, struct pv_err *err)
{
    char src[4096];
    struct vm_source s = {"test/p.lua", src, 0};
    struct vm_binding b = {"p", NULL, NULL};
    struct vm *vm = NULL;
    int n = snprintf(src, sizeof(src),
                     "local paved = require 'paved'\n"
                     "return { id = 'p', golden_path = true,\n"
                     "check = function(req, params, violation)\n%s\nend }\n",
                     body);

    s.len = (size_t)n;
    if (vm_new(&vm, lim, bundle.modules, bundle.n_modules, &s, 1, err))
        return NULL;
    if (vm_set_bindings(vm, &b, 1, err)) {
        vm_free(vm);
        return NULL;
    }
    return vm;
}

/* Evaluates the single binding on 'json' (an object) and fills 'r'. */
static void eval_json(struct vm *vm, const char *json, struct vm_result *r)
{
    cJSON *obj = cJSON_Parse(json);
    struct pv_request req = {0};
    struct pv_err err = {0};

    req.object = obj;
    req.operation = "CREATE";
    memset(r, 0, sizeof(*r));
    if (vm_begin(vm, &req, &err) == PV_OK) {
        vm_eval(vm, 0, r);
        vm_end(vm);
    } else {
        r->outcome = VM_ERROR;
        r->error = strdup(err.msg);
    }
    cJSON_Delete(obj);
}

static const char pod[] = "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"},"
                          "\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"x\"}]}}";

/* ---- Sandbox ---- */

struct sandbox_case {
    const char *body;
    enum vm_outcome outcome;
    const char *msg; /* substring of the error, or of the first violation */
};

static const struct sandbox_case sandbox_cases[] = {
    {"local f = io.open('/etc/passwd')", VM_ERROR, "global 'io'"},
    {"os.execute('true')", VM_ERROR, "field 'execute'"},
    {"os.exit(1)", VM_ERROR, "field 'exit'"},
    {"local f = string.dump(print)", VM_ERROR, "field 'dump'"},
    {"assert(load('\\27Lua'))", VM_ERROR, "binary chunk"},
    {"assert(load('\\27Lua\\84\\0', 'x', 'b'))", VM_ERROR, "binary chunk"},
    {"_G.x = 1", VM_ERROR, "'x' in a read-only table"},
    {"require 'ffi'", VM_ERROR, "module 'ffi' is not available"},
    {"require 'io'", VM_ERROR, "not available"},
    {"x = 1", VM_ERROR, "'x' in a read-only table"},
    {"string.format = nil", VM_ERROR, "'format' in a read-only table"},
    {"paved.get = nil", VM_ERROR, "read-only"},
    {"setmetatable(_G, nil)", VM_ERROR, "protected metatable"},
    {"rawset(_G, 'x', 1)", VM_ERROR, "global 'rawset'"},
    {"getmetatable('').__index.format = 1", VM_ERROR, "attempt to index"},
    {"collectgarbage()", VM_ERROR, "global 'collectgarbage'"},
    {"debug.traceback()", VM_ERROR, "global 'debug'"},
    {"dofile('/etc/passwd')", VM_ERROR, "global 'dofile'"},
    {"coroutine.wrap(print)", VM_ERROR, "global 'coroutine'"},
    {"error('boom')", VM_ERROR, "test/p.lua:4: boom"},
    {"error({})", VM_ERROR, "error object is a table"},
    {"local x = nil; return x.y", VM_ERROR, "test/p.lua:4:"},
    {"paved.regex('(', 'x')", VM_ERROR, "invalid regular expression"},
    {"return 42", VM_ERROR, "check() returned a number"},
    {"return {1}", VM_ERROR, "returned a list holding a number"},
    {"while true do end", VM_BUDGET, "test/p.lua:4: instruction budget"},
    {"while true do pcall(function() while true do end end) end", VM_BUDGET, "instruction budget"},
    {"for i = 1, 10 do pcall(function() while true do end end) end; violation('escaped')",
     VM_BUDGET, "instruction budget"},
    {"local t = {} for i = 1, 1e8 do t[i] = i end", VM_NOMEM, "memory limit"},
    {"local s = 'x' while true do pcall(function() s = s .. s end) end", VM_NOMEM, "memory limit"},
    {"local s = string.rep('x', 1 << 30)", VM_NOMEM, ""},
    {"local a = string.match('abc', '%a+')", VM_ERROR, "Lua patterns are not available"},
    {"local a = ('abc'):gsub('b.', 'x')", VM_ERROR, "string.gsub: Lua patterns"},
    {"for w in ('a b'):gmatch('%S+') do end", VM_ERROR, "string.gmatch: Lua patterns"},
    {"local s = ('a'):rep(30); s:find(('a?'):rep(30) .. s)", VM_ERROR, "string.find: Lua"},
    {"violation('%d', string.find('a.b', '.', 1, true))", VM_OK, "2"},
    {"violation((('a/b'):gsub('/', '+')))", VM_OK, "a+b"},
    {"violation(paved.regex_match('^v?1\\\\.(\\\\d+)$', 'v1.29'))", VM_OK, "29"},
    {"local a, b = paved.regex_match('(\\\\w+)=(\\\\w+)?', 'k='); violation(a .. tostring(b))",
     VM_OK, "knil"},
    {"violation(paved.regex_match('b+', 'abbbc'))", VM_OK, "bbb"},
    {"violation(tostring(paved.regex_match('z', 'abc')))", VM_OK, "nil"},
    {"return 'one message'", VM_OK, "one message"},
    {"return {'a', 'b'}", VM_OK, "a"},
    {"violation('x=%d in %s', 5, req.object.metadata.name)", VM_OK, "x=5 in p"},
    {"print('to the log'); violation(os.time() > 0 and 'time ok' or 'no')", VM_OK, "time ok"},
    {"local f = load('return 1 + 1'); violation('%d', f())", VM_OK, "2"},
    {"local f = load('zz = 1'); local ok, e = pcall(f); violation(tostring(ok))", VM_OK, "false"},
};

static void test_sandbox(void)
{
    for (size_t i = 0; i < sizeof(sandbox_cases) / sizeof(sandbox_cases[0]); i++) {
        const struct sandbox_case *c = &sandbox_cases[i];
        struct pv_err err = {0};
        struct vm *vm = vm_with(c->body, &small_limits, &err);
        struct vm_result r;
        const char *got;

        if (!T_OK(vm != NULL)) {
            t_diag("load failed for %s: %s", c->body, err.msg);
            continue;
        }
        eval_json(vm, pod, &r);
        got = r.outcome >= VM_ERROR ? r.error : (r.n_violations > 0 ? r.violations[0] : "");
        if (!T_EQ_INT(r.outcome, c->outcome) || !T_OK(strstr(got, c->msg) != NULL))
            t_diag("body: %s; got: %s", c->body, got);
        vm_result_fini(&r);
        /* The same state must work normally after a tripped limit. */
        eval_json(vm, pod, &r);
        T_OK(r.outcome == c->outcome || r.outcome == VM_OK);
        vm_result_fini(&r);
        vm_free(vm);
    }
}

static void test_timeout(void)
{
    struct vm_limits lim = {
        .max_memory = (size_t)4 << 20, .max_instructions = (uint64_t)1 << 62, .timeout_ms = 50};
    struct pv_err err = {0};
    struct vm *vm = vm_with("while true do end", &lim, &err);
    struct vm_result r;

    if (!T_OK(vm != NULL))
        return;
    eval_json(vm, pod, &r);
    T_EQ_INT(r.outcome, VM_TIMEOUT);
    T_OK(r.error != NULL && strstr(r.error, "deadline of 50 ms") != NULL);
    T_OK(r.elapsed_ns < 2000000000u);
    vm_result_fini(&r);
    vm_free(vm);
}

static void test_recovery_after_limits(void)
{
    /* A policy that loops only for objects named "loop": the state recovers. */
    struct pv_err err = {0};
    struct vm *vm = vm_with("if req.object.metadata.name == 'loop' then while true do end end\n"
                            "violation('ran')",
                            &small_limits, &err);
    struct vm_result r;

    if (!T_OK(vm != NULL))
        return;
    eval_json(vm, "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"loop\"}}", &r);
    T_EQ_INT(r.outcome, VM_BUDGET);
    vm_result_fini(&r);
    eval_json(vm, "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"fine\"}}", &r);
    T_EQ_INT(r.outcome, VM_OK);
    T_EQ_INT(r.n_violations, 1);
    vm_result_fini(&r);
    vm_free(vm);
}

static void test_memory_is_reclaimed(void)
{
    struct pv_err err = {0};
    struct vm *vm =
        vm_with("local t = {} for i = 1, 2000 do t[i] = {i, tostring(i)} end", &small_limits, &err);
    struct vm_result r;
    size_t peak = 0;

    if (!T_OK(vm != NULL))
        return;
    for (int i = 0; i < 3000; i++) {
        eval_json(vm, pod, &r);
        if (r.outcome != VM_OK) {
            T_EQ_INT(r.outcome, VM_OK);
            vm_result_fini(&r);
            break;
        }
        vm_result_fini(&r);
        if (vm_memory_used(vm) > peak)
            peak = vm_memory_used(vm);
    }
    /* Each evaluation allocates ~200 KiB; 3000 of them must not accumulate. */
    T_OK(peak < ((size_t)16 << 20));
    vm_free(vm);
}

/* ---- The paved module ---- */

static const char helpers[] =
    "local function eq(a, b, what)\n"
    "  if a ~= b then violation('%s: got %s, want %s', what, tostring(a), tostring(b)) end\n"
    "end\n"
    "eq(paved.quantity('500m'), 0.5, '500m')\n"
    "eq(paved.quantity('1Gi'), 1073741824, '1Gi')\n"
    "eq(paved.quantity('1.5Ki'), 1536, '1.5Ki')\n"
    "eq(paved.quantity('1e3'), 1000, '1e3')\n"
    "eq(paved.quantity('2'), 2, '2')\n"
    "eq(paved.quantity(3), 3, 'number')\n"
    "eq(paved.quantity('1M'), 1000000, '1M')\n"
    "eq(paved.quantity('abc'), nil, 'abc')\n"
    "eq(paved.quantity(''), nil, 'empty')\n"
    "eq(paved.quantity('1Mb'), nil, '1Mb')\n"
    "eq(paved.quantity({}), nil, 'table')\n"
    "local i = paved.image('nginx')\n"
    "eq(i.registry, nil, 'nginx registry') eq(i.repository, 'nginx', 'nginx repo')\n"
    "eq(i.tag, nil, 'nginx tag') eq(i.name, 'nginx', 'nginx name')\n"
    "i = paved.image('registry:5000/team/app')\n"
    "eq(i.registry, 'registry:5000', 'port registry') eq(i.tag, nil, 'port tag')\n"
    "eq(i.repository, 'team/app', 'port repo') eq(i.name, 'app', 'port name')\n"
    "i = paved.image('gcr.io/a/b:1.2@sha256:abc')\n"
    "eq(i.registry, 'gcr.io', 'gcr registry') eq(i.tag, '1.2', 'gcr tag')\n"
    "eq(i.digest, 'sha256:abc', 'gcr digest') eq(i.repository, 'a/b', 'gcr repo')\n"
    "eq(paved.image(''), nil, 'empty image')\n"
    "eq(paved.glob('kube-*', 'kube-system'), true, 'glob prefix')\n"
    "eq(paved.glob('a?c', 'abc'), true, 'glob ?')\n"
    "eq(paved.glob('*-prod', 'shop-dev'), false, 'glob no')\n"
    "eq(paved.glob('*', ''), true, 'glob empty')\n"
    "eq(paved.match_entry('nginx*', 'nginx-exempt'), true, 'entry prefix')\n"
    "eq(paved.match_entry('nginx', 'nginx-exempt'), false, 'entry exact')\n"
    "eq(paved.regex('^[a-z]+\\\\.example\\\\.com$', 'web.example.com'), true, 'regex anchored')\n"
    "eq(paved.regex('\\\\d{3}', 'ab123'), true, 'regex search')\n"
    "eq(paved.regex('^a', 'ba'), false, 'regex anchor')\n"
    "eq(paved.regex('(?i)ABC', 'xabcx'), true, 'regex flags')\n"
    "local sel = {matchLabels = {app = 'web'},\n"
    "  matchExpressions = {{key = 'tier', operator = 'In', values = {'a', 'b'}},\n"
    "                      {key = 'x', operator = 'DoesNotExist'}}}\n"
    "eq(paved.selector_matches(sel, {app = 'web', tier = 'b'}), true, 'selector')\n"
    "eq(paved.selector_matches(sel, {app = 'web', tier = 'c'}), false, 'selector In')\n"
    "eq(paved.selector_matches(sel, {app = 'web', tier = 'a', x = '1'}), false, 'DoesNotExist')\n"
    "eq(paved.selector_matches({}, {}), true, 'empty selector')\n"
    "local n = 0\n"
    "for c, field in paved.containers(req.object) do n = n + 1 end\n"
    "eq(n, 3, 'containers of the CronJob')\n"
    "eq(paved.get(req.object, 'spec', 'nope', 'x'), nil, 'get missing')\n"
    "eq(math.type(req.object.spec.n), 'integer', 'integers stay integers')\n"
    "eq(req.object.spec.f, 1.5, 'floats')\n"
    "eq(req.object.spec.gone, nil, 'null member')\n"
    "eq(req.object.spec.arr[2], paved.null, 'null in array')\n"
    "eq(#req.object.spec.arr, 3, 'array length')\n";

static const char cronjob[] =
    "{\"apiVersion\":\"batch/v1\",\"kind\":\"CronJob\",\"metadata\":{\"name\":\"c\"},"
    "\"spec\":{\"n\":7,\"f\":1.5,\"gone\":null,\"arr\":[1,null,3],"
    "\"jobTemplate\":{\"spec\":{\"template\":{\"spec\":{"
    "\"containers\":[{\"name\":\"a\",\"image\":\"x\"},{\"name\":\"b\",\"image\":\"y\"}],"
    "\"initContainers\":[{\"name\":\"i\",\"image\":\"z\"}]}}}}}}";

static void test_helpers(void)
{
    struct pv_err err = {0};
    struct vm *vm = vm_with(helpers, &small_limits, &err);
    struct vm_result r;

    if (!T_OK(vm != NULL)) {
        t_diag("%s", err.msg);
        return;
    }
    eval_json(vm, cronjob, &r);
    T_EQ_INT(r.outcome, VM_OK);
    if (r.outcome >= VM_ERROR)
        t_diag("%s", r.error);
    T_EQ_INT(r.n_violations, 0);
    for (size_t i = 0; i < r.n_violations; i++)
        t_diag("%s", r.violations[i]);
    vm_result_fini(&r);
    vm_free(vm);
}

/* ---- Loading ---- */

struct load_case {
    const char *src;
    const char *msg;
};

static const struct load_case load_cases[] = {
    {"return {", "test/bad.lua:1:"},
    {"return 42", "test/bad.lua:1: the file must return a policy table"},
    {"return { id = 'Bad Id', check = function() end }", "kebab-case"},
    {"return { id = 'no-check' }", "has no check function"},
    {"return { id = 'e', enforcement = 'block', check = function() end }",
     "enforcement must be deny, warn or audit"},
    {"return {{ id = 'dup', check = function() end },\n{ id = 'dup', check = function() end }}",
     "test/bad.lua:2: policy id \"dup\" is already defined at test/bad.lua:1"},
    {"error('at load')", "test/bad.lua:1: at load"},
    {"while true do end", "test/bad.lua:1: instruction budget"},
    {"local t = {} for i = 1, 1e9 do t[i] = i end", "memory limit"},
};

static void test_loading(void)
{
    for (size_t i = 0; i < sizeof(load_cases) / sizeof(load_cases[0]); i++) {
        const struct load_case *c = &load_cases[i];
        struct vm_source s = {"test/bad.lua", c->src, strlen(c->src)};
        struct vm *vm = NULL;
        struct pv_err err = {0};
        pv_status rc;

        rc = vm_new(&vm, &small_limits, bundle.modules, bundle.n_modules, &s, 1, &err);
        if (!T_EQ_INT(rc, PV_EPOLICY) || !T_OK(strstr(err.msg, c->msg) != NULL))
            t_diag("source: %s; message: %s", c->src, err.msg);
        vm_free(vm);
    }
}

static void test_bindings(void)
{
    struct pv_err err = {0};
    struct vm *vm = vm_with("violation('x')", &small_limits, &err);
    struct vm_binding b = {"does-not-exist", NULL, NULL};
    cJSON *match =
        cJSON_Parse("{\"kinds\":[{\"apiGroups\":[\"apps\"],\"kinds\":[\"Deployment\"]}]}");
    struct vm_binding scoped = {"p", NULL, match};
    struct vm_result r;

    if (!T_OK(vm != NULL))
        return;
    T_EQ_INT(vm_set_bindings(vm, &b, 1, &err), PV_EPOLICY);
    T_OK(strstr(err.msg, "unknown policy \"does-not-exist\"") != NULL);
    T_EQ_INT(vm_set_bindings(vm, &scoped, 1, &err), PV_OK);
    eval_json(vm, pod, &r);
    T_EQ_INT(r.outcome, VM_SKIPPED);
    vm_result_fini(&r);
    eval_json(vm, "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{}}", &r);
    T_EQ_INT(r.outcome, VM_OK);
    T_EQ_INT(r.n_violations, 1);
    vm_result_fini(&r);
    eval_json(vm, "{\"apiVersion\":\"extensions/v1beta1\",\"kind\":\"Deployment\"}", &r);
    T_EQ_INT(r.outcome, VM_SKIPPED);
    vm_result_fini(&r);
    cJSON_Delete(match);
    vm_free(vm);
}

static void test_deep_object(void)
{
    /* Deeper than the conversion allows: a clear error, not a crash. */
    struct pv_err err = {0};
    struct vm *vm = vm_with("", &small_limits, &err);
    cJSON *root = cJSON_CreateObject();
    cJSON *cur = root;
    struct pv_request req = {0};

    if (!T_OK(vm != NULL))
        return;
    for (int i = 0; i < 900; i++) {
        cJSON *next = cJSON_CreateObject();

        cJSON_AddItemToObject(cur, "a", next);
        cur = next;
    }
    req.object = root;
    T_EQ_INT(vm_begin(vm, &req, &err), PV_EINVAL);
    T_OK(strstr(err.msg, "nested deeper") != NULL);
    cJSON_Delete(root);
    vm_free(vm);
}

/* ---- paved.quota(team) through the host callback ---- */

static int quota_calls;

static cJSON *fake_quota(void *arg, const char *team)
{
    cJSON *doc;
    cJSON *used;

    quota_calls++;
    if (strcmp(team, "payments") != 0)
        return NULL;
    doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "team", team);
    used = cJSON_AddObjectToObject(doc, "used");
    cJSON_AddNumberToObject(used, "cpu_millis", *(const int *)arg);
    return doc;
}

static void test_quota_host(void)
{
    static const int used_millis = 1750;
    struct vm_host host = {fake_quota, (void *)(uintptr_t)&used_millis};
    struct pv_err err = {0};
    struct vm_result r;
    struct vm *vm = vm_with("local q = paved.quota('payments')\n"
                            "local none = paved.quota('search')\n"
                            "if q then violation('used %d of %s', q.used.cpu_millis, q.team) end\n"
                            "if none == nil then violation('search has no quota') end",
                            &small_limits, &err);

    T_OK(vm != NULL);
    if (vm == NULL)
        return;
    /* Without a host (paved check, paved test) paved.quota is nil for every team. */
    eval_json(vm, pod, &r);
    T_EQ_INT(r.outcome, VM_OK);
    T_EQ_INT(r.n_violations, 1);
    if (r.n_violations == 1)
        T_EQ_STR(r.violations[0], "search has no quota");
    vm_result_fini(&r);
    vm_set_host(vm, &host);
    eval_json(vm, pod, &r);
    T_EQ_INT(r.outcome, VM_OK);
    T_EQ_INT(r.n_violations, 2);
    if (r.n_violations == 2) {
        T_EQ_STR(r.violations[0], "used 1750 of payments");
        T_EQ_STR(r.violations[1], "search has no quota");
    }
    T_EQ_INT(quota_calls, 2);
    vm_result_fini(&r);
    vm_free(vm);
}

int main(void)
{
    struct pv_err err = {0};

    if (bundle_load(&bundle, NULL, &err)) {
        printf("Bail out! %s\n", err.msg);
        return 1;
    }
    test_sandbox();
    test_timeout();
    test_recovery_after_limits();
    test_memory_is_reclaimed();
    test_helpers();
    test_loading();
    test_bindings();
    test_deep_object();
    test_quota_host();
    bundle_fini(&bundle);
    return t_done();
}
