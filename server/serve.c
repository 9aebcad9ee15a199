/* server/serve.c: `paved serve`. Owns the libmicrohttpd daemon (TLS, limits, routing),
 * the current snapshot (config + bundle, swapped whole on reload), one vm per worker
 * thread, the audit store handle, and the request handlers. */
#include "serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "admission.h"
#include "api.h"
#include "audit.h"
#include "certs.h"
#include "charge.h"
#include "cli.h"
#include "clock.h"
#include "cmd_audit.h"
#include "creds.h"
#include "decide.h"
#include "fsutil.h"
#include "jsonpatch.h"
#include "jsonutil.h"
#include "log.h"
#include "notify.h"
#include "report.h"
#include "xalloc.h"

#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define PEM_MAX_BYTES ((size_t)1 << 20)

static const char usage[] =
    "usage: paved serve [options]\n"
    "\n"
    "Serves the admission webhook and the decision API over HTTPS. Every decision is\n"
    "committed to the audit store before its answer is sent.\n"
    "\n"
    "endpoints:\n"
    "  POST /k8s/validate   AdmissionReview admission.k8s.io/v1 (no token)\n"
    "  POST /k8s/mutate     AdmissionReview: JSONPatch of the mutating bindings (no token)\n"
    "  GET  /v1/audit/decisions ?since=30d&team=&service=&policy=&path=&source=&limit=\n"
    "                       (token: reader, approver or admin)\n"
    "  POST /v1/decide      {\"kind\": \"deploy\", \"object\": {...}} (token: ci or admin)\n"
    "  POST /v1/exceptions  request an exception (token: ci, approver or admin)\n"
    "  GET  /v1/exceptions  ?state=&team=&service=&policy=&expiring_within=7d (any token)\n"
    "  GET  /v1/exceptions/ID            one exception and its audit events\n"
    "  POST /v1/exceptions/ID/approve|deny|revoke   (approver; never the requester)\n"
    "  POST /v1/breakglass  {\"duration\": \"30m\", \"reason\", \"namespaces\", \"teams\"} "
    "(admin)\n"
    "  GET  /v1/breakglass, POST /v1/breakglass/ID/end\n"
    "  GET  /v1/reports/adoption ?since=30d&until=&team=&by=day|week|month\n"
    "                       (token: reader, approver or admin)\n"
    "  GET  /healthz        the process is up\n"
    "  GET  /readyz         policies loaded and the audit store writable\n"
    "  GET  /metrics        Prometheus text\n"
    "\n"
    "options (each overrides the config file):\n"
    "  --config FILE       paved.yaml: bindings, server:, audit: (see README)\n"
    "  --listen HOST:PORT  default 127.0.0.1:8443\n"
    "  --tls-cert FILE     PEM serving certificate (paved certs writes one)\n"
    "  --tls-key FILE      PEM private key of the certificate\n"
    "  --client-ca FILE    require client certificates signed by this CA (PEM)\n"
    "  --insecure-http     plain HTTP instead of TLS (tests and local debugging only)\n"
    "  --db FILE           SQLite audit store, default paved.db\n"
    "  --policies DIR      load the policies of DIR instead of the shipped bundle\n"
    "  --threads N         worker threads, default 2 x CPUs\n"
    "  -h, --help          show this help\n"
    "\n"
    "Reloads the config and the policies on SIGHUP and when their files change, and the\n"
    "serving certificate when its files change (the listen address, client CA and audit\n"
    "store are read once); a bundle or certificate that fails to load is rejected and\n"
    "the last good one keeps serving. Stops on SIGINT or SIGTERM\n"
    "after finishing the requests in flight and committing every queued audit record.\n";

/* ---- Snapshot: what a request decides with ---- */

struct snapshot {
    atomic_int refs;
    uint64_t gen;
    struct cli_engine e; /* cfg + bundle; e.vm unused (each thread has its own) */
    struct vm_binding *bindings;
    char bundle_hash[65];
    char *notify_routes; /* JSON text of the outbox routes, NULL without endpoints */
    struct server *srv;  /* for the vms' host callbacks */
};

/* What decisions match against: the approved exceptions and the open break-glass
 * windows, reloaded from the store after every transition. */
struct exc_state {
    atomic_int refs;
    struct audit_exc_set exc;
    struct audit_bg_set bg;
};

/* Decisions in which a policy found something, by enforcement, for /metrics. */
struct policy_count {
    char *policy;
    unsigned long by_enforcement[3]; /* deny, warn, audit */
    unsigned long errors;
};

#define POLICY_COUNTS_MAX 512

struct server {
    pthread_mutex_t mu;
    struct snapshot *snap; /* guarded by mu */
    struct audit *audit;
    const struct cfg_server *opts; /* of the first snapshot: listening does not reload */
    /* Counters for /metrics. */
    atomic_ulong n_allowed;
    atomic_ulong n_denied;
    atomic_ulong n_errors;
    atomic_ulong n_by_path[DECIDE_N_PATHS];
    atomic_ulong latency_buckets[10];
    atomic_ulong latency_us_sum;
    atomic_ulong n_requests;
    atomic_int n_parked; /* connections suspended until their audit commit */
    atomic_ulong n_reloads_ok;
    pthread_mutex_t policy_mu;
    struct policy_count *policy_counts; /* guarded by policy_mu */
    size_t n_policy_counts;             /* guarded by policy_mu */
    atomic_ulong n_reloads_failed;
    const char *db_path;
    char *owned[8]; /* copies of the config strings above (db_path, policies_dir, opts):
                     * the first snapshot they came from is freed by the first reload */
    size_t n_owned;
    pthread_mutex_t exc_reload_mu; /* one exc_reload at a time: read and swap in order */
    pthread_mutex_t exc_mu;
    struct exc_state *exc;           /* guarded by exc_mu */
    _Atomic(struct notify *) notify; /* set once before serving, cleared after stopping */
    struct creds *creds;             /* NULL when the signing keys could not be set up */
    atomic_ulong n_exc_reload_failures;
    atomic_ulong n_quota_denied;
    pthread_mutex_t gauges_mu;
    char *gauges;         /* guarded by gauges_mu: adoption and exception gauges for /metrics */
    int64_t gauges_at_ms; /* guarded by gauges_mu */
    atomic_bool is_gauges_stale;   /* an exception or window changed since the last refresh */
    atomic_bool is_exc_reload_due; /* the last exc_reload failed: the sweeper retries */
    /* What reload() rebuilds from. */
    const char *config_path;
    const char *policies_dir;
};

static const double latency_bounds_ms[9] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 50, 250};

static void snapshot_release(struct snapshot *s)
{
    if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    free(s->notify_routes);
    free(s->bindings);
    cli_engine_close(&s->e);
    free(s);
}

static struct snapshot *snapshot_acquire(struct server *srv)
{
    struct snapshot *s;

    pthread_mutex_lock(&srv->mu);
    s = srv->snap;
    atomic_fetch_add(&s->refs, 1);
    pthread_mutex_unlock(&srv->mu);
    return s;
}

/* The outbox routes of the config's endpoints: [{"endpoint","events","policies"}]. */
static char *routes_of(const struct config *cfg)
{
    cJSON *arr;
    char *text;

    if (cfg->notifications.n_endpoints == 0)
        return NULL;
    arr = cJSON_CreateArray();
    for (size_t i = 0; i < cfg->notifications.n_endpoints; i++) {
        const struct cfg_endpoint *e = &cfg->notifications.endpoints[i];
        cJSON *r = cJSON_CreateObject();

        cJSON_AddStringToObject(r, "endpoint", e->name);
        if (e->events != NULL)
            cJSON_AddItemToObject(r, "events", cJSON_Duplicate(e->events, 1));
        if (e->policies != NULL)
            cJSON_AddItemToObject(r, "policies", cJSON_Duplicate(e->policies, 1));
        cJSON_AddItemToArray(arr, r);
    }
    text = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    return text;
}

static void exc_state_release(struct exc_state *st)
{
    if (st == NULL || atomic_fetch_sub(&st->refs, 1) != 1)
        return;
    audit_exc_set_fini(&st->exc);
    audit_bg_set_fini(&st->bg);
    free(st);
}

static struct exc_state *exc_state_acquire(struct server *srv)
{
    struct exc_state *st;

    pthread_mutex_lock(&srv->exc_mu);
    st = srv->exc;
    if (st != NULL)
        atomic_fetch_add(&st->refs, 1);
    pthread_mutex_unlock(&srv->exc_mu);
    return st;
}

/* Reads the approved exceptions and open windows again and swaps them in. On failure
 * the last good state keeps serving (and the failure is counted). */
static pv_status exc_reload(struct server *srv, struct pv_err *err)
{
    struct exc_state *st = xcalloc(1, sizeof(*st));
    struct exc_state *old;
    pv_status rc;

    /* Reading and swapping under one lock: two reloads racing could otherwise swap an
     * older read in last and bring back a revoked exception. */
    pthread_mutex_lock(&srv->exc_reload_mu);
    rc = audit_exceptions_approved(srv->db_path, &st->exc, err);
    if (rc == PV_OK)
        rc = audit_breakglass_open(srv->db_path, &st->bg, err);
    if (rc) {
        pthread_mutex_unlock(&srv->exc_reload_mu);
        audit_exc_set_fini(&st->exc);
        free(st);
        atomic_fetch_add(&srv->n_exc_reload_failures, 1);
        atomic_store(&srv->is_exc_reload_due, true);
        log_msg(LOG_ERROR, "exceptions", "cannot reload exceptions: %s", err->msg);
        return rc;
    }
    atomic_init(&st->refs, 1);
    pthread_mutex_lock(&srv->exc_mu);
    old = srv->exc;
    srv->exc = st;
    pthread_mutex_unlock(&srv->exc_mu);
    pthread_mutex_unlock(&srv->exc_reload_mu);
    exc_state_release(old);
    atomic_store(&srv->is_gauges_stale, true);
    return PV_OK;
}

/* Hands the endpoints of 'cfg' to the notifier (it copies them). */
static void notify_configure(struct notify *n, const struct config *cfg)
{
    size_t count = cfg->notifications.n_endpoints;
    struct notify_endpoint *e = xcalloc(count ? count : 1, sizeof(*e));
    struct notify_policy p;

    for (size_t i = 0; i < count; i++) {
        const struct cfg_endpoint *c = &cfg->notifications.endpoints[i];

        e[i].name = c->name;
        e[i].url = c->url;
        e[i].secret = c->secret;
        e[i].secret_len = c->secret_len;
        e[i].cacert = c->cacert;
        e[i].is_http_allowed = c->is_http_allowed;
        e[i].is_slack = c->is_slack;
        e[i].timeout_ms = c->timeout_ms;
    }
    p.max_attempts = cfg->notifications.max_attempts;
    p.backoff_initial_ms = cfg->notifications.backoff_initial_ms;
    p.backoff_max_ms = cfg->notifications.backoff_max_ms;
    notify_set_endpoints(n, e, count, &p);
    free(e);
}

/* The audit writer committed messages to the outbox. Writer thread. */
static void on_outbox(void *arg)
{
    struct server *srv = arg;
    struct notify *n = atomic_load(&srv->notify);

    if (n != NULL)
        notify_wake(n);
}

