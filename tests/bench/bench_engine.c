/* tests/bench/bench_engine.c: the engine benchmark of `make bench`. Opens the engine the
 * way `paved check` does (embedded bundle, default bindings), reads one manifest once and
 * times decide_eval on it, printing microseconds per object and a RESULT line for
 * tests/bench/run.sh. Owns nothing outside this process. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "config.h"
#include "decide.h"
#include "input.h"
#include "log.h"
#include "vm.h"
#include "xalloc.h"

#define DEFAULT_ITERATIONS 20000L
#define DEFAULT_WARMUP 200L
#define MAX_ITERATIONS 100000000L

static const char usage[] =
    "usage: bench_engine [options] FILE [ITERATIONS]\n"
    "\n"
    "Decides the first object of FILE (YAML or JSON) with the shipped bundle and the\n"
    "default bindings, as `paved check` does, ITERATIONS times (default 20000) after a\n"
    "fixed warm-up, and prints microseconds per object. Exits 1 unless the object is\n"
    "allowed on the golden path.\n"
    "\n"
    "options:\n"
    "  --warmup N      iterations before measuring (default 200; keep it fixed when\n"
    "                  comparing callgrind totals of two runs)\n"
    "  --phase P       what each iteration does: decide (default: decide_eval on the\n"
    "                  parsed object), convert (vm_begin + vm_end: the object into Lua\n"
    "                  and out again), parse-decide (cJSON_Parse of the compact JSON,\n"
    "                  decide_eval, cJSON_Delete: the webhook's per-request work)\n"
    "  --grace-us N    run policies hook-free for N us per request (default 1000)\n"
    "  --no-timing     read no clock per iteration and skip the extra phases (for\n"
    "                  valgrind --tool=callgrind; the RESULT line then has no times)\n";

enum phase {
    PHASE_DECIDE,
    PHASE_CONVERT,
    PHASE_PARSE_DECIDE,
};

/* The --phase names, indexed by enum phase. */
static const char *const phase_args[] = {"decide", "convert", "parse-decide"};

/* The object under test and the request around it, built once. */
struct subject {
    struct input_set in;
    const cJSON *object; /* borrowed from 'in' */
    cJSON *who;          /* the request's subject; owned */
    char *json;          /* compact JSON of 'object'; owned */
    size_t json_len;
    struct pv_request req;
};

struct stats {
    long n;
    double mean_us;
    double p50_us;
    double p99_us;
    double min_us;
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const char *str_at(const cJSON *o, const char *a, const char *b)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);

    if (b != NULL)
        v = cJSON_GetObjectItemCaseSensitive(v, b);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Builds the request as cmd_check does: subject from the labels, kind deploy,
 * operation CREATE, source ci, the object's namespace. */
static pv_status subject_open(struct subject *s, const char *path, struct pv_err *err)
{
    const cJSON *labels;
    const char *team;
    const char *service;
    pv_status rc;

    memset(s, 0, sizeof(*s));
    input_init(&s->in);
    rc = input_add_path(&s->in, path, err);
    if (rc)
        return rc;
    if (s->in.n_objs == 0)
        return pv_err_set(err, PV_EINVAL, "%s: no object", path);
    s->object = s->in.objs[0].object;
    labels = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(s->object, "metadata"), "labels");
    team = str_at(labels, "team", NULL);
    service = str_at(labels, "app.kubernetes.io/name", NULL);
    if (service == NULL)
        service = str_at(s->object, "metadata", "name");
    s->who = cJSON_CreateObject();
    cJSON_AddStringToObject(s->who, "team", team != NULL ? team : "unknown");
    if (service != NULL)
        cJSON_AddStringToObject(s->who, "service", service);
    s->json = cJSON_PrintUnformatted(s->object);
    s->json_len = strlen(s->json);
    s->req.kind = "deploy";
    s->req.operation = "CREATE";
    s->req.source = "ci";
    s->req.namespace = str_at(s->object, "metadata", "namespace");
    s->req.object = s->object;
    s->req.subject = s->who;
    return PV_OK;
}

static void subject_close(struct subject *s)
{
    cJSON_Delete(s->who);
    free(s->json);
    input_fini(&s->in);
    memset(s, 0, sizeof(*s));
}

/* ---- One iteration ---- */