static void bundle_digest(const struct snapshot *s, char out[65])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    char *cfg_text = cJSON_PrintUnformatted(s->e.cfg->root);

    PV_ASSERT(ctx != NULL);
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    for (size_t i = 0; i < s->e.bundle.n_policies; i++) {
        EVP_DigestUpdate(ctx, s->e.bundle.policies[i].path, strlen(s->e.bundle.policies[i].path));
        EVP_DigestUpdate(ctx, s->e.bundle.policies[i].text, s->e.bundle.policies[i].len);
    }
    if (cfg_text != NULL)
        EVP_DigestUpdate(ctx, cfg_text, strlen(cfg_text));
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    free(cfg_text);
    for (unsigned int i = 0; i < len && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* ---- One vm per worker thread ---- */

static pthread_key_t vm_key;
static pthread_once_t vm_key_once = PTHREAD_ONCE_INIT;

struct thread_vm {
    struct vm *vm;
    uint64_t gen;
};

static void thread_vm_free(void *p)
{
    struct thread_vm *t = p;

    vm_free(t->vm);
    free(t);
}

static void make_vm_key(void)
{
    PV_ASSERT(pthread_key_create(&vm_key, thread_vm_free) == 0);
}

static cJSON *quota_for_policy(void *arg, const char *team);

/* The calling thread's vm for 'snap', built on first use and after a reload. */
static struct vm *thread_vm(struct snapshot *snap, struct pv_err *err)
{
    struct thread_vm *t;

    pthread_once(&vm_key_once, make_vm_key);
    t = pthread_getspecific(vm_key);
    if (t == NULL) {
        t = xcalloc(1, sizeof(*t));
        pthread_setspecific(vm_key, t);
    }
    if (t->vm != NULL && t->gen == snap->gen)
        return t->vm;
    vm_free(t->vm);
    t->vm = NULL;
    if (vm_new(&t->vm, &snap->e.cfg->limits, snap->e.bundle.modules, snap->e.bundle.n_modules,
               snap->e.sources, snap->e.n_sources, err) ||
        vm_set_bindings(t->vm, snap->bindings, snap->e.cfg->n_bindings, err)) {
        vm_free(t->vm);
        t->vm = NULL;
        return NULL;
    }
    {
        struct vm_host host = {quota_for_policy, snap->srv};

        vm_set_host(t->vm, &host);
    }
    t->gen = snap->gen;
    return t->vm;
}

/* ---- Requests ---- */

struct server;

/* One request. While its decision waits for the audit commit the connection is
 * suspended and the fields below the body hold the answer to send. */
struct req_ctx {
    char *body;
    size_t len;
    size_t cap;
    bool is_too_big;
    /* A parked decision (see park()). */
    bool is_waiting;
    struct server *srv;
    struct MHD_Connection *conn;
    struct snapshot *snap; /* held until the answer */
    struct decision d;     /* for the metrics */
    uint64_t t0;
    char id[AUDIT_ID_LEN + 1];
    char *uid; /* AdmissionReview uid, or NULL for the API */
    char *api_version;
    const char *source;
    char *ok_body;      /* the answer once the record is committed */
    pv_status audit_rc; /* set by on_committed */
    char audit_msg[PV_ERR_MSG_MAX];
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static enum MHD_Result respond(struct MHD_Connection *c, unsigned int status, const char *type,
                               char *body)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    enum MHD_Result ret;

    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* 405 with the Allow header RFC 9110 asks for. */
static enum MHD_Result respond_method(struct MHD_Connection *c, const char *allow)
{
    char body[64];
    struct MHD_Response *r;
    enum MHD_Result ret;

    snprintf(body, sizeof(body), "{\"error\":\"use %s\"}", allow);
    r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    ret = MHD_queue_response(c, MHD_HTTP_METHOD_NOT_ALLOWED, r);
    MHD_destroy_response(r);
    return ret;
}

/* A JSON error body {"error": msg}. */
static enum MHD_Result respond_error(struct MHD_Connection *c, unsigned int status, const char *msg)
{
    cJSON *j = cJSON_CreateObject();
    char *text;

    cJSON_AddStringToObject(j, "error", msg);
    text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return respond(c, status, "application/json", text);
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? xstrdup(s) : NULL;
}

/* The violations of a decision as the audit's JSON text. */
static char *violations_json(const struct decision *d)
{
    cJSON *list = decide_findings_list(d);
    char *text = cJSON_PrintUnformatted(list);

    cJSON_Delete(list);
    return text;
}

static void push_line(char ***out, size_t *n, const char *line)
{
    *out = xrealloc(*out, (*n + 1) * sizeof(**out));
    (*out)[(*n)++] = xstrdup(line);
}

/* Appends "binding (policy): message" lines of the given enforcement to a growable
 * list: each denial ends with how to ask for an exception; warnings include what an
 * exception or a break-glass window let through. */
static void collect(const struct decision *d, const struct pv_request *req, enum vm_enforcement enf,
                    char ***out, size_t *n)
{
    for (size_t i = 0; i < d->n_items; i++) {
        const struct decide_item *it = &d->items[i];
        char line[1600];
        char hint[400] = "";
        char until[40];

        if (!it->is_violated)
            continue;
        if (it->is_covered) {
            if (enf != VM_WARN)
                continue;
            audit_format_time(it->exception_until_ms, until, sizeof(until));
            snprintf(line, sizeof(line), "%s (%s): allowed by exception %s until %s: %s",
                     it->binding->id, it->policy->id, it->exception_id, until,
                     it->r.n_violations > 0 ? it->r.violations[0] : "");
            push_line(out, n, line);
            continue;
        }
        if (it->enforcement != enf)
            continue;
        if (it->r.outcome >= VM_ERROR) {
            snprintf(line, sizeof(line), "%s: policy error: %s", it->binding->id, it->r.error);
            push_line(out, n, line);
            continue;
        }
        if (enf == VM_DENY)
            decide_exception_hint(it->policy, req, hint, sizeof(hint));
        for (size_t k = 0; k < it->r.n_violations; k++) {
            if (it->is_breakglass)
                snprintf(line, sizeof(line), "BREAK-GLASS %s: would be denied: %s (%s): %s",
                         d->breakglass_id, it->binding->id, it->policy->id, it->r.violations[k]);
            else
                snprintf(line, sizeof(line), "%s (%s): %s%s%s", it->binding->id, it->policy->id,
                         it->r.violations[k], hint[0] != '\0' ? " (" : "", hint);
            if (hint[0] != '\0' && strlen(line) + 2 < sizeof(line))
                memcpy(line + strlen(line), ")", 2);
            push_line(out, n, line);
        }
    }
}

static void free_lines(char **lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
}

static void observe(struct server *srv, const struct decision *d, uint64_t t0)
{
    uint64_t us = (now_ns() - t0) / 1000;
    size_t b = 0;

    while (b < 9 && (double)us / 1000.0 > latency_bounds_ms[b])
        b++;
    atomic_fetch_add(&srv->latency_buckets[b], 1);
    atomic_fetch_add(&srv->latency_us_sum, us);
    atomic_fetch_add(d->is_allowed ? &srv->n_allowed : &srv->n_denied, 1);
    atomic_fetch_add(&srv->n_by_path[d->path], 1);
    pthread_mutex_lock(&srv->policy_mu);
    for (size_t i = 0; i < d->n_items; i++) {
        const struct decide_item *it = &d->items[i];
        struct policy_count *pc = NULL;

        if (!it->is_violated && it->r.outcome < VM_ERROR)
            continue;
        for (size_t k = 0; k < srv->n_policy_counts && pc == NULL; k++)
            if (strcmp(srv->policy_counts[k].policy, it->policy->id) == 0)
                pc = &srv->policy_counts[k];
        if (pc == NULL && srv->n_policy_counts < POLICY_COUNTS_MAX) {
            srv->policy_counts =
                xrealloc(srv->policy_counts, (srv->n_policy_counts + 1) * sizeof(*pc));
            pc = &srv->policy_counts[srv->n_policy_counts++];
            memset(pc, 0, sizeof(*pc));
            pc->policy = xstrdup(it->policy->id);
        }
        if (pc == NULL)
            continue;
        if (it->r.outcome >= VM_ERROR)
            pc->errors++;
        else
            pc->by_enforcement[it->enforcement]++;
    }
    pthread_mutex_unlock(&srv->policy_mu);
}

/* What the audit record says beyond the decision itself. Borrowed strings. */
struct record_meta {
    struct server *srv;
    const char *source;
    const char *request_uid;
    const char *kind;
    const char *actor;
    const char *name;
};

/* Decides 'req' (req->object may be NULL: nothing to decide, allowed) and builds its
 * audit record. On PV_OK *d holds the decision (release with decision_fini) and *rec
 * the record to commit (caller takes it); with 'patch', the mutating bindings run and
 * *patch is their JSONPatch. On failure nothing is held. */
static pv_status decide_for(struct snapshot *snap, enum cfg_entry entry,
                            const struct pv_request *req, const struct record_meta *m, uint64_t t0,
                            struct decision *d, struct audit_record **rec_out, cJSON **patch,
                            struct pv_err *err)
{
    struct audit_record *rec;
    struct vm *vm;
    pv_status st = PV_OK;

    memset(d, 0, sizeof(*d));
    if (req->object == NULL) {
        d->is_allowed = true;
        d->path = DECIDE_GOLDEN;
    } else {
        vm = thread_vm(snap, err);
        if (vm == NULL)
            st = PV_EPOLICY;
        else if (patch != NULL)
            st = decide_mutate(vm, snap->e.cfg, req, d, patch, err);
        else
            st = decide_eval(vm, snap->e.cfg, entry, req, d, err);
        if (st) {
            decision_fini(d);
            return st;
        }
        if (patch == NULL) {
            struct exc_state *xs = exc_state_acquire(m->srv);

            if (xs != NULL)
                decide_apply_exceptions(d, req, &xs->exc, &xs->bg, clock_wall_ms());
            exc_state_release(xs);
        }
    }
    rec = xcalloc(1, sizeof(*rec));
    audit_new_id(rec->id);
    rec->time_ms = clock_wall_ms();
    rec->source = xstrdup(m->source);
    rec->request_uid = dup_or_null(m->request_uid);
    rec->kind = xstrdup(m->kind);
    rec->operation = xstrdup(req->operation != NULL ? req->operation : "CREATE");
    rec->team = xstrdup(req->subject != NULL && json_str(req->subject, "team", NULL) != NULL
                            ? json_str(req->subject, "team", NULL)
                            : "unknown");
    rec->service =
        dup_or_null(req->subject != NULL ? json_str(req->subject, "service", NULL) : NULL);
    rec->namespace = dup_or_null(req->namespace);
    rec->resource_kind =
        dup_or_null(req->object != NULL ? json_str(req->object, "kind", NULL) : NULL);
    rec->resource_name = dup_or_null(
        m->name != NULL ? m->name
                        : (req->object != NULL ? json_str(req->object, "metadata", "name") : NULL));
    rec->actor = dup_or_null(m->actor);
    rec->decision = xstrdup(d->is_allowed ? "allow" : "deny");
    rec->path = xstrdup(decide_path_name(d->path));
    rec->violations = violations_json(d);
    rec->bundle_hash = xstrdup(snap->bundle_hash);
    rec->latency_us = (int64_t)((now_ns() - t0) / 1000);
    rec->is_dry_run = req->is_dry_run;
    rec->is_exception_available = d->is_exception_available;
    if (patch == NULL && d->is_allowed && req->object != NULL && charge_is_enabled(snap->e.cfg)) {
        struct pv_err cerr = {0};

        if (charge_for(snap->e.cfg, req, &rec->charge, &rec->details, &cerr))
            log_msg(LOG_WARN, "quota", "decision=%s not charged: %s", rec->id, cerr.msg);
        else if (rec->charge != NULL && d->path == DECIDE_BREAKGLASS)
            rec->charge->is_forced = true; /* break-glass lifts quota denials too */
        /* A deploy decided through the API (a CI gate) is checked against the quota but
         * holds nothing: only admission and provisioning change what a team holds. */
        if (rec->charge != NULL && strcmp(m->source, "admission") != 0 &&
            strcmp(req->kind, "provision") != 0)
            rec->charge->is_check_only = true;
    }
    /* Denials of watched policies are notified; a charged decision may still become a
     * quota denial in the writer, so it carries the routes too. */
    if (snap->notify_routes != NULL && (d->path == DECIDE_DENIED || rec->charge != NULL))
        rec->notify_routes = xstrdup(snap->notify_routes);
    *rec_out = rec;
    return PV_OK;
}

/* The audit writer's completion: wake the parked connection. Writer thread. */
static void on_committed(void *arg, pv_status rc, const char *msg)
{
    struct req_ctx *r = arg;

    r->audit_rc = rc;
    snprintf(r->audit_msg, sizeof(r->audit_msg), "%s", msg);
    MHD_resume_connection(r->conn);
}

/* Queues 'rec' (takes it) and suspends the connection until its batch has committed,
 * so the worker thread serves other connections meanwhile and concurrent decisions
 * share one commit. Takes 'snap', 'd' and 'ok_body' (the answer once committed); the
 * answer is queued by finish() when libmicrohttpd calls the handler again. */
static enum MHD_Result park(struct server *srv, struct MHD_Connection *c, struct req_ctx *r,
                            struct snapshot *snap, struct decision *d, struct audit_record *rec,
                            uint64_t t0, const char *uid, const char *api_version,
                            const char *source, char *ok_body)
{
    struct pv_err err = {0};
    uint64_t deadline = t0 + (uint64_t)snap->e.cfg->server.request_timeout_ms * 1000000u;

    r->srv = srv;
    r->conn = c;
    r->snap = snap;
    r->d = *d;
    memset(d, 0, sizeof(*d));
    r->t0 = t0;
    memcpy(r->id, rec->id, sizeof(r->id));
    r->uid = dup_or_null(uid);
    r->api_version = dup_or_null(api_version);
    r->source = source;
    r->ok_body = ok_body;
    r->audit_rc = PV_OK;
    r->is_waiting = true;
    atomic_fetch_add(&srv->n_parked, 1);
    MHD_suspend_connection(c);
    if (audit_submit_cb(srv->audit, rec, deadline, on_committed, r, &err)) {
        /* Not queued: the callback never runs; answer with the failure ourselves. */
        r->audit_rc = err.code;
        snprintf(r->audit_msg, sizeof(r->audit_msg), "%s", err.msg);
        MHD_resume_connection(c);
    }
    return MHD_YES;
}

/* Sends the answer of a parked decision once its commit finished. */
static enum MHD_Result finish(struct MHD_Connection *c, struct req_ctx *r)
{
    struct server *srv = r->srv;
    enum MHD_Result ret;

    r->is_waiting = false;
    atomic_fetch_sub(&srv->n_parked, 1);
    if (r->audit_rc == PV_OK) {
        observe(srv, &r->d, r->t0);
        log_msg(LOG_INFO, "decide", "uid=%s decision=%s source=%s allowed=%s path=%s us=%llu",
                r->uid != NULL ? r->uid : "-", r->id, r->source, r->d.is_allowed ? "true" : "false",
                decide_path_name(r->d.path), (unsigned long long)((now_ns() - r->t0) / 1000));
        ret = respond(c, MHD_HTTP_OK, "application/json", r->ok_body);
        r->ok_body = NULL;
    } else if (r->audit_rc == PV_EFULL) {
        /* Recorded, as a denial: the writer found the team over its quota. */
        r->d.is_allowed = false;
        r->d.path = DECIDE_DENIED;
        observe(srv, &r->d, r->t0);
        atomic_fetch_add(&srv->n_quota_denied, 1);
        log_msg(LOG_INFO, "decide",
                "uid=%s decision=%s source=%s allowed=false path=denied quota=\"%s\"",
                r->uid != NULL ? r->uid : "-", r->id, r->source, r->audit_msg);
        if (r->uid != NULL) {
            struct admission_resp resp = {0};
            char msg[PV_ERR_MSG_MAX + 64];

            snprintf(msg, sizeof(msg), "quota: %s", r->audit_msg);
            resp.uid = r->uid;
            resp.api_version = r->api_version;
            resp.status_code = 403;
            resp.message = msg;
            resp.decision_id = r->id;
            resp.path = "denied";
            ret = respond(c, MHD_HTTP_OK, "application/json", admission_response_json(&resp));
        } else {
            cJSON *out = cJSON_CreateObject();
            cJSON *v = cJSON_AddArrayToObject(out, "violations");
            cJSON *x = cJSON_CreateObject();

            cJSON_AddStringToObject(out, "decision_id", r->id);
            cJSON_AddBoolToObject(out, "allowed", false);
            cJSON_AddStringToObject(out, "path", "denied");
            cJSON_AddStringToObject(x, "binding", "quota");
            cJSON_AddStringToObject(x, "policy", "quota");
            cJSON_AddStringToObject(x, "title", "Teams stay within their quotas");
            cJSON_AddStringToObject(x, "enforcement", "deny");
            cJSON_AddStringToObject(x, "message", r->audit_msg);
            cJSON_AddItemToArray(v, x);
            cJSON_AddArrayToObject(out, "errors");
            ret = respond(c, MHD_HTTP_OK, "application/json", cJSON_PrintUnformatted(out));
            cJSON_Delete(out);
        }
    } else {
        /* Not recorded, so not decided: the API server applies its failurePolicy. */
        atomic_fetch_add(&srv->n_errors, 1);
        log_msg(LOG_ERROR, "serve", "uid=%s decision=%s not recorded: %s",
                r->uid != NULL ? r->uid : "-", r->id, r->audit_msg);
        if (r->uid != NULL) {
            struct admission_resp resp = {0};

            resp.uid = r->uid;
            resp.api_version = r->api_version;
            resp.status_code = 500;
            resp.message = r->audit_msg;
            ret = respond(c, MHD_HTTP_OK, "application/json", admission_response_json(&resp));
        } else {
            ret = respond_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, r->audit_msg);
        }
    }
    decision_fini(&r->d);
    snapshot_release(r->snap);
    r->snap = NULL;
    return ret;
}

/* Parses and decodes the AdmissionReview in the body. Returns the review tree (caller
 * frees; *ar borrows from it), or NULL after answering: a JSON error for a body that
 * is no review, a review answer with code 400 for a review that has a uid. */
static cJSON *open_review(struct MHD_Connection *c, struct req_ctx *rc, struct admission_req *ar,
                          enum MHD_Result *ret)
{
    cJSON *review = cJSON_ParseWithLength(rc->body, rc->len);
    struct admission_resp resp = {0};
    struct pv_err err = {0};

    if (review == NULL) {
        *ret = respond_error(c, MHD_HTTP_BAD_REQUEST,
                             "the body is not valid JSON (or nests deeper than 1000 levels)");
        return NULL;
    }
    if (admission_decode(review, ar, &err) == PV_OK)
        return review;
    if (ar->uid == NULL) {
        *ret = respond_error(c, MHD_HTTP_BAD_REQUEST, err.msg);
    } else {
        resp.uid = ar->uid;
        resp.status_code = 400;
        resp.message = err.msg;
        *ret = respond(c, MHD_HTTP_OK, "application/json", admission_response_json(&resp));
    }
    cJSON_Delete(review);
    return NULL;
}

/* POST /k8s/validate */
static enum MHD_Result handle_validate(struct server *srv, struct MHD_Connection *c,
                                       struct req_ctx *rc)
{
    uint64_t t0 = now_ns();
    struct pv_err err = {0};
    struct admission_req ar;
    struct admission_resp resp = {0};
    struct snapshot *snap;
    struct decision d;
    struct pv_request req;
    struct record_meta meta;
    struct audit_record *rec = NULL;
    cJSON *review;
    cJSON *subject = NULL;
    char **deny = NULL;
    char **warn = NULL;
    size_t n_deny = 0;
    size_t n_warn = 0;
    char message[4096] = "";
    enum MHD_Result ret;

    review = open_review(c, rc, &ar, &ret);
    if (review == NULL)
        return ret;
    snap = snapshot_acquire(srv);
    admission_to_request(&ar, NULL, &req);
    if (ar.object != NULL)
        subject = decide_subject(snap->e.cfg, ar.object, req.namespace, ar.name, ar.username);
    req.subject = subject;
    meta.srv = srv;
    meta.source = "admission";
    meta.request_uid = ar.uid;
    meta.kind = "deploy";
    meta.actor = ar.username;
    meta.name = ar.name;
    resp.uid = ar.uid;
    resp.api_version = ar.api_version;
    if (decide_for(snap, CFG_ADMISSION, &req, &meta, t0, &d, &rec, NULL, &err)) {
        atomic_fetch_add(&srv->n_errors, 1);
        resp.status_code = 500;
        resp.message = err.msg;
        ret = respond(c, MHD_HTTP_OK, "application/json", admission_response_json(&resp));
        snapshot_release(snap);
    } else {
        size_t len = 0;

        collect(&d, &req, VM_DENY, &deny, &n_deny);
        collect(&d, &req, VM_WARN, &warn, &n_warn);
        resp.is_allowed = d.is_allowed;
        resp.decision_id = rec->id;
        resp.path = decide_path_name(d.path);
        for (size_t i = 0; i < n_deny && len + 4 < sizeof(message); i++)
            len += (size_t)snprintf(message + len, sizeof(message) - len, "%s%s", i > 0 ? "; " : "",
                                    deny[i]);
        if (n_deny > 0)
            resp.message = message;
        resp.warnings = (const char *const *)warn;
        resp.n_warnings = n_warn;
        ret = park(srv, c, rc, snap, &d, rec, t0, ar.uid, ar.api_version, "admission",
                   admission_response_json(&resp));
    }
    free_lines(deny, n_deny);
    free_lines(warn, n_warn);
    cJSON_Delete(subject);
    cJSON_Delete(review);
    return ret;
}

/* POST /k8s/mutate: the JSONPatch of the mutating bindings, recorded like a decision
 * (kind "mutation"); it never denies: validation does. */
static enum MHD_Result handle_mutate(struct server *srv, struct MHD_Connection *c,
                                     struct req_ctx *rc)
{
    uint64_t t0 = now_ns();
    struct pv_err err = {0};
    struct admission_req ar;
    struct admission_resp resp = {0};
    struct snapshot *snap;
    struct decision d;
    struct pv_request req;
    struct record_meta meta;
    cJSON *review;
    cJSON *subject = NULL;
    cJSON *patch = NULL;
    struct audit_record *rec = NULL;
    char *patch_text = NULL;
    char *b64 = NULL;
    enum MHD_Result ret;

    review = open_review(c, rc, &ar, &ret);
    if (review == NULL)
        return ret;
    snap = snapshot_acquire(srv);
    /* Only CREATE and UPDATE carry an object worth patching. */
    if (ar.object != NULL &&
        (strcmp(ar.operation, "CREATE") == 0 || strcmp(ar.operation, "UPDATE") == 0))
        subject = decide_subject(snap->e.cfg, ar.object,
                                 ar.namespace != NULL && ar.namespace[0] != '\0'
                                     ? ar.namespace
                                     : json_str(ar.object, "metadata", "namespace"),
                                 ar.name, ar.username);
    admission_to_request(&ar, subject, &req);
    if (subject == NULL)
        req.object = NULL;
    meta.srv = srv;
    meta.source = "admission";
    meta.request_uid = ar.uid;
    meta.kind = "mutation";
    meta.actor = ar.username;
    meta.name = ar.name;
    resp.uid = ar.uid;
    resp.api_version = ar.api_version;
    if (decide_for(snap, CFG_ADMISSION, &req, &meta, t0, &d, &rec,
                   req.object != NULL ? &patch : NULL, &err)) {
        atomic_fetch_add(&srv->n_errors, 1);
        resp.status_code = 500;
        resp.message = err.msg;
        ret = respond(c, MHD_HTTP_OK, "application/json", admission_response_json(&resp));
        snapshot_release(snap);
    } else {
        resp.is_allowed = true;
        resp.decision_id = rec->id;
        if (patch != NULL && cJSON_GetArraySize(patch) > 0) {
            patch_text = cJSON_PrintUnformatted(patch);
            b64 = jsonpatch_base64(patch_text, strlen(patch_text));
            resp.patch_b64 = b64;
        }
        ret = park(srv, c, rc, snap, &d, rec, t0, ar.uid, ar.api_version, "admission",
                   admission_response_json(&resp));
    }
    free(patch_text);
    free(b64);
    cJSON_Delete(patch);
    cJSON_Delete(subject);
    cJSON_Delete(review);
    return ret;
}

static const enum cfg_role reader_roles[] = {ROLE_READER, ROLE_ADMIN, ROLE_APPROVER};

/* GET /v1/audit/decisions?since=&until=&team=&service=&policy=&path=&source=&limit= */
static enum MHD_Result handle_audit_query(struct server *srv, struct MHD_Connection *c);

/* The token of the request, or NULL after answering 401/403. */
static const struct cfg_token *authorize(struct MHD_Connection *c, const struct config *cfg,
                                         const enum cfg_role *roles, size_t n_roles,
                                         enum MHD_Result *ret)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    const struct cfg_token *t;

    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0) {
        *ret = respond_error(c, MHD_HTTP_UNAUTHORIZED,
                             "this endpoint needs an API token: Authorization: Bearer TOKEN");
        return NULL;
    }
    t = config_find_token(cfg, h + 7);
    if (t == NULL) {
        *ret = respond_error(c, MHD_HTTP_UNAUTHORIZED, "unknown API token");
        return NULL;
    }
    for (size_t i = 0; i < n_roles; i++)
        if (t->role == roles[i])
            return t;
    {
        char msg[160];

        snprintf(msg, sizeof(msg), "token %s has the role %s, which may not use this endpoint",
                 t->name, config_role_name(t->role));
        *ret = respond_error(c, MHD_HTTP_FORBIDDEN, msg);
    }
    return NULL;
}

/* POST /v1/decide: {"kind": "deploy"|"provision", "object": {...}, "namespace": "...",
 * "operation": "CREATE"} with a ci or admin token. */
static enum MHD_Result handle_decide(struct server *srv, struct MHD_Connection *c,
                                     struct req_ctx *rc)
{
    static const enum cfg_role roles[] = {ROLE_CI, ROLE_ADMIN};
    uint64_t t0 = now_ns();
    struct snapshot *snap = snapshot_acquire(srv);
    enum MHD_Result ret = MHD_NO;
    const struct cfg_token *tok = authorize(c, snap->e.cfg, roles, 2, &ret);
    struct pv_err err = {0};
    struct pv_request req = {0};
    struct record_meta meta = {0};
    struct decision d;
    struct audit_record *rec = NULL;
    char *text;
    cJSON *body = NULL;
    cJSON *subject = NULL;
    cJSON *out;
    const cJSON *obj;
    const char *kind;
    const char *ns;

    if (tok == NULL)
        goto done;
    body = cJSON_ParseWithLength(rc->body, rc->len);
    kind = json_str(body, "kind", NULL);
    obj = cJSON_GetObjectItemCaseSensitive(body, "object");
    if (!cJSON_IsObject(body) || !cJSON_IsObject(obj) || kind == NULL ||
        (strcmp(kind, "deploy") != 0 && strcmp(kind, "provision") != 0)) {
        ret = respond_error(c, MHD_HTTP_BAD_REQUEST,
                            "send {\"kind\": \"deploy\"|\"provision\", \"object\": {...}, "
                            "\"namespace\": optional}");
        goto done;
    }
    ns = json_str(body, "namespace", NULL);
    {
        const char *op = json_str(body, "operation", NULL);

        if (cJSON_GetObjectItemCaseSensitive(body, "operation") != NULL &&
            (op == NULL || (strcmp(op, "CREATE") != 0 && strcmp(op, "UPDATE") != 0 &&
                            strcmp(op, "DELETE") != 0))) {
            ret = respond_error(c, MHD_HTTP_BAD_REQUEST,
                                "operation is CREATE (default), UPDATE or DELETE");
            goto done;
        }
    }
    subject = decide_subject(snap->e.cfg, obj,
                             json_str(obj, "metadata", "namespace") != NULL
                                 ? json_str(obj, "metadata", "namespace")
                                 : ns,
                             NULL, tok->name);
    req.kind = kind;
    req.operation =
        json_str(body, "operation", NULL) != NULL ? json_str(body, "operation", NULL) : "CREATE";
    req.source = tok->role == ROLE_CI ? "ci" : "api";
    req.namespace = json_str(obj, "metadata", "namespace") != NULL
                        ? json_str(obj, "metadata", "namespace")
                        : ns;
    req.object = obj;
    req.subject = subject;
    meta.srv = srv;
    meta.source = req.source;
    meta.kind = kind;
    meta.actor = tok->name;
    if (decide_for(snap, tok->role == ROLE_CI ? CFG_CI : CFG_API, &req, &meta, t0, &d, &rec, NULL,
                   &err)) {
        atomic_fetch_add(&srv->n_errors, 1);
        ret = respond_error(
            c, err.code == PV_EINVAL ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_INTERNAL_SERVER_ERROR,
            err.msg);
        goto done;
    }
    out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "decision_id", rec->id);
    cJSON_AddBoolToObject(out, "allowed", d.is_allowed);
    cJSON_AddStringToObject(out, "path", decide_path_name(d.path));
    decide_findings_json_hinted(&d, &req, out);
    text = cJSON_PrintUnformatted(out);
    cJSON_Delete(out);
    ret = park(srv, c, rc, snap, &d, rec, t0, NULL, NULL, req.source, text);
    snap = NULL;