/* Runs one iteration of 'ph', adding each binding's time to 'binding_ns' (one entry
 * per binding) unless it is NULL. Returns false, with the reason printed, when the
 * object could not be decided or was not allowed on the golden path. */
static bool run_once(const struct cli_engine *e, const struct subject *s, enum phase ph,
                     uint64_t *binding_ns)
{
    struct pv_request req = s->req;
    struct decision d;
    struct pv_err err = {0};
    cJSON *parsed = NULL;
    bool is_ok;
    pv_status rc;

    if (ph == PHASE_CONVERT) {
        rc = vm_begin(e->vm, &req, &err);
        if (rc) {
            fprintf(stderr, "bench_engine: vm_begin: %s\n", err.msg);
            return false;
        }
        vm_end(e->vm);
        return true;
    }
    if (ph == PHASE_PARSE_DECIDE) {
        parsed = cJSON_ParseWithLength(s->json, s->json_len);
        if (parsed == NULL) {
            fprintf(stderr, "bench_engine: cannot parse the object's own JSON\n");
            return false;
        }
        req.object = parsed;
    }
    rc = decide_eval(e->vm, e->cfg, CFG_CI, &req, &d, &err);
    if (rc)
        fprintf(stderr, "bench_engine: decide_eval: %s\n", err.msg);
    is_ok = rc == PV_OK && d.is_allowed && d.path == DECIDE_GOLDEN && d.n_errors == 0;
    if (rc == PV_OK && !is_ok) {
        fprintf(stderr,
                "bench_engine: the object is %s (path %s, %zu deny, %zu warn, %zu "
                "policy errors); the benchmark needs one on the golden path\n",
                d.is_allowed ? "allowed" : "DENIED", decide_path_name(d.path), d.n_deny, d.n_warn,
                d.n_errors);
        for (size_t i = 0; i < d.n_items; i++) {
            const struct decide_item *it = &d.items[i];

            if (it->r.error != NULL)
                fprintf(stderr, "  %s: %s\n", it->binding->id, it->r.error);
            for (size_t k = 0; k < it->r.n_violations; k++)
                fprintf(stderr, "  %s: %s\n", it->binding->id, it->r.violations[k]);
        }
    }
    for (size_t i = 0; binding_ns != NULL && i < d.n_items; i++)
        binding_ns[i] += d.items[i].r.elapsed_ns;
    decision_fini(&d);
    cJSON_Delete(parsed);
    return is_ok;
}

/* ---- Measuring ---- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Runs 'n' timed iterations of 'ph' into *out, summing per-binding times into
 * 'binding_ns' unless it is NULL. Returns false on a failed iteration. */
static bool measure(const struct cli_engine *e, const struct subject *s, enum phase ph, long n,
                    struct stats *out, uint64_t *binding_ns)
{
    uint64_t *t = xcalloc((size_t)n, sizeof(*t));
    uint64_t sum = 0;
    bool is_ok = true;

    for (long i = 0; i < n && is_ok; i++) {
        uint64_t t0 = now_ns();

        is_ok = run_once(e, s, ph, binding_ns);
        t[i] = now_ns() - t0;
        sum += t[i];
    }
    if (is_ok) {
        qsort(t, (size_t)n, sizeof(*t), cmp_u64);
        out->n = n;
        out->mean_us = (double)sum / (double)n / 1000.0;
        out->p50_us = (double)t[(size_t)(n - 1) / 2] / 1000.0;
        out->p99_us = (double)t[(size_t)((double)(n - 1) * 0.99)] / 1000.0;
        out->min_us = (double)t[0] / 1000.0;
    }
    free(t);
    return is_ok;
}

static bool run_untimed(const struct cli_engine *e, const struct subject *s, enum phase ph, long n)
{
    for (long i = 0; i < n; i++)
        if (!run_once(e, s, ph, NULL))
            return false;
    return true;
}

/* Counts the bindings that evaluate the object (the others are out of scope). */
static size_t count_in_scope(const struct cli_engine *e, const struct subject *s)
{
    struct decision d;
    struct pv_err err = {0};
    size_t n = 0;

    if (decide_eval(e->vm, e->cfg, CFG_CI, &s->req, &d, &err) == PV_OK)
        for (size_t i = 0; i < d.n_items; i++)
            n += d.items[i].r.outcome != VM_SKIPPED;
    decision_fini(&d);
    return n;
}