done:
    cJSON_Delete(subject);
    cJSON_Delete(body);
    snapshot_release(snap);
    return ret;
}

static enum MHD_Result handle_audit_query(struct server *srv, struct MHD_Connection *c)
{
    struct snapshot *snap = snapshot_acquire(srv);
    enum MHD_Result ret = MHD_NO;
    struct audit_filter f = {0};
    struct pv_err err = {0};
    const char *since = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "since");
    const char *until = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "until");
    const char *limit = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
    cJSON *rows = NULL;
    cJSON *out;

    if (authorize(c, snap->e.cfg, reader_roles, 3, &ret) == NULL)
        goto done;
    if ((since != NULL && !cmd_audit_parse_time(since, wall_ms(), &f.since_ms)) ||
        (until != NULL && !cmd_audit_parse_time(until, wall_ms(), &f.until_ms))) {
        ret = respond_error(c, MHD_HTTP_BAD_REQUEST,
                            "since/until take a duration (30d, 12h), a date or RFC 3339");
        goto done;
    }
    if (limit != NULL) {
        char *end = NULL;
        long n = strtol(limit, &end, 10);

        if (end == limit || *end != '\0' || n < 1 || n > 10000) {
            ret = respond_error(c, MHD_HTTP_BAD_REQUEST, "limit takes 1 to 10000");
            goto done;
        }
        f.limit = (size_t)n;
    }
    f.team = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "team");
    f.service = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "service");
    f.policy = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "policy");
    f.path = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "path");
    f.source = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "source");
    if (audit_query(srv->db_path, &f, &rows, &err)) {
        ret = respond_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, err.msg);
        goto done;
    }
    out = cJSON_CreateObject();
    cJSON_AddItemToObject(out, "decisions", rows);
    ret = respond(c, MHD_HTTP_OK, "application/json", cJSON_PrintUnformatted(out));
    cJSON_Delete(out);
done:
    snapshot_release(snap);
    return ret;
}

static const char *query_arg(void *cls, const char *key)
{
    return MHD_lookup_connection_value(cls, MHD_GET_ARGUMENT_KIND, key);
}

/* /v1/exceptions... and /v1/breakglass... (server/api.c) with any valid token; the API
 * checks the role each action needs. */
static enum MHD_Result handle_api(struct server *srv, struct MHD_Connection *c, const char *method,
                                  const char *rest, struct req_ctx *rc, bool is_breakglass)
{
    static const enum cfg_role any[] = {ROLE_ADMIN, ROLE_APPROVER, ROLE_CI, ROLE_READER};
    struct snapshot *snap = snapshot_acquire(srv);
    enum MHD_Result ret = MHD_NO;
    const struct cfg_token *tok = authorize(c, snap->e.cfg, any, 4, &ret);
    struct api_call call = {0};
    struct api_answer ans = {0};
    struct pv_err err = {0};

    if (tok == NULL)
        goto done;
    call.vm = thread_vm(snap, &err);
    if (call.vm == NULL) {
        ret = respond_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, err.msg);
        goto done;
    }
    call.audit = srv->audit;
    call.db_path = srv->db_path;
    call.cfg = snap->e.cfg;
    call.tok = tok;
    call.notify_routes = snap->notify_routes;
    call.deadline_ns = now_ns() + (uint64_t)snap->e.cfg->server.request_timeout_ms * 1000000u;
    call.method = method;
    call.rest = rest;
    call.body = rc->body;
    call.len = rc->len;
    call.arg = query_arg;
    call.arg_cls = c;
    if (is_breakglass)
        api_breakglass(&call, &ans);
    else
        api_exceptions(&call, &ans);
    if (ans.is_changed)
        exc_reload(srv, &err);
    if (ans.status == MHD_HTTP_METHOD_NOT_ALLOWED && ans.allow != NULL) {
        free(ans.body);
        ret = respond_method(c, ans.allow);
    } else {
        ret = respond(c, ans.status, "application/json", ans.body);
    }
done:
    snapshot_release(snap);
    return ret;
}

/* ---- Quotas and costs ---- */

/* paved.quota(team) for policies (vm host callback; a worker thread). */
static cJSON *quota_for_policy(void *arg, const char *team)
{
    struct server *srv = arg;
    struct snapshot *snap;
    struct audit_usage used = {0};
    struct pv_err err = {0};
    cJSON *doc = NULL;

    if (srv == NULL)
        return NULL;
    snap = snapshot_acquire(srv);
    if (charge_is_enabled(snap->e.cfg)) {
        if (audit_team_usage(srv->db_path, team, &used, &err) == PV_OK)
            doc = charge_quota_json(snap->e.cfg, team, &used);
        else
            log_msg(LOG_WARN, "quota", "paved.quota(%s): %s", team, err.msg);
    }
    snapshot_release(snap);
    return doc;
}

/* The writer's quota check (audit_quota_fn), with the limits of the current config. */
static bool quota_check(void *arg, const char *team, const struct audit_usage *before,
                        const struct audit_usage *after, char *msg, size_t cap)
{
    struct server *srv = arg;
    struct snapshot *snap = snapshot_acquire(srv);
    bool is_over = charge_quota_exceeds(snap->e.cfg, team, before, after, msg, cap);

    snapshot_release(snap);
    return is_over;
}

/* GET /v1/quotas/TEAM (any token) */
static enum MHD_Result handle_quota(struct server *srv, struct MHD_Connection *c, const char *team)
{
    static const enum cfg_role any[] = {ROLE_ADMIN, ROLE_APPROVER, ROLE_CI, ROLE_READER};
    struct snapshot *snap = snapshot_acquire(srv);
    enum MHD_Result ret = MHD_NO;
    struct audit_usage used = {0};
    struct pv_err err = {0};
    cJSON *doc;

    if (authorize(c, snap->e.cfg, any, 4, &ret) == NULL)
        goto done;
    if (team[0] == '\0' || strchr(team, '/') != NULL || strlen(team) > 253) {
        ret = respond_error(c, MHD_HTTP_NOT_FOUND, "use GET /v1/quotas/TEAM");
        goto done;
    }
    if (audit_team_usage(srv->db_path, team, &used, &err)) {
        ret = respond_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, err.msg);
        goto done;
    }
    doc = charge_quota_json(snap->e.cfg, team, &used);
    ret = respond(c, MHD_HTTP_OK, "application/json", cJSON_PrintUnformatted(doc));
    cJSON_Delete(doc);
done:
    snapshot_release(snap);
    return ret;
}

/* GET /v1/costs?team=&since=&until=&group_by=team|service|cost-center */
static enum MHD_Result handle_costs(struct server *srv, struct MHD_Connection *c)
{
    struct snapshot *snap = snapshot_acquire(srv);
    enum MHD_Result ret = MHD_NO;
    struct audit_cost_filter f = {0};
    struct pv_err err = {0};
    const char *since = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "since");
    const char *until = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "until");
    const char *by = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "group_by");
    int64_t now = clock_wall_ms();
    cJSON *doc = NULL;

    if (authorize(c, snap->e.cfg, reader_roles, 3, &ret) == NULL)
        goto done;
    f.since_ms = now - 30LL * 86400000;
    if ((since != NULL && !cmd_audit_parse_time(since, now, &f.since_ms)) ||
        (until != NULL && !cmd_audit_parse_time(until, now, &f.until_ms))) {
        ret = respond_error(c, MHD_HTTP_BAD_REQUEST,
                            "since/until take a duration (30d, 12h), a date or RFC 3339");
        goto done;
    }
    if (by == NULL || strcmp(by, "team") == 0) {
        f.group_by = AUDIT_COST_BY_TEAM;
    } else if (strcmp(by, "service") == 0) {
        f.group_by = AUDIT_COST_BY_SERVICE;
    } else if (strcmp(by, "cost-center") == 0) {
        f.group_by = AUDIT_COST_BY_COST_CENTER;
    } else {
        ret = respond_error(c, MHD_HTTP_BAD_REQUEST, "group_by is team, service or cost-center");
        goto done;
    }
    f.team = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "team");
    if (audit_costs(srv->db_path, &f, &doc, &err)) {
        ret = respond_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, err.msg);
        goto done;
    }
    cJSON_AddStringToObject(doc, "currency", snap->e.cfg->prices.currency);
    ret = respond(c, MHD_HTTP_OK, "application/json", cJSON_PrintUnformatted(doc));
    cJSON_Delete(doc);
done:
    snapshot_release(snap);
    return ret;
}

/* ---- Credentials ---- */

/* POST /v1/credentials: the identity is the body's id_token or the bearer API token. */
static enum MHD_Result handle_credentials(struct server *srv, struct MHD_Connection *c,
                                          struct req_ctx *rc)
{
    struct snapshot *snap = snapshot_acquire(srv);
    struct creds_call call = {0};
    struct api_answer ans = {0};
    struct pv_err err = {0};
    enum MHD_Result ret;

    if (srv->creds == NULL) {
        snapshot_release(snap);
        return respond_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                             "credential issuance is not available: the signing keys could not "
                             "be set up (see the server log)");
    }
    call.vm = thread_vm(snap, &err);
    if (call.vm == NULL) {
        snapshot_release(snap);
        return respond_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, err.msg);
    }
    call.audit = srv->audit;
    call.cfg = snap->e.cfg;
    call.bundle_hash = snap->bundle_hash;
    call.authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    call.body = rc->body;
    call.len = rc->len;
    call.deadline_ns = now_ns() + (uint64_t)snap->e.cfg->server.request_timeout_ms * 1000000u;
    creds_issue(srv->creds, &call, &ans);
    ret = respond(c, ans.status, "application/json", ans.body);
    snapshot_release(snap);
    return ret;
}

static enum MHD_Result handle_well_known(struct server *srv, struct MHD_Connection *c, bool is_jwks)
{
    struct snapshot *snap;
    cJSON *doc;
    enum MHD_Result ret;

    if (srv->creds == NULL)
        return respond_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "no signing keys");
    snap = snapshot_acquire(srv);
    doc = is_jwks ? creds_jwks(srv->creds, clock_wall_ms()) : creds_discovery(snap->e.cfg);
    ret = respond(c, MHD_HTTP_OK, "application/json", cJSON_PrintUnformatted(doc));
    cJSON_Delete(doc);
    snapshot_release(snap);
    return ret;
}

/* GET /v1/reports/adoption?since=30d&until=&team=&by=day|week|month */
static enum MHD_Result handle_report(struct server *srv, struct MHD_Connection *c)
{
    struct snapshot *snap = snapshot_acquire(srv);
    enum MHD_Result ret = MHD_NO;
    struct audit_report_opts o = {0};
    struct pv_err err = {0};
    const char *since = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "since");
    const char *until = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "until");
    const char *by = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "by");
    int64_t now = clock_wall_ms();
    cJSON *doc = NULL;

    if (authorize(c, snap->e.cfg, reader_roles, 3, &ret) == NULL)
        goto done;
    o.now_ms = now;
    o.until_ms = now + 1;
    o.since_ms = now - 30LL * 86400000;
    if ((since != NULL && !cmd_audit_parse_time(since, now, &o.since_ms)) ||
        (until != NULL && !cmd_audit_parse_time(until, now, &o.until_ms))) {
        ret = respond_error(c, MHD_HTTP_BAD_REQUEST,
                            "since/until take a duration (30d, 12h), a date or RFC 3339");
        goto done;
    }
    if (by == NULL || strcmp(by, "none") == 0) {
        o.by = AUDIT_REPORT_BY_NONE;
    } else if (strcmp(by, "day") == 0) {
        o.by = AUDIT_REPORT_BY_DAY;
    } else if (strcmp(by, "week") == 0) {
        o.by = AUDIT_REPORT_BY_WEEK;
    } else if (strcmp(by, "month") == 0) {
        o.by = AUDIT_REPORT_BY_MONTH;
    } else {
        ret = respond_error(c, MHD_HTTP_BAD_REQUEST, "by is one of none, day, week, month");
        goto done;
    }
    o.team = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "team");
    if (audit_report(srv->db_path, &o, &doc, &err)) {
        ret = respond_error(
            c, err.code == PV_EINVAL ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_INTERNAL_SERVER_ERROR,
            err.msg);
        goto done;
    }
    ret = respond(c, MHD_HTTP_OK, "application/json", cJSON_PrintUnformatted(doc));
    cJSON_Delete(doc);
done:
    snapshot_release(snap);
    return ret;
}

/* Appends to the growable text *b ('len' used of 'cap'), doubling it as needed. */
static void text_printf(char **b, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void text_printf(char **b, size_t *len, size_t *cap, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(*b + *len, *cap - *len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < *cap - *len)
            break;
        *cap *= 2;
        *b = xrealloc(*b, *cap);
    }
    *len += (size_t)n;
}

static void gauge_ratio(char **b, size_t *len, size_t *cap, const char *name, const char *team,
                        const cJSON *v)
{
    if (cJSON_IsNumber(v))
        text_printf(b, len, cap, "%s{team=\"%s\"} %g\n", name, team, v->valuedouble);
}

/* Recomputes the adoption gauges from the last 30 days of the store once a minute, and
 * after an exception or window changed (the report reads the whole window, so not more
 * often) (on the sweeper's thread: /metrics never waits for a report). */
static void refresh_gauges(struct server *srv)
{
    struct audit_report_opts o = {0};
    struct pv_err err = {0};
    int64_t now = clock_wall_ms();
    cJSON *doc = NULL;
    const cJSON *t;
    size_t cap = 4096;
    size_t len = 0;
    char *b;
    char *old;

    pthread_mutex_lock(&srv->gauges_mu);
    if (srv->gauges != NULL && now - srv->gauges_at_ms < 60000 && now >= srv->gauges_at_ms &&
        !atomic_exchange(&srv->is_gauges_stale, false)) {
        pthread_mutex_unlock(&srv->gauges_mu);
        return;
    }
    pthread_mutex_unlock(&srv->gauges_mu);
    o.now_ms = now;
    o.until_ms = now + 1;
    o.since_ms = now - 30LL * 86400000;
    if (audit_report(srv->db_path, &o, &doc, &err)) {
        log_msg(LOG_WARN, "serve", "adoption gauges: %s", err.msg);
        return;
    }
    b = xmalloc(cap);
    b[0] = '\0';
    text_printf(&b, &len, &cap,
                "# HELP paved_adoption_headline_ratio (golden + exception) / decisions of new "
                "services, last 30 days.\n# TYPE paved_adoption_headline_ratio gauge\n"
                "# HELP paved_adoption_voluntary_ratio golden / (golden + exception) where an "
                "exception was available, last 30 days.\n"
                "# TYPE paved_adoption_voluntary_ratio gauge\n"
                "# HELP paved_new_services New services seen in the last 30 days.\n"
                "# TYPE paved_new_services gauge\n");
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(doc, "teams"))
    {
        const char *team = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "team"));
        const cJSON *tot = cJSON_GetObjectItemCaseSensitive(t, "total");
        bool is_label_safe = team != NULL;

        /* Team names come from object labels: only plain text goes into a label. */
        for (const char *p = team; is_label_safe && *p != '\0'; p++)
            if ((unsigned char)*p < 0x20 || *p == '"' || *p == '\\' || *p == 0x7f)
                is_label_safe = false;
        if (!is_label_safe)
            continue;
        gauge_ratio(&b, &len, &cap, "paved_adoption_headline_ratio", team,
                    cJSON_GetObjectItemCaseSensitive(tot, "headline_adoption"));
        gauge_ratio(&b, &len, &cap, "paved_adoption_voluntary_ratio", team,
                    cJSON_GetObjectItemCaseSensitive(tot, "voluntary_adoption"));
        gauge_ratio(&b, &len, &cap, "paved_new_services", team,
                    cJSON_GetObjectItemCaseSensitive(tot, "new_services"));
    }
    text_printf(&b, &len, &cap,
                "# HELP paved_exceptions_expiring Approved exceptions expiring within 14 days.\n"
                "# TYPE paved_exceptions_expiring gauge\npaved_exceptions_expiring %d\n",
                cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "expiring")));
    cJSON_Delete(doc);
    pthread_mutex_lock(&srv->gauges_mu);
    old = srv->gauges;
    srv->gauges = b;
    srv->gauges_at_ms = now;
    pthread_mutex_unlock(&srv->gauges_mu);
    free(old);
}

static enum MHD_Result handle_metrics(struct server *srv, struct MHD_Connection *c)
{
    static const char *const paths[DECIDE_N_PATHS] = {"golden", "exception", "off-road", "denied",
                                                      "breakglass"};
    struct audit_stats st;
    size_t cap = 65536;
    size_t len = 0;
    char *b = xmalloc(cap);
    unsigned long cum = 0;