static bool parse_count(const char *s, long *out)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);

    if (end == s || *end != '\0' || v < 0 || v > MAX_ITERATIONS)
        return false;
    *out = v;
    return true;
}

static bool parse_phase(const char *s, enum phase *out)
{
    for (size_t i = 0; i < sizeof(phase_args) / sizeof(phase_args[0]); i++) {
        if (strcmp(s, phase_args[i]) == 0) {
            *out = (enum phase)i;
            return true;
        }
    }
    return false;
}

static const char *phase_name(enum phase ph)
{
    switch (ph) {
    case PHASE_DECIDE:
        return "decide_eval";
    case PHASE_CONVERT:
        return "convert";
    case PHASE_PARSE_DECIDE:
        return "parse+decide";
    }
    return "?";
}

struct binding_cost {
    const char *id;
    double us;
};

static int cmp_cost(const void *a, const void *b)
{
    double x = ((const struct binding_cost *)a)->us;
    double y = ((const struct binding_cost *)b)->us;

    return x < y ? 1 : x > y ? -1 : 0;
}

/* Prints each binding's mean time, costliest first, and what decide_eval spends
 * outside the bindings (the object into Lua and out, the decision itself). */
static void print_bindings(const struct cli_engine *e, const uint64_t *binding_ns,
                           const struct stats *st)
{
    size_t n = e->cfg->n_bindings;
    struct binding_cost *c = xcalloc(n ? n : 1, sizeof(*c));
    double sum = 0;

    for (size_t i = 0; i < n; i++) {
        c[i].id = e->cfg->bindings[i].id;
        c[i].us = (double)binding_ns[i] / (double)st->n / 1000.0;
        sum += c[i].us;
    }
    qsort(c, n, sizeof(*c), cmp_cost);
    printf("per binding (mean us, vm_eval as decide_eval measures it):\n");
    for (size_t i = 0; i < n; i++)
        printf("  %-30s %7.2f\n", c[i].id, c[i].us);
    printf("  %-30s %7.2f\n", "(all bindings)", sum);
    printf("  %-30s %7.2f\n", "(outside bindings: vm_begin...)", st->mean_us - sum);
    free(c);
}

static void print_stats(const char *what, const struct stats *st)
{
    printf("%-13s %8ld iterations: mean %7.2f us  p50 %7.2f us  p99 %7.2f us  min %7.2f us\n", what,
           st->n, st->mean_us, st->p50_us, st->p99_us, st->min_us);
}

/* cli_engine_open with the hook grace period set: under valgrind a request runs ~50
 * times slower, so the default 1 ms grace would arm the count hook that real runs
 * never see; callgrind runs pass a long grace to count what production executes. */
static pv_status open_engine(struct cli_engine *e, long grace_us, struct pv_err *err)
{
    struct vm_binding *b;
    pv_status rc;

    memset(e, 0, sizeof(*e));
    rc = config_load_default(&e->cfg, err);
    if (rc == PV_OK && grace_us > 0)
        e->cfg->limits.grace_us = (uint32_t)grace_us;
    if (rc == PV_OK)
        rc = bundle_load(&e->bundle, NULL, err);
    if (rc == PV_OK)
        rc = vm_new(&e->vm, &e->cfg->limits, e->bundle.modules, e->bundle.n_modules,
                    e->bundle.policies, e->bundle.n_policies, err);
    if (rc == PV_OK) {
        b = config_vm_bindings(e->cfg);
        rc = vm_set_bindings(e->vm, b, e->cfg->n_bindings, err);
        free(b);
    }
    if (rc)
        cli_engine_close(e);
    return rc;
}