    audit_stats(srv->audit, &st);
#define OUT(...) text_printf(&b, &len, &cap, __VA_ARGS__)
    OUT("# HELP paved_decisions_total Decisions by outcome.\n# TYPE paved_decisions_total "
        "counter\n");
    OUT("paved_decisions_total{outcome=\"allow\"} %lu\n", atomic_load(&srv->n_allowed));
    OUT("paved_decisions_total{outcome=\"deny\"} %lu\n", atomic_load(&srv->n_denied));
    OUT("paved_decisions_total{outcome=\"error\"} %lu\n", atomic_load(&srv->n_errors));
    OUT("# HELP paved_decisions_by_path_total Decisions by path.\n"
        "# TYPE paved_decisions_by_path_total counter\n");
    for (int i = 0; i < DECIDE_N_PATHS; i++)
        OUT("paved_decisions_by_path_total{path=\"%s\"} %lu\n", paths[i],
            atomic_load(&srv->n_by_path[i]));
    OUT("# HELP paved_decision_seconds Time to decide and record.\n"
        "# TYPE paved_decision_seconds histogram\n");
    for (int i = 0; i < 9; i++) {
        cum += atomic_load(&srv->latency_buckets[i]);
        OUT("paved_decision_seconds_bucket{le=\"%g\"} %lu\n", latency_bounds_ms[i] / 1000.0, cum);
    }
    cum += atomic_load(&srv->latency_buckets[9]);
    OUT("paved_decision_seconds_bucket{le=\"+Inf\"} %lu\n", cum);
    OUT("paved_decision_seconds_sum %g\n", (double)atomic_load(&srv->latency_us_sum) / 1e6);
    OUT("paved_decision_seconds_count %lu\n", cum);
    OUT("# HELP paved_audit_queue_depth Records waiting for the writer.\n"
        "# TYPE paved_audit_queue_depth gauge\npaved_audit_queue_depth %zu\n",
        st.queue_depth);
    OUT("# TYPE paved_audit_committed_total counter\npaved_audit_committed_total %llu\n",
        (unsigned long long)st.committed);
    OUT("# TYPE paved_audit_commit_failures_total counter\n"
        "paved_audit_commit_failures_total %llu\n",
        (unsigned long long)st.commit_failures);
    OUT("# TYPE paved_audit_writable gauge\npaved_audit_writable %d\n", st.is_writable ? 1 : 0);
    OUT("# HELP paved_policy_findings_total Decisions in which a policy found a violation "
        "(by enforcement) or failed.\n# TYPE paved_policy_findings_total counter\n");
    pthread_mutex_lock(&srv->policy_mu);
    for (size_t k = 0; k < srv->n_policy_counts && len + 512 < cap; k++) {
        static const char *const enf[] = {"deny", "warn", "audit"};
        const struct policy_count *pc = &srv->policy_counts[k];

        for (int e = 0; e < 3; e++)
            if (pc->by_enforcement[e] > 0)
                OUT("paved_policy_findings_total{policy=\"%s\",result=\"%s\"} %lu\n", pc->policy,
                    enf[e], pc->by_enforcement[e]);
        if (pc->errors > 0)
            OUT("paved_policy_findings_total{policy=\"%s\",result=\"error\"} %lu\n", pc->policy,
                pc->errors);
    }
    pthread_mutex_unlock(&srv->policy_mu);
    {
        static const char *const le[] = {"0.0001", "0.00025", "0.0005", "0.001",
                                         "0.0025", "0.005",   "0.01",   "+Inf"};
        unsigned long long acc = 0;

        OUT("# HELP paved_audit_commit_seconds Time of one group commit.\n"
            "# TYPE paved_audit_commit_seconds histogram\n");
        for (int j = 0; j < 8; j++) {
            acc += st.commit_latency_us_buckets[j];
            OUT("paved_audit_commit_seconds_bucket{le=\"%s\"} %llu\n", le[j], acc);
        }
        OUT("paved_audit_commit_seconds_sum %g\n", (double)st.commit_latency_us_sum / 1e6);
        OUT("paved_audit_commit_seconds_count %llu\n", (unsigned long long)st.commits);
    }
    OUT("# HELP paved_reloads_total Config and policy reloads.\n# TYPE paved_reloads_total "
        "counter\n");
    OUT("paved_reloads_total{result=\"ok\"} %lu\n", atomic_load(&srv->n_reloads_ok));
    OUT("paved_reloads_total{result=\"rejected\"} %lu\n", atomic_load(&srv->n_reloads_failed));
    {
        struct exc_state *xs = exc_state_acquire(srv);
        struct notify *n = atomic_load(&srv->notify);
        int64_t now = clock_wall_ms();
        size_t active = 0;
        size_t windows = 0;

        for (size_t i = 0; xs != NULL && i < xs->exc.n; i++)
            active += xs->exc.items[i].expires_ms > now;
        for (size_t i = 0; xs != NULL && i < xs->bg.n; i++)
            windows += xs->bg.items[i].ends_ms > now;
        exc_state_release(xs);
        OUT("# HELP paved_exceptions_active Approved exceptions in force.\n"
            "# TYPE paved_exceptions_active gauge\npaved_exceptions_active %zu\n",
            active);
        OUT("# HELP paved_breakglass_active Break-glass windows open now.\n"
            "# TYPE paved_breakglass_active gauge\npaved_breakglass_active %zu\n",
            windows);
        OUT("# TYPE paved_quota_denied_total counter\npaved_quota_denied_total %lu\n",
            atomic_load(&srv->n_quota_denied));
        if (n != NULL) {
            struct notify_stats ns;

            notify_stats(n, &ns);
            OUT("# HELP paved_notifications_total Outbound notifications by outcome.\n"
                "# TYPE paved_notifications_total counter\n"
                "paved_notifications_total{result=\"delivered\"} %llu\n"
                "paved_notifications_total{result=\"failed_attempt\"} %llu\n"
                "paved_notifications_total{result=\"dead\"} %llu\n",
                (unsigned long long)ns.delivered, (unsigned long long)ns.failed,
                (unsigned long long)ns.dead);
            OUT("# TYPE paved_outbox_pending gauge\npaved_outbox_pending %lld\n"
                "# TYPE paved_outbox_dead gauge\npaved_outbox_dead %lld\n",
                (long long)ns.pending, (long long)ns.dead_stored);
        }
    }
    pthread_mutex_lock(&srv->gauges_mu);
    if (srv->gauges != NULL && len + strlen(srv->gauges) + 1 < cap)
        OUT("%s", srv->gauges);
    pthread_mutex_unlock(&srv->gauges_mu);
#undef OUT
    return respond(c, MHD_HTTP_OK, "text/plain; version=0.0.4", b);
}

static enum MHD_Result dispatch(struct server *srv, struct MHD_Connection *c, const char *url,
                                const char *method, struct req_ctx *rc)
{
    bool is_get = strcmp(method, "GET") == 0;
    bool is_post = strcmp(method, "POST") == 0;

    if (rc->is_too_big)
        return respond_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "the body exceeds the size limit");
    if (strcmp(url, "/healthz") == 0) {
        if (!is_get)
            return respond_method(c, "GET");
        return respond(c, MHD_HTTP_OK, "application/json", xstrdup("{\"status\":\"ok\"}"));
    }
    if (strcmp(url, "/readyz") == 0) {
        struct audit_stats st;

        if (!is_get)
            return respond_method(c, "GET");
        audit_stats(srv->audit, &st);
        if (!st.is_writable)
            return respond_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                                 "the audit store is not writable");
        return respond(c, MHD_HTTP_OK, "application/json", xstrdup("{\"status\":\"ready\"}"));
    }
    if (strcmp(url, "/metrics") == 0) {
        if (!is_get)
            return respond_method(c, "GET");
        return handle_metrics(srv, c);
    }
    if (strcmp(url, "/v1/audit/decisions") == 0) {
        if (!is_get)
            return respond_method(c, "GET");
        return handle_audit_query(srv, c);
    }
    if (strcmp(url, "/v1/decide") == 0) {
        if (!is_post)
            return respond_method(c, "POST");
        return handle_decide(srv, c, rc);
    }
    if (strcmp(url, "/v1/credentials") == 0) {
        if (!is_post)
            return respond_method(c, "POST");
        return handle_credentials(srv, c, rc);
    }
    if (strcmp(url, "/.well-known/jwks.json") == 0 ||
        strcmp(url, "/.well-known/openid-configuration") == 0) {
        if (!is_get)
            return respond_method(c, "GET");
        return handle_well_known(srv, c, url[13] == 'j');
    }
    if (strncmp(url, "/v1/quotas/", 11) == 0) {
        if (!is_get)
            return respond_method(c, "GET");
        return handle_quota(srv, c, url + 11);
    }
    if (strcmp(url, "/v1/costs") == 0) {
        if (!is_get)
            return respond_method(c, "GET");
        return handle_costs(srv, c);
    }
    if (strcmp(url, "/v1/reports/adoption") == 0) {
        if (!is_get)
            return respond_method(c, "GET");
        return handle_report(srv, c);
    }
    if (strncmp(url, "/v1/exceptions", 14) == 0 && (url[14] == '\0' || url[14] == '/'))
        return handle_api(srv, c, method, url + 14, rc, false);
    if (strncmp(url, "/v1/breakglass", 14) == 0 && (url[14] == '\0' || url[14] == '/'))
        return handle_api(srv, c, method, url + 14, rc, true);
    if (strcmp(url, "/k8s/validate") == 0 || strcmp(url, "/k8s/mutate") == 0) {
        const char *ct;

        if (!is_post)
            return respond_method(c, "POST");
        ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0 ||
            (ct[16] != '\0' && ct[16] != ';' && ct[16] != ' '))
            return respond_error(c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                 "send Content-Type: application/json");
        if (url[5] == 'm')
            return handle_mutate(srv, c, rc);
        return handle_validate(srv, c, rc);
    }
    return respond_error(c, MHD_HTTP_NOT_FOUND, "no such endpoint");
}

/* With --client-ca, libmicrohttpd asks for a client certificate but leaves the
 * verdict to us: GnuTLS checks it against the trusted CA. */
static bool client_verified(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    unsigned int status = 1;
    gnutls_session_t session;

    if (ci == NULL || ci->tls_session == NULL)
        return false;
    session = (gnutls_session_t)ci->tls_session;
    if (gnutls_certificate_type_get(session) != GNUTLS_CRT_X509 ||
        gnutls_certificate_get_peers(session, &(unsigned int){0}) == NULL)
        return false;
    return gnutls_certificate_verify_peers2(session, &status) == GNUTLS_E_SUCCESS && status == 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct server *srv = cls;
    struct req_ctx *rc = *req_cls;

    (void)version;
    if (rc == NULL) {
        rc = xcalloc(1, sizeof(*rc));
        *req_cls = rc;
        return MHD_YES;
    }
    if (rc->is_waiting)
        return finish(c, rc);
    if (*upload_data_size > 0) {
        size_t max = srv->opts->max_body_bytes;

        if (!rc->is_too_big && rc->len + *upload_data_size <= max) {
            if (rc->len + *upload_data_size + 1 > rc->cap) {
                rc->cap = rc->len + *upload_data_size + 1 > rc->cap * 2
                              ? rc->len + *upload_data_size + 1
                              : rc->cap * 2;
                rc->body = xrealloc(rc->body, rc->cap);
            }
            memcpy(rc->body + rc->len, upload_data, *upload_data_size);
            rc->len += *upload_data_size;
            rc->body[rc->len] = '\0';
        } else {
            /* Keep reading (and dropping) so the client gets the 413 answer. */
            rc->is_too_big = true;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    atomic_fetch_add(&srv->n_requests, 1);
    if (rc->body == NULL)
        rc->body = xstrdup("");
    if (srv->opts->client_ca != NULL && !client_verified(c))
        return respond_error(c, MHD_HTTP_FORBIDDEN,
                             "a client certificate signed by the configured client CA is "
                             "required");
    return dispatch(srv, c, url, method, rc);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct req_ctx *rc = *req_cls;

    (void)cls;
    (void)c;
    (void)toe;
    if (rc != NULL) {
        free(rc->body);
        free(rc->ok_body);
        free(rc->uid);
        free(rc->api_version);
        if (rc->snap != NULL) {
            decision_fini(&rc->d);
            snapshot_release(rc->snap);
        }
        free(rc);
    }
    *req_cls = NULL;
}

/* ---- The serving certificate, reloaded when its files change ---- */

/* GnuTLS asks this callback for the certificate of each handshake, so a renewed
 * certificate (cert-manager, or files replaced by hand) is served without a restart.
 * A handshake may still use the pair it was given, so replaced pairs are kept until
 * the server stops; rotations are rare and bounded by TLS_PAIRS_MAX. */
#define TLS_PAIRS_MAX 64
#define TLS_CHAIN_MAX 8

struct tls_pair {
    gnutls_pcert_st pcert[TLS_CHAIN_MAX];
    unsigned int n_pcert;
    gnutls_privkey_t key;
};

static struct tls_pair *tls_pairs[TLS_PAIRS_MAX]; /* main thread only */
static size_t n_tls_pairs;                        /* main thread only */
static _Atomic(struct tls_pair *) tls_current;

static int tls_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
                        const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                        gnutls_pcert_st **pcert, unsigned int *pcert_length,
                        gnutls_privkey_t *privkey)
{
    struct tls_pair *p = atomic_load(&tls_current);

    (void)session;
    (void)req_ca_rdn;
    (void)nreqs;
    (void)pk_algos;
    (void)pk_algos_length;
    if (p == NULL)
        return -1;
    *pcert = p->pcert;
    *pcert_length = p->n_pcert;
    *privkey = p->key;
    return 0;
}

static void tls_pair_free(struct tls_pair *p)
{
    for (unsigned int i = 0; i < p->n_pcert; i++)
        gnutls_pcert_deinit(&p->pcert[i]);
    if (p->key != NULL)
        gnutls_privkey_deinit(p->key);
    free(p);
}

/* Loads a certificate chain and its key (PEM) and makes them the ones served.
 * Returns PV_EINVAL with GnuTLS's message when they do not load or do not match. */
static pv_status tls_load(const char *cert_path, const char *key_path, struct pv_err *err)
{
    struct tls_pair *p;
    char *cert = NULL;
    char *key = NULL;
    size_t cert_len = 0;
    size_t key_len = 0;
    gnutls_datum_t cd;
    gnutls_datum_t kd;
    pv_status rc;
    int g;

    if (n_tls_pairs == TLS_PAIRS_MAX)
        return pv_err_set(err, PV_EFULL, "certificate replaced %d times: restart paved",
                          TLS_PAIRS_MAX);
    rc = certs_check_pair(cert_path, key_path, err);
    if (rc == PV_OK)
        rc = fs_read_file(cert_path, PEM_MAX_BYTES, &cert, &cert_len, err);
    if (rc == PV_OK)
        rc = fs_read_file(key_path, PEM_MAX_BYTES, &key, &key_len, err);
    if (rc) {
        free(cert);
        free(key);
        return rc;
    }
    p = xcalloc(1, sizeof(*p));
    p->n_pcert = TLS_CHAIN_MAX;
    cd.data = (unsigned char *)cert;
    cd.size = (unsigned int)cert_len;
    kd.data = (unsigned char *)key;
    kd.size = (unsigned int)key_len;
    g = gnutls_pcert_list_import_x509_raw(p->pcert, &p->n_pcert, &cd, GNUTLS_X509_FMT_PEM, 0);
    if (g < 0) {
        p->n_pcert = 0;
        rc = pv_err_set(err, PV_EINVAL, "%s: %s", cert_path, gnutls_strerror(g));
    } else if ((g = gnutls_privkey_init(&p->key)) < 0 ||
               (g = gnutls_privkey_import_x509_raw(p->key, &kd, GNUTLS_X509_FMT_PEM, NULL, 0)) <
                   0) {
        rc = pv_err_set(err, PV_EINVAL, "%s: %s", key_path, gnutls_strerror(g));
    }
    OPENSSL_cleanse(key, key_len);
    free(key);
    free(cert);
    if (rc) {
        tls_pair_free(p);
        return rc;
    }
    tls_pairs[n_tls_pairs++] = p;
    atomic_store(&tls_current, p);
    return PV_OK;
}

static unsigned long long file_stamp(const char *path)
{
    struct stat st;

    if (path == NULL || stat(path, &st) != 0)
        return 0;
    return ((unsigned long long)st.st_mtim.tv_sec * 1000000000ull +
            (unsigned long long)st.st_mtim.tv_nsec) ^
           (unsigned long long)st.st_size ^ (unsigned long long)st.st_ino;
}

/* ---- Reload ---- */

/* Builds a snapshot from the config and policies (compiling every policy and binding
 * them once, so a bundle that would fail never serves), then swaps it in. Requests in
 * flight keep the snapshot they started with. */
static pv_status reload(struct server *srv, struct pv_err *err)
{
    struct snapshot *snap = xcalloc(1, sizeof(*snap));
    struct snapshot *old;
    pv_status rc = cli_engine_open(&snap->e, srv->policies_dir, srv->config_path, true, err);

    if (rc) {
        free(snap);
        atomic_fetch_add(&srv->n_reloads_failed, 1);
        return rc;
    }
    vm_free(snap->e.vm);
    snap->e.vm = NULL;
    snap->bindings = config_vm_bindings(snap->e.cfg);
    snap->notify_routes = routes_of(snap->e.cfg);
    atomic_init(&snap->refs, 1);
    bundle_digest(snap, snap->bundle_hash);
    pthread_mutex_lock(&srv->mu);
    old = srv->snap;
    snap->gen = old->gen + 1;
    snap->srv = srv;
    srv->snap = snap;
    pthread_mutex_unlock(&srv->mu);
    if (atomic_load(&srv->notify) != NULL)
        notify_configure(atomic_load(&srv->notify), snap->e.cfg);
    snapshot_release(old);
    atomic_fetch_add(&srv->n_reloads_ok, 1);
    return PV_OK;
}

/* ---- Expiry, reminders and the end of break-glass windows ---- */

/* Submits one due transition by paved itself. Returns true when it was applied. */
static bool sweep_one(struct server *srv, const struct snapshot *snap, enum audit_op op,
                      const char *id, int64_t days)
{
    struct pv_err err = {0};
    cJSON *args = cJSON_CreateObject();

    cJSON_AddStringToObject(args, "id", id);
    if (op == AUDIT_OP_EXC_REMIND)
        cJSON_AddNumberToObject(args, "days", (double)days);
    if (api_submit_event(srv->audit, op, args, "paved", snap->notify_routes,
                         now_ns() + 5000000000ull, &err)) {
        log_msg(LOG_WARN, "exceptions", "%s: %s", id, err.msg);
        return false;
    }
    log_msg(LOG_INFO, "exceptions", "%s %s", id,
            op == AUDIT_OP_EXC_EXPIRE   ? "expired"
            : op == AUDIT_OP_EXC_REMIND ? "expiring: reminder sent"
                                        : "break-glass window ended");
    return true;
}

/* Once a second: exceptions past their expiry become expired (decisions already stop
 * honouring them at the expiry itself), reminders go out exceptions.remind_days before,
 * and windows past their end are ended; each is an audit event and a notification. */
static void sweep(struct server *srv)
{
    struct exc_state *xs = exc_state_acquire(srv);
    struct snapshot *snap = snapshot_acquire(srv);
    int64_t now = clock_wall_ms();
    int64_t remind_ms = (int64_t)snap->e.cfg->exceptions.remind_days * 86400000;
    bool is_changed = false;
    struct pv_err err = {0};

    for (size_t i = 0; xs != NULL && i < xs->exc.n; i++) {
        const struct audit_exc *e = &xs->exc.items[i];

        if (e->expires_ms <= now)
            is_changed |= sweep_one(srv, snap, AUDIT_OP_EXC_EXPIRE, e->id, 0);
        else if (remind_ms > 0 && !e->is_reminded && e->expires_ms - remind_ms <= now)
            is_changed |= sweep_one(srv, snap, AUDIT_OP_EXC_REMIND, e->id,
                                    (e->expires_ms - now + 86399999) / 86400000);
    }
    for (size_t i = 0; xs != NULL && i < xs->bg.n; i++)
        if (xs->bg.items[i].ends_ms <= now)
            is_changed |= sweep_one(srv, snap, AUDIT_OP_BG_END, xs->bg.items[i].id, 0);
    exc_state_release(xs);
    snapshot_release(snap);
    if (is_changed || atomic_exchange(&srv->is_exc_reload_due, false))
        exc_reload(srv, &err);
}

/* A cheap fingerprint of the config file and the policy directory: names, sizes and
 * modification times. A change triggers a reload. */
static unsigned long long sources_fingerprint(const char *config, const char *dir)
{
    unsigned long long h = 1469598103934665603ull;
    struct stat st;
    char **names = NULL;
    size_t n = 0;

    if (config != NULL && stat(config, &st) == 0)
        h = (h ^ (unsigned long long)st.st_mtim.tv_sec ^ (unsigned long long)st.st_mtim.tv_nsec ^
             (unsigned long long)st.st_size) *
            1099511628211ull;
    if (dir != NULL && fs_list_dir(dir, &names, &n, NULL) == PV_OK) {
        for (size_t i = 0; i < n; i++) {
            char *p = fs_join(dir, names[i]);

            for (const char *c = names[i]; *c != '\0'; c++)
                h = (h ^ (unsigned char)*c) * 1099511628211ull;
            if (stat(p, &st) == 0)
                h = (h ^ (unsigned long long)st.st_mtim.tv_sec ^
                     (unsigned long long)st.st_mtim.tv_nsec ^ (unsigned long long)st.st_size) *
                    1099511628211ull;
            free(p);
        }
        fs_names_free(names, n);
    }
    return h;
}

/* ---- The command ---- */

/* A copy of 's' that lives as long as the server (NULL stays NULL). */
static const char *keep(struct server *srv, const char *s)
{
    if (s == NULL)
        return NULL;
    PV_ASSERT(srv->n_owned < sizeof(srv->owned) / sizeof(srv->owned[0]));
    srv->owned[srv->n_owned] = xstrdup(s);
    return srv->owned[srv->n_owned++];
}

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t reload_requested;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        reload_requested = 1;
    else
        stop_requested = 1;
}

static pv_status parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len,
                              struct pv_err *err)
{
    const char *colon = strrchr(s, ':');
    char host[128];
    char *end = NULL;
    long port;

    if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
        return pv_err_set(err, PV_EINVAL, "--listen %s: use HOST:PORT (e.g. 127.0.0.1:8443)", s);
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0' || port < 1 || port > 65535)
        return pv_err_set(err, PV_EINVAL, "--listen %s: the port must be 1-65535", s);
    memset(ss, 0, sizeof(*ss));
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

        host[strlen(host) - 1] = '\0';
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
            return pv_err_set(err, PV_EINVAL, "--listen %s: not an IPv6 address", s);
        *len = sizeof(*a6);
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)ss;

        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
            return pv_err_set(err, PV_EINVAL, "--listen %s: not an IPv4 address", s);
        *len = sizeof(*a4);
    }
    return PV_OK;
}