int main(int argc, char **argv)
{
    cJSON_Hooks hooks = {xmalloc, free};
    const char *path = NULL;
    long iterations = DEFAULT_ITERATIONS;
    long warmup = DEFAULT_WARMUP;
    enum phase ph = PHASE_DECIDE;
    long grace_us = 0;
    bool is_timed = true;
    struct cli_engine e;
    struct subject s;
    struct pv_err err = {0};
    struct stats main_st = {0};
    struct stats conv_st = {0};
    struct stats parse_st = {0};
    uint64_t *binding_ns = NULL;
    size_t mem_before;
    size_t mem_after;
    int rc = 1;
    int i;

    for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
        if (strcmp(argv[i], "--no-timing") == 0) {
            is_timed = false;
        } else if (strcmp(argv[i], "--warmup") == 0 && i + 1 < argc &&
                   parse_count(argv[i + 1], &warmup)) {
            i++;
        } else if (strcmp(argv[i], "--grace-us") == 0 && i + 1 < argc &&
                   parse_count(argv[i + 1], &grace_us)) {
            i++;
        } else if (strcmp(argv[i], "--phase") == 0 && i + 1 < argc &&
                   parse_phase(argv[i + 1], &ph)) {
            i++;
        } else {
            fputs(usage, strcmp(argv[i], "-h") == 0 ? stdout : stderr);
            return strcmp(argv[i], "-h") == 0 ? 0 : 2;
        }
    }
    if (i < argc)
        path = argv[i++];
    if (i < argc && !parse_count(argv[i++], &iterations))
        path = NULL;
    if (path == NULL || i < argc || iterations < 1) {
        fputs(usage, stderr);
        return 2;
    }

    cJSON_InitHooks(&hooks);
    log_init(LOG_WARN, true);
    /* As `paved check` without options: the embedded bundle and default bindings. */
    if (open_engine(&e, grace_us, &err)) {
        fprintf(stderr, "bench_engine: engine: %s\n", err.msg);
        return 1;
    }
    if (subject_open(&s, path, &err)) {
        fprintf(stderr, "bench_engine: %s\n", err.msg);
        subject_close(&s);
        cli_engine_close(&e);
        return 1;
    }
    printf("object        %s/%s/%s from %s, %zu bytes as compact JSON\n",
           str_at(s.object, "kind", NULL), s.req.namespace != NULL ? s.req.namespace : "",
           str_at(s.object, "metadata", "name"), path, s.json_len);
    printf("bindings      %zu (%zu evaluate this object, the rest are out of scope)\n",
           e.cfg->n_bindings, count_in_scope(&e, &s));
    binding_ns = xcalloc(e.cfg->n_bindings ? e.cfg->n_bindings : 1, sizeof(*binding_ns));

    if (!run_untimed(&e, &s, ph, warmup))
        goto done;
    mem_before = vm_memory_used(e.vm);
    if (is_timed) {
        if (!measure(&e, &s, ph, iterations, &main_st, binding_ns))
            goto done;
    } else if (!run_untimed(&e, &s, ph, iterations)) {
        goto done;
    }
    mem_after = vm_memory_used(e.vm);
    printf("outcome       allowed, path golden (checked on every iteration)\n");
    printf("lua memory    %zu KiB after warm-up, %zu KiB after the run\n", mem_before >> 10,
           mem_after >> 10);
    if (!is_timed) {
        printf("RESULT phase=%s iterations=%ld warmup=%ld bindings=%zu json_bytes=%zu\n",
               phase_args[ph], iterations, warmup, e.cfg->n_bindings, s.json_len);
        rc = 0;
        goto done;
    }
    print_stats(phase_name(ph), &main_st);
    if (ph == PHASE_DECIDE)
        print_bindings(&e, binding_ns, &main_st);
    /* The breakdown: the object into Lua and back alone, and the webhook's work with
     * the JSON parse in front. A quarter of the iterations each keeps the run short. */
    if (ph == PHASE_DECIDE) {
        long n = iterations / 4 > 0 ? iterations / 4 : 1;

        if (!measure(&e, &s, PHASE_CONVERT, n, &conv_st, NULL) ||
            !measure(&e, &s, PHASE_PARSE_DECIDE, n, &parse_st, NULL))
            goto done;
        print_stats(phase_name(PHASE_CONVERT), &conv_st);
        print_stats(phase_name(PHASE_PARSE_DECIDE), &parse_st);
    }
    printf("RESULT phase=%s iterations=%ld warmup=%ld bindings=%zu json_bytes=%zu "
           "mean_us=%.2f p50_us=%.2f p99_us=%.2f min_us=%.2f convert_us=%.2f "
           "parse_decide_us=%.2f lua_kib=%zu\n",
           phase_args[ph], iterations, warmup, e.cfg->n_bindings, s.json_len, main_st.mean_us,
           main_st.p50_us, main_st.p99_us, main_st.min_us, conv_st.p50_us, parse_st.p50_us,
           mem_after >> 10);
    rc = 0;
done:
    if (rc)
        fprintf(stderr, "bench_engine: FAILED\n");
    free(binding_ns);
    subject_close(&s);
    cli_engine_close(&e);
    return rc;
}