int cmd_serve(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"tls-cert", required_argument, NULL, 'C'},
        {"tls-key", required_argument, NULL, 'K'},
        {"db", required_argument, NULL, 'd'},
        {"policies", required_argument, NULL, 'p'},
        {"threads", required_argument, NULL, 't'},
        {"insecure-http", no_argument, NULL, 'i'},
        {"client-ca", required_argument, NULL, 'A'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL;
    const char *policies = NULL;
    struct server srv;
    struct snapshot *snap = xcalloc(1, sizeof(*snap));
    struct cfg_server opts;
    struct audit_options aopt = {0};
    struct sockaddr_storage ss;
    socklen_t ss_len = 0;
    struct pv_err err = {0};
    const char *listen = NULL;
    const char *tls_cert = NULL;
    const char *tls_key = NULL;
    const char *db = NULL;
    const char *client_ca = NULL;
    char *ca = NULL;
    size_t ca_len = 0;
    int threads = 0;
    bool is_insecure = false;
    bool is_curl = false;
    unsigned int flags;
    struct sigaction sa;
    int c;
    int status = EXIT_USAGE;

    memset(&srv, 0, sizeof(srv));
    if (getenv("PAVED_LOG") == NULL)
        log_init(LOG_INFO, false);
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        char *end = NULL;

        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'l':
            listen = optarg;
            break;
        case 'C':
            tls_cert = optarg;
            break;
        case 'K':
            tls_key = optarg;
            break;
        case 'd':
            db = optarg;
            break;
        case 'p':
            policies = optarg;
            break;
        case 't':
            threads = (int)strtol(optarg, &end, 10);
            if (end == optarg || *end != '\0' || threads < 1 || threads > 256) {
                fprintf(stderr, "paved serve: --threads takes 1 to 256\n");
                free(snap);
                return EXIT_USAGE;
            }
            break;
        case 'i':
            is_insecure = true;
            break;
        case 'A':
            client_ca = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            free(snap);
            return 0;
        default:
            fputs(usage, stderr);
            free(snap);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "paved serve: unexpected argument '%s'\n\n%s", argv[optind], usage);
        free(snap);
        return EXIT_USAGE;
    }
    if (cli_engine_open(&snap->e, policies, config, true, &err)) {
        fprintf(stderr, "paved serve: %s\n", err.msg);
        free(snap);
        return EXIT_USAGE;
    }
    /* The snapshot keeps the config and bundle; each worker thread builds its own vm. */
    vm_free(snap->e.vm);
    snap->e.vm = NULL;
    snap->bindings = config_vm_bindings(snap->e.cfg);
    snap->notify_routes = routes_of(snap->e.cfg);
    atomic_init(&snap->refs, 1);
    snap->gen = 1;
    snap->srv = &srv;
    bundle_digest(snap, snap->bundle_hash);
    opts = snap->e.cfg->server;
    if (listen != NULL)
        opts.listen = listen;
    if (tls_cert != NULL)
        opts.tls_cert = tls_cert;
    if (tls_key != NULL)
        opts.tls_key = tls_key;
    opts.listen = keep(&srv, opts.listen);
    opts.tls_cert = keep(&srv, opts.tls_cert);
    opts.tls_key = keep(&srv, opts.tls_key);
    if (threads > 0)
        opts.threads = threads;
    if (is_insecure)
        opts.is_insecure_http = true;
    if (client_ca != NULL)
        opts.client_ca = client_ca;
    if (opts.threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);

        opts.threads = n > 0 && n < 64 ? (int)n * 2 : 4;
    }
    srv.opts = &opts;
    srv.snap = snap;
    pthread_mutex_init(&srv.mu, NULL);
    pthread_mutex_init(&srv.policy_mu, NULL);
    pthread_mutex_init(&srv.exc_mu, NULL);
    pthread_mutex_init(&srv.exc_reload_mu, NULL);
    pthread_mutex_init(&srv.gauges_mu, NULL);
    if (parse_listen(opts.listen, &ss, &ss_len, &err)) {
        fprintf(stderr, "paved serve: %s\n", err.msg);
        goto done;
    }
    if (!opts.is_insecure_http) {
        if (opts.tls_cert == NULL || opts.tls_key == NULL) {
            fprintf(stderr, "paved serve: HTTPS needs --tls-cert and --tls-key (paved certs "
                            "--out DIR writes a development pair), or --insecure-http\n");
            goto done;
        }
        if (tls_load(opts.tls_cert, opts.tls_key, &err) ||
            (opts.client_ca != NULL &&
             fs_read_file(opts.client_ca, PEM_MAX_BYTES, &ca, &ca_len, &err))) {
            fprintf(stderr, "paved serve: %s\n", err.msg);
            goto done;
        }
    } else if (opts.client_ca != NULL) {
        fprintf(stderr, "paved serve: --client-ca needs TLS (drop --insecure-http)\n");
        goto done;
    }
    opts.client_ca = keep(&srv, opts.client_ca);
    aopt.path = keep(&srv, db != NULL ? db : snap->e.cfg->audit.db);
    srv.db_path = aopt.path;
    aopt.is_async = snap->e.cfg->audit.is_async;
    aopt.queue_max = snap->e.cfg->audit.queue_max;
    aopt.on_outbox = on_outbox;
    aopt.on_outbox_arg = &srv;
    aopt.quota_check = quota_check;
    aopt.quota_arg = &srv;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "paved serve: cannot initialise libcurl\n");
        status = 1;
        goto done;
    }
    is_curl = true;
    if (audit_open(&srv.audit, &aopt, &err)) {
        fprintf(stderr, "paved serve: audit store %s: %s\n", aopt.path, err.msg);
        status = 1;
        goto done;
    }
    if (exc_reload(&srv, &err)) {
        fprintf(stderr, "paved serve: audit store %s: %s\n", aopt.path, err.msg);
        status = 1;
        goto done;
    }
    {
        struct notify *n = NULL;

        if (notify_start(&n, aopt.path, &err)) {
            fprintf(stderr, "paved serve: notifications: %s\n", err.msg);
            status = 1;
            goto done;
        }
        notify_configure(n, snap->e.cfg);
        atomic_store(&srv.notify, n);
        notify_wake(n); /* messages left pending by the last run go out now */
    }
    {
        /* The keys live beside the audit store unless credentials.keys_dir says. */
        const cJSON *kd = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(snap->e.cfg->root, "credentials"), "keys_dir");
        char *dir = cJSON_IsString(kd) ? xstrdup(kd->valuestring) : NULL;

        if (dir == NULL) {
            const char *slash = strrchr(aopt.path, '/');
            size_t n = slash != NULL ? (size_t)(slash - aopt.path) : 0;

            dir = xmalloc(n + sizeof("/keys") + 1);
            if (slash != NULL)
                snprintf(dir, n + sizeof("/keys") + 1, "%.*s/keys", (int)n, aopt.path);
            else
                snprintf(dir, n + sizeof("/keys") + 1, "keys");
        }
        if (creds_new(&srv.creds, snap->e.cfg, dir, &err))
            log_msg(LOG_ERROR, "serve",
                    "credential issuance disabled: keys %s: %s (POST /v1/credentials answers 503)",
                    dir, err.msg);
        else
            log_msg(LOG_INFO, "serve", "credential signing keys in %s", dir);
        free(dir);
    }
    if (clock_is_test_build())
        log_msg(LOG_WARN, "serve", "this is paved-test: the clock honours PAVED_TEST_CLOCK");
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* A file-size limit must fail the write (EFBIG, a failed commit), not kill us. */
    signal(SIGXFSZ, SIG_IGN);
    flags =
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC;
    if (!opts.is_insecure_http)
        flags |= MHD_USE_TLS;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    {
        struct MHD_OptionItem tls_opts[] = {
            {MHD_OPTION_HTTPS_CERT_CALLBACK, 0, (void *)(uintptr_t)tls_retrieve},
            {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)(uintptr_t)TLS_PRIORITIES},
            {ca != NULL ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END, 0, ca},
            {MHD_OPTION_END, 0, NULL},
        };
        struct MHD_Daemon *d = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, &srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
            MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)opts.threads, MHD_OPTION_CONNECTION_TIMEOUT,
            (unsigned int)opts.connection_timeout_s, MHD_OPTION_CONNECTION_LIMIT,
            (unsigned int)4096, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_ARRAY,
            opts.is_insecure_http ? &tls_opts[3] : tls_opts, MHD_OPTION_END);

        if (d == NULL) {
            fprintf(stderr,
                    "paved serve: cannot listen on %s (in use, or a bad certificate or "
                    "key)\n",
                    opts.listen);
            status = 1;
            goto done;
        }
        log_msg(LOG_INFO, "serve", "listening on %s://%s threads=%d db=%s bundle=%.12s",
                opts.is_insecure_http ? "http" : "https", opts.listen, opts.threads, aopt.path,
                snap->bundle_hash);
        fprintf(stderr, "paved: serving on %s://%s (audit store %s)\n",
                opts.is_insecure_http ? "http" : "https", opts.listen, aopt.path);
        srv.config_path = config;
        srv.policies_dir = keep(&srv, policies != NULL ? policies : snap->e.cfg->policies_dir);
        {
            unsigned long long seen = sources_fingerprint(config, srv.policies_dir);
            unsigned long long tls_seen =
                file_stamp(opts.tls_cert) ^ (file_stamp(opts.tls_key) * 31);

            while (!stop_requested) {
                unsigned long long now;
                unsigned long long tls_now;

                /* A signal cuts the sleep short. */
                sleep(1);
                sweep(&srv);
                refresh_gauges(&srv);
                tls_now = file_stamp(opts.tls_cert) ^ (file_stamp(opts.tls_key) * 31);
                if (!opts.is_insecure_http && (tls_now != tls_seen || reload_requested)) {
                    tls_seen = tls_now;
                    /* A half-written pair does not load; the next change retries. */
                    if (tls_load(opts.tls_cert, opts.tls_key, &err))
                        log_msg(LOG_ERROR, "serve",
                                "new certificate rejected, the current one keeps serving: %s",
                                err.msg);
                    else
                        log_msg(LOG_INFO, "serve", "serving certificate reloaded from %s",
                                opts.tls_cert);
                }
                now = sources_fingerprint(config, srv.policies_dir);
                if (!reload_requested && now == seen)
                    continue;
                reload_requested = 0;
                seen = now;
                if (reload(&srv, &err))
                    log_msg(LOG_ERROR, "serve",
                            "reload rejected, the last good bundle keeps serving: %s", err.msg);
                else
                    log_msg(LOG_INFO, "serve", "reloaded config and policies");
            }
        }
        log_msg(LOG_INFO, "serve", "stopping");
        /* No new connections; let the parked decisions get their commits and answers
         * (stopping with suspended connections is not allowed), bounded in time. */
        MHD_quiesce_daemon(d);
        for (int i = 0; i < 1000 && atomic_load(&srv.n_parked) > 0; i++)
            usleep(10000);
        MHD_stop_daemon(d);
    }
    status = 0;
done:
    /* The writer is drained before the notifier stops, so its last messages are in the
     * outbox for the next run. */
    {
        struct notify *n = atomic_load(&srv.notify);

        atomic_store(&srv.notify, NULL);
        audit_close(srv.audit);
        notify_stop(n);
    }
    if (is_curl)
        curl_global_cleanup();
    free(ca);
    atomic_store(&tls_current, NULL);
    for (size_t i = 0; i < n_tls_pairs; i++)
        tls_pair_free(tls_pairs[i]);
    n_tls_pairs = 0;
    snapshot_release(srv.snap != NULL ? srv.snap : snap);
    exc_state_release(srv.exc);
    creds_free(srv.creds);
    pthread_mutex_destroy(&srv.mu);
    pthread_mutex_destroy(&srv.policy_mu);
    pthread_mutex_destroy(&srv.exc_mu);
    pthread_mutex_destroy(&srv.exc_reload_mu);
    for (size_t i = 0; i < srv.n_owned; i++)
        free(srv.owned[i]);
    pthread_mutex_destroy(&srv.gauges_mu);
    free(srv.gauges);
    for (size_t k = 0; k < srv.n_policy_counts; k++)
        free(srv.policy_counts[k].policy);
    free(srv.policy_counts);
    return status;
}
