/* audit/writer.c: the single writer of the decision log. Owns the write connection, the
 * bounded submission queue, the group-commit thread that seals rows into the hash chain,
 * and the checkpointer thread that keeps WAL checkpoints off the commit path. Also
 * decision ids. */
#include "audit.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>
#include <sqlite3.h>

#include "chain.h"
#include "exceptions.h"
#include "jsonutil.h"
#include "log.h"
#include "schema.h"
#include "xalloc.h"

#define QUEUE_DEFAULT 65536
#define QUEUE_CEILING (1u << 24)
#define BATCH_DEFAULT 256
#define BATCH_CEILING 65536
#define RECORD_MAX_BYTES (1u << 20) /* all strings of one record together */
#define CHECKPOINT_EVERY_MS 200
#define PROBE_EVERY_MS 1000

/* A sync submitter waits on its own stack frame until the writer fills it in; a
 * callback submitter's waiter lives on the heap and the writer frees it after 'done'. */
struct waiter {
    pv_status rc;
    bool is_done;
    char msg[PV_ERR_MSG_MAX];
    audit_done_fn *done; /* NULL: a thread waits on a->done */
    void *arg;
};

struct item {
    struct audit_record *rec; /* owned by the queue, then by the writer */
    char *policies;           /* distinct violated policy ids, each NUL-terminated, then "" */
    struct waiter *w;         /* NULL for async submissions */
    char *quota_msg;          /* set when the writer turned the decision into a quota denial */
};

struct audit {
    char *path;
    bool is_async;
    uint32_t batch_max;

    /* Writer thread only (after audit_open returned). */
    sqlite3 *db;
    sqlite3_stmt *st_begin;
    sqlite3_stmt *st_commit;
    sqlite3_stmt *st_rollback;
    sqlite3_stmt *st_decision;
    sqlite3_stmt *st_policy;
    sqlite3_stmt *st_service;
    sqlite3_stmt *st_outbox;
    char last_hash[CHAIN_HASH_HEX_LEN + 1]; /* hash of the last committed row */
    int64_t last_rowid;
    struct item *batch;           /* batch_max items */
    char (*msgs)[PV_ERR_MSG_MAX]; /* batch_max messages: why a record was refused */
    bool has_new_outbox;          /* the open transaction put messages in the outbox */
    audit_outbox_fn *on_outbox;
    void *on_outbox_arg;
    audit_quota_fn *quota_check;
    void *quota_arg;
    sqlite3_stmt *st_team_usage;
    sqlite3_stmt *st_key_usage;
    sqlite3_stmt *st_ledger_put;
    sqlite3_stmt *st_ledger_del;
    sqlite3_stmt *st_cred;

    /* Checkpointer thread only. */
    sqlite3 *ckpt_db;

    pthread_t writer;
    pthread_t checkpointer;
    bool has_writer;
    bool has_checkpointer;

    pthread_mutex_t mu;
    pthread_cond_t not_empty; /* writer waits: a record was queued or closing */
    pthread_cond_t not_full;  /* submitters wait: the writer took records */
    pthread_cond_t done;      /* sync submitters wait: a batch finished */
    pthread_cond_t ckpt_wake; /* checkpointer waits: period elapsed or closing */
    struct item *ring;        /* guarded by mu */
    size_t cap;               /* guarded by mu (constant) */
    size_t head;              /* guarded by mu: index of the oldest queued item */
    size_t count;             /* guarded by mu */
    bool is_closing;          /* guarded by mu */
    struct audit_stats stats; /* guarded by mu */
};

/* ---- Decision ids ---- */

static pthread_mutex_t id_mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t id_last_ms;             /* guarded by id_mu */
static unsigned char id_last_rand[10]; /* guarded by id_mu */

/* Adds one to the 80-bit big-endian 'r'; returns true when it wrapped to zero. */
static bool rand_increment(unsigned char r[10])
{
    for (int i = 9; i >= 0; i--) {
        if (++r[i] != 0)
            return false;
    }
    return true;
}

void audit_new_id(char out[AUDIT_ID_LEN + 1])
{
    static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"; /* Crockford */
    unsigned char bits[16];                                       /* 48-bit ms, 80 random */
    struct timespec ts;
    int64_t ms;

    clock_gettime(CLOCK_REALTIME, &ts);
    ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    pthread_mutex_lock(&id_mu);
    /* Monotonic within the process: in the same (or an earlier) millisecond the random
     * part counts up, so ids sort in the order they were made. */
    if (ms > id_last_ms) {
        id_last_ms = ms;
        if (RAND_bytes(id_last_rand, sizeof(id_last_rand)) != 1 && rand_increment(id_last_rand))
            id_last_ms++;
    } else if (rand_increment(id_last_rand)) {
        id_last_ms++;
    }
    for (int i = 0; i < 6; i++)
        bits[i] = (unsigned char)((uint64_t)id_last_ms >> (8 * (5 - i)));
    memcpy(bits + 6, id_last_rand, sizeof(id_last_rand));
    pthread_mutex_unlock(&id_mu);

    memcpy(out, "dec-", 4);
    /* 26 characters of 5 bits cover 130 bits: the 128 bits preceded by two zero bits. */
    for (int c = 0; c < 26; c++) {
        unsigned v = 0;

        for (int b = 0; b < 5; b++) {
            int pos = c * 5 + b - 2;

            v <<= 1;
            if (pos >= 0)
                v |= (bits[pos / 8] >> (7 - pos % 8)) & 1u;
        }
        out[4 + c] = b32[v];
    }
    out[30] = '\0';
}

void audit_record_free(struct audit_record *r)
{
    if (r == NULL)
        return;
    free(r->source);
    free(r->request_uid);
    free(r->kind);
    free(r->operation);
    free(r->team);
    free(r->service);
    free(r->namespace);
    free(r->resource_kind);
    free(r->resource_name);
    free(r->actor);
    free(r->decision);
    free(r->path);
    free(r->violations);
    free(r->bundle_hash);
    cJSON_Delete(r->op_args);
    free(r->notify_routes);
    free(r->details);
    if (r->charge != NULL) {
        free(r->charge->key);
        free(r->charge->cost_center);
        free(r->charge);
    }
    free(r);
}

/* ---- Submission ---- */

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static size_t opt_len(const char *s)
{
    return s != NULL ? strlen(s) : 0;
}

/* Checks what the schema requires of 'r' and extracts the distinct policy ids of its
 * violations into *policies (returns: caller frees with free()). */
static pv_status check_record(const struct audit_record *r, char **policies, struct pv_err *err)
{
    const char *required[] = {r->source, r->kind, r->team, r->decision, r->path};
    static const char *const names[] = {"source", "kind", "team", "decision", "path"};
    size_t total = strlen(r->id);
    cJSON *v = NULL;
    const cJSON *el;
    char *list = NULL;
    size_t list_len = 0;
    pv_status rc = PV_OK;

    if (strnlen(r->id, sizeof(r->id)) == sizeof(r->id) || strncmp(r->id, "dec-", 4) != 0 ||
        total < 5)
        return pv_err_set(err, PV_EINVAL, "audit: record id \"%.*s\" is not a decision id",
                          (int)strnlen(r->id, sizeof(r->id)), r->id);
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
        if (required[i] == NULL)
            return pv_err_set(err, PV_EINVAL, "audit: record %s has no %s", r->id, names[i]);
    total += strlen(r->source) + strlen(r->kind) + strlen(r->team) + strlen(r->decision) +
             strlen(r->path) + opt_len(r->request_uid) + opt_len(r->operation) +
             opt_len(r->service) + opt_len(r->namespace) + opt_len(r->resource_kind) +
             opt_len(r->resource_name) + opt_len(r->actor) + opt_len(r->violations) +
             opt_len(r->bundle_hash) + opt_len(r->details);
    if (total > RECORD_MAX_BYTES)
        return pv_err_set(err, PV_ETOOBIG, "audit: record %s is %zu bytes (limit %u)", r->id, total,
                          RECORD_MAX_BYTES);

    list = xmalloc(1);
    list[0] = '\0';
    if (r->op != AUDIT_OP_NONE && !cJSON_IsObject(r->op_args)) {
        rc = pv_err_set(err, PV_EINVAL, "audit: event %s has no arguments", r->id);
        goto done;
    }
    /* An event's violations are written by its transition (exc_apply). */
    if (r->violations != NULL && r->op == AUDIT_OP_NONE) {
        v = cJSON_ParseWithLength(r->violations, strlen(r->violations));
        if (v == NULL || !cJSON_IsArray(v)) {
            rc = pv_err_set(err, PV_EINVAL, "audit: record %s: violations is not a JSON array",
                            r->id);
            goto done;
        }
        cJSON_ArrayForEach(el, v)
        {
            const cJSON *p = cJSON_GetObjectItemCaseSensitive(el, "policy");
            size_t n;
            bool is_seen = false;

            if (!cJSON_IsString(p) || p->valuestring[0] == '\0')
                continue;
            for (const char *s = list; *s != '\0'; s += strlen(s) + 1)
                if (strcmp(s, p->valuestring) == 0)
                    is_seen = true;
            if (is_seen)
                continue;
            n = strlen(p->valuestring) + 1;
            list = xrealloc(list, list_len + n + 1);
            memcpy(list + list_len, p->valuestring, n);
            list_len += n;
            list[list_len] = '\0';
        }
    }
    *policies = list;
    list = NULL;
done:
    cJSON_Delete(v);
    free(list);
    return rc;
}

static struct timespec to_timespec(uint64_t ns)
{
    struct timespec ts;

    ts.tv_sec = (time_t)(ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    return ts;
}

/* Queues 'rec' (takes it) with waiter 'w' (NULL: nobody waits). Returns with a->mu
 * held on PV_OK, released on failure (the record is freed then). */
static pv_status enqueue(struct audit *a, struct audit_record *rec, uint64_t deadline_ns,
                         struct waiter *w, struct pv_err *err)
{
    char *policies = NULL;
    struct item *it;
    pv_status rc;

    rc = check_record(rec, &policies, err);
    if (rc) {
        audit_record_free(rec);
        return rc;
    }
    pthread_mutex_lock(&a->mu);
    while (a->count == a->cap && !a->is_closing) {
        struct timespec ts;

        if (deadline_ns != UINT64_MAX && now_ns() >= deadline_ns) {
            pthread_mutex_unlock(&a->mu);
            rc = pv_err_set(err, PV_ETIMEOUT,
                            "audit: queue full (%zu records) until the deadline; decision %s "
                            "not recorded",
                            a->cap, rec->id);
            goto fail;
        }
        if (deadline_ns == UINT64_MAX) {
            pthread_cond_wait(&a->not_full, &a->mu);
            continue;
        }
        ts = to_timespec(deadline_ns);
        pthread_cond_timedwait(&a->not_full, &a->mu, &ts);
    }
    if (a->is_closing) {
        pthread_mutex_unlock(&a->mu);
        rc = pv_err_set(err, PV_EIO, "audit: store is closing; decision %s not recorded", rec->id);
        goto fail;
    }
    it = &a->ring[(a->head + a->count) % a->cap];
    it->rec = rec;
    it->policies = policies;
    it->w = w;
    a->count++;
    a->stats.queue_depth = a->count;
    pthread_cond_signal(&a->not_empty);
    return PV_OK;
fail:
    free(policies);
    audit_record_free(rec);
    return rc;
}

/* True when the caller must learn the commit's outcome even with async durability: the
 * writer may turn a charged decision into a quota denial, and a credential must not
 * leave before its issuance is recorded. */
static bool must_wait(const struct audit *a, const struct audit_record *rec)
{
    return !a->is_async || rec->charge != NULL ||
           (rec->kind != NULL && strcmp(rec->kind, "credential") == 0);
}

pv_status audit_submit(struct audit *a, struct audit_record *rec, uint64_t deadline_ns,
                       struct pv_err *err)
{
    struct waiter w = {PV_OK, false, "", NULL, NULL};
    bool is_waiting = must_wait(a, rec);
    pv_status rc = enqueue(a, rec, deadline_ns, is_waiting ? &w : NULL, err);

    if (rc)
        return rc;
    if (!is_waiting) {
        pthread_mutex_unlock(&a->mu);
        return PV_OK;
    }
    while (!w.is_done)
        pthread_cond_wait(&a->done, &a->mu);
    pthread_mutex_unlock(&a->mu);
    if (w.rc)
        return pv_err_set(err, w.rc, "%s", w.msg);
    return PV_OK;
}

pv_status audit_submit_op(struct audit *a, struct audit_record *rec, uint64_t deadline_ns,
                          struct pv_err *err)
{
    struct waiter w = {PV_OK, false, "", NULL, NULL};
    pv_status rc;

    if (rec->op == AUDIT_OP_NONE) {
        audit_record_free(rec);
        return pv_err_set(err, PV_EINVAL, "audit: audit_submit_op needs a record with an op");
    }
    rc = enqueue(a, rec, deadline_ns, &w, err);
    if (rc)
        return rc;
    while (!w.is_done)
        pthread_cond_wait(&a->done, &a->mu);
    pthread_mutex_unlock(&a->mu);
    if (w.rc)
        return pv_err_set(err, w.rc, "%s", w.msg);
    return PV_OK;
}

pv_status audit_submit_cb(struct audit *a, struct audit_record *rec, uint64_t deadline_ns,
                          audit_done_fn *done, void *arg, struct pv_err *err)
{
    struct waiter *w = NULL;
    bool is_waiting = must_wait(a, rec);
    pv_status rc;

    if (is_waiting) {
        w = xcalloc(1, sizeof(*w));
        w->done = done;
        w->arg = arg;
    }
    rc = enqueue(a, rec, deadline_ns, w, err);
    if (rc) {
        free(w);
        return rc;
    }
    pthread_mutex_unlock(&a->mu);
    if (!is_waiting)
        done(arg, PV_OK, "");
    return PV_OK;
}

void audit_stats(struct audit *a, struct audit_stats *out)
{
    pthread_mutex_lock(&a->mu);
    *out = a->stats;
    pthread_mutex_unlock(&a->mu);
}

/* ---- Group commit (writer thread) ---- */

static int bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s == NULL)
        return sqlite3_bind_null(st, i);
    return sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

static struct chain_field text_field(const char *s)
{
    struct chain_field f = {s, s != NULL ? strlen(s) : 0};

    return f;
}

/* ---- Outbox ---- */

/* True when 'event' matches one of the names or "prefix.*" globs of 'events' (NULL or
 * absent: every event). */
static bool event_wanted(const cJSON *events, const char *event)
{
    const cJSON *e;

    if (events == NULL || cJSON_IsNull(events))
        return true;
    cJSON_ArrayForEach(e, events)
    {
        size_t n;

        if (!cJSON_IsString(e))
            continue;
        n = strlen(e->valuestring);
        if (strcmp(e->valuestring, event) == 0 || strcmp(e->valuestring, "*") == 0)
            return true;
        if (n >= 2 && e->valuestring[n - 1] == '*' && e->valuestring[n - 2] == '.' &&
            strncmp(e->valuestring, event, n - 1) == 0)
            return true;
    }
    return false;
}

/* True when one of the ids in 'policies' (NUL-separated, then "") is in 'watched'. */
static bool policy_watched(const cJSON *watched, const char *policies)
{
    const cJSON *w;

    cJSON_ArrayForEach(w, watched)
    {
        if (!cJSON_IsString(w))
            continue;
        for (const char *p = policies; *p != '\0'; p += strlen(p) + 1)
            if (strcmp(p, w->valuestring) == 0)
                return true;
    }
    return false;
}

/* The body of a decision.denied message. Returns: caller frees with cJSON_Delete. */
static cJSON *denied_body(const struct audit_record *r, const char *policies, char *summary,
                          size_t cap)
{
    cJSON *d = cJSON_CreateObject();
    cJSON *v = cJSON_Parse(r->violations != NULL ? r->violations : "[]");
    cJSON *ids = cJSON_CreateArray();
    size_t len = 0;

    summary[0] = '\0';
    for (const char *p = policies; *p != '\0'; p += strlen(p) + 1) {
        cJSON_AddItemToArray(ids, cJSON_CreateString(p));
        if (len + 2 < cap)
            len += (size_t)snprintf(summary + len, cap - len, "%s%s", len > 0 ? ", " : "", p);
        if (len >= cap)
            len = cap - 1;
    }
    cJSON_AddStringToObject(d, "id", r->id);
    cJSON_AddStringToObject(d, "source", r->source);
    cJSON_AddStringToObject(d, "team", r->team);
    cJSON_AddStringToObject(d, "service", r->service != NULL ? r->service : "");
    cJSON_AddStringToObject(d, "namespace", r->namespace != NULL ? r->namespace : "");
    cJSON_AddStringToObject(d, "resource_kind", r->resource_kind != NULL ? r->resource_kind : "");
    cJSON_AddStringToObject(d, "resource_name", r->resource_name != NULL ? r->resource_name : "");
    cJSON_AddItemToObject(d, "policies", ids);
    cJSON_AddItemToObject(d, "violations", v != NULL ? v : cJSON_CreateArray());
    return d;
}

/* Puts a message for 'event' into the outbox for each endpoint of r->notify_routes
 * that wants it, in the record's transaction. 'subject_key'/'subject' (borrowed) are
 * the event's data; 'summary' its sentence. Sets a->has_new_outbox. */
static pv_status outbox_put(struct audit *a, const struct audit_record *r, const char *policies,
                            const char *event, const char *summary, const char *subject_key,
                            const cJSON *subject, struct pv_err *err)
{
    cJSON *routes = cJSON_Parse(r->notify_routes);
    const cJSON *route;
    cJSON *body = NULL;
    char *text = NULL;
    char when[40];
    pv_status rc = PV_OK;

    cJSON_ArrayForEach(route, routes)
    {
        const char *endpoint =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(route, "endpoint"));
        sqlite3_stmt *st = a->st_outbox;
        int src;

        if (endpoint == NULL ||
            !event_wanted(cJSON_GetObjectItemCaseSensitive(route, "events"), event))
            continue;
        if (strcmp(event, "decision.denied") == 0 &&
            !policy_watched(cJSON_GetObjectItemCaseSensitive(route, "policies"), policies))
            continue;
        if (text == NULL) {
            body = cJSON_CreateObject();
            audit_format_time(r->time_ms, when, sizeof(when));
            cJSON_AddStringToObject(body, "event", event);
            cJSON_AddStringToObject(body, "time", when);
            cJSON_AddStringToObject(body, "summary", summary);
            cJSON_AddStringToObject(body, "audit_id", r->id);
            cJSON_AddItemToObject(body, subject_key, cJSON_Duplicate(subject, 1));
            text = cJSON_PrintUnformatted(body);
        }
        bind_text(st, 1, endpoint);
        bind_text(st, 2, event);
        bind_text(st, 3, text);
        sqlite3_bind_int64(st, 4, r->time_ms);
        src = sqlite3_step(st);
        sqlite3_reset(st);
        if (src != SQLITE_DONE) {
            rc = pv_err_set(err, PV_EIO, "outbox of %s: %s", r->id, sqlite3_errmsg(a->db));
            break;
        }
        a->has_new_outbox = true;
    }
    cJSON_Delete(body);
    free(text);
    cJSON_Delete(routes);
    return rc;
}

/* ---- The quota ledger ---- */

static void usage_add(struct audit_usage *u, const struct audit_usage *d, int sign)
{
    u->cpu_millis += sign * d->cpu_millis;
    u->memory_bytes += sign * d->memory_bytes;
    u->storage_bytes += sign * d->storage_bytes;
    u->environments += sign * d->environments;
    u->monthly_cost += sign * d->monthly_cost;
}

static void usage_row(sqlite3_stmt *st, struct audit_usage *u)
{
    u->cpu_millis = sqlite3_column_int64(st, 0);
    u->memory_bytes = sqlite3_column_int64(st, 1);
    u->storage_bytes = sqlite3_column_int64(st, 2);
    u->environments = sqlite3_column_int64(st, 3);
    u->monthly_cost = sqlite3_column_double(st, 4);
}

static cJSON *usage_obj(const struct audit_usage *u)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddNumberToObject(o, "cpu_millis", (double)u->cpu_millis);
    cJSON_AddNumberToObject(o, "memory_bytes", (double)u->memory_bytes);
    cJSON_AddNumberToObject(o, "storage_bytes", (double)u->storage_bytes);
    cJSON_AddNumberToObject(o, "environments", (double)u->environments);
    cJSON_AddNumberToObject(o, "monthly_cost", u->monthly_cost);
    return o;
}

/* Turns the record of an allowed decision into the quota denial 'msg': decision deny,
 * path denied, a "quota" violation, and the reason in its details. */
static void deny_for_quota(struct item *it, const char *msg)
{
    struct audit_record *r = it->rec;
    cJSON *v = cJSON_Parse(r->violations != NULL ? r->violations : "[]");
    cJSON *d = r->details != NULL ? cJSON_Parse(r->details) : NULL;
    cJSON *x = cJSON_CreateObject();
    size_t n = 0;

    if (!cJSON_IsArray(v)) {
        cJSON_Delete(v);
        v = cJSON_CreateArray();
    }
    if (!cJSON_IsObject(d)) {
        cJSON_Delete(d);
        d = cJSON_CreateObject();
    }
    cJSON_AddStringToObject(x, "binding", "quota");
    cJSON_AddStringToObject(x, "policy", "quota");
    cJSON_AddStringToObject(x, "title", "Teams stay within their quotas");
    cJSON_AddStringToObject(x, "enforcement", "deny");
    cJSON_AddStringToObject(x, "message", msg);
    cJSON_AddItemToArray(v, x);
    cJSON_DeleteItemFromObjectCaseSensitive(d, "quota_exceeded");
    cJSON_AddStringToObject(d, "quota_exceeded", msg);
    free(r->violations);
    r->violations = cJSON_PrintUnformatted(v);
    free(r->details);
    r->details = cJSON_PrintUnformatted(d);
    free(r->decision);
    r->decision = xstrdup("deny");
    free(r->path);
    r->path = xstrdup("denied");
    /* The quota is one more policy this decision violated (decision_policies): append
     * it after the last id of the list. */
    while (it->policies[n] != '\0')
        n += strlen(it->policies + n) + 1;
    it->policies = xrealloc(it->policies, n + sizeof("quota") + 1);
    memcpy(it->policies + n, "quota", sizeof("quota"));
    it->policies[n + sizeof("quota")] = '\0';
    it->quota_msg = xstrdup(msg);
    cJSON_Delete(v);
    cJSON_Delete(d);
}

/* Checks and applies the ledger change of an allowed decision in its transaction. */
static pv_status apply_charge(struct audit *a, struct item *it, struct pv_err *err)
{
    struct audit_record *r = it->rec;
    const struct audit_charge *c = r->charge;
    struct audit_usage before = {0};
    struct audit_usage after;
    struct audit_usage old = {0};
    bool has_old = false;
    bool is_same_team = false;
    sqlite3_stmt *st = a->st_team_usage;
    char msg[PV_ERR_MSG_MAX];
    int src;

    bind_text(st, 1, r->team);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        usage_row(st, &before);
    sqlite3_reset(st);
    if (src != SQLITE_ROW)
        return pv_err_set(err, PV_EIO, "ledger of %s: %s", r->team, sqlite3_errmsg(a->db));
    st = a->st_key_usage;
    bind_text(st, 1, c->key);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        has_old = true;
        usage_row(st, &old);
        is_same_team = sqlite3_column_text(st, 5) != NULL &&
                       strcmp((const char *)sqlite3_column_text(st, 5), r->team) == 0;
    }
    sqlite3_reset(st);
    if (src != SQLITE_ROW && src != SQLITE_DONE)
        return pv_err_set(err, PV_EIO, "ledger of %s: %s", c->key, sqlite3_errmsg(a->db));
    after = before;
    if (is_same_team)
        usage_add(&after, &old, -1);
    if (!c->is_release)
        usage_add(&after, &c->usage, 1);
    if (!c->is_release && !c->is_forced && a->quota_check != NULL &&
        a->quota_check(a->quota_arg, r->team, &before, &after, msg, sizeof(msg))) {
        deny_for_quota(it, msg);
        return PV_OK;
    }
    {
        cJSON *d = r->details != NULL ? cJSON_Parse(r->details) : NULL;

        if (!cJSON_IsObject(d)) {
            cJSON_Delete(d);
            d = cJSON_CreateObject();
        }
        cJSON *cost = cJSON_GetObjectItemCaseSensitive(d, "cost");

        cJSON_AddItemToObject(d, "team_usage", usage_obj(&after));
        if (has_old)
            cJSON_AddItemToObject(d, "replaced", usage_obj(&old));
        /* What this decision changed the team's monthly cost by (the cost report's
         * "admitted" figures): a new object adds its cost, an update the difference, a
         * deletion takes the old cost away. */
        if (cJSON_IsObject(cost))
            cJSON_AddNumberToObject(cost, "monthly_delta",
                                    (c->is_release ? 0 : c->usage.monthly_cost) -
                                        (has_old ? old.monthly_cost : 0));
        free(r->details);
        r->details = cJSON_PrintUnformatted(d);
        cJSON_Delete(d);
    }
    if (c->is_check_only)
        return PV_OK;
    if (c->is_release) {
        st = a->st_ledger_del;
        bind_text(st, 1, c->key);
    } else {
        st = a->st_ledger_put;
        bind_text(st, 1, c->key);
        bind_text(st, 2, r->team);
        bind_text(st, 3, r->service);
        bind_text(st, 4, c->cost_center);
        sqlite3_bind_int64(st, 5, c->usage.cpu_millis);
        sqlite3_bind_int64(st, 6, c->usage.memory_bytes);
        sqlite3_bind_int64(st, 7, c->usage.storage_bytes);
        sqlite3_bind_int64(st, 8, c->usage.environments);
        sqlite3_bind_double(st, 9, c->usage.monthly_cost);
        sqlite3_bind_int64(st, 10, r->time_ms);
        bind_text(st, 11, r->id);
    }
    src = sqlite3_step(st);
    sqlite3_reset(st);
    if (src != SQLITE_DONE)
        return pv_err_set(err, PV_EIO, "ledger of %s: %s", c->key, sqlite3_errmsg(a->db));
    return PV_OK;
}

/* ---- Rows ---- */

/* The issuance of a credential decision (details.credential) into `credentials`. */
static pv_status insert_credential(struct audit *a, const struct audit_record *r,
                                   struct pv_err *err)
{
    cJSON *d = r->details != NULL ? cJSON_Parse(r->details) : NULL;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(d, "credential");
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(c, "expires_ms");
    char *scopes = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(c, "scopes"));
    sqlite3_stmt *st = a->st_cred;
    pv_status rc = PV_OK;
    int64_t expires_ms = 0;
    int src;

    /* Only an issuance (details.credential with jti, scopes and expiry) has a row. */
    if (cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "jti")) == NULL ||
        !json_int64(exp, &expires_ms) || scopes == NULL)
        goto done;
    bind_text(st, 1, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "jti")));
    bind_text(st, 2, r->id);
    sqlite3_bind_int64(st, 3, r->time_ms);
    bind_text(st, 4, r->actor != NULL ? r->actor : "-");
    bind_text(st, 5, r->team);
    bind_text(st, 6, r->service);
    bind_text(st, 7, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "audience")));
    bind_text(st, 8, scopes);
    sqlite3_bind_int64(st, 9, expires_ms);
    bind_text(st, 10, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "via")));
    src = sqlite3_step(st);
    sqlite3_reset(st);
    /* Any failure aborts the transaction: the decision row is in it already. */
    if (src != SQLITE_DONE)
        rc = pv_err_set(err, PV_EIO, "credential %s: %s", r->id, sqlite3_errmsg(a->db));
done:
    free(scopes);
    cJSON_Delete(d);
    return rc;
}

static pv_status insert_row(struct audit *a, struct item *it, int64_t rowid, const char *prev_hash,
                            char hash[CHAIN_HASH_HEX_LEN + 1], struct exc_event *ev,
                            struct pv_err *err);

static bool is_refusal(pv_status rc)
{
    return rc == PV_EINVAL || rc == PV_ENOENT || rc == PV_ECONFIG;
}

/* Applies the transition of an event record (inside a savepoint, so a refused one
 * leaves nothing behind) and replaces the item's policy list with the exception's. */
static pv_status apply_op(struct audit *a, struct item *it, struct exc_event *ev,
                          struct pv_err *err)
{
    pv_status rc = schema_exec(a->db, "SAVEPOINT event", err);

    if (rc)
        return PV_EIO;
    rc = exc_apply(a->db, it->rec, ev, err);
    if (rc) {
        schema_exec(a->db, "ROLLBACK TO event; RELEASE event", NULL);
        return is_refusal(rc) ? rc : PV_EIO;
    }
    free(it->policies);
    it->policies = ev->policies != NULL ? ev->policies : xstrdup("");
    ev->policies = NULL;
    return PV_OK;
}

static bool is_decision_kind(const char *kind)
{
    return strcmp(kind, "deploy") == 0 || strcmp(kind, "provision") == 0 ||
           strcmp(kind, "credential") == 0;
}

/* Inserts one record as row 'rowid' after 'prev_hash', writing its hash into 'hash'.
 * Returns PV_EINVAL when the row violates a constraint (a duplicate id: the transaction
 * goes on without it) or, for an event, PV_EINVAL/PV_ENOENT/PV_ECONFIG when its
 * transition is refused (likewise); PV_EIO for anything else (the transaction is
 * lost). */
static pv_status insert_one(struct audit *a, struct item *it, int64_t rowid, const char *prev_hash,
                            char hash[CHAIN_HASH_HEX_LEN + 1], struct pv_err *err)
{
    struct audit_record *r = it->rec;
    struct exc_event ev;
    /* A charged decision writes the ledger before its row: a row refused after that
     * (a duplicate id) must take its charge with it. */
    bool is_charged = r->op == AUDIT_OP_NONE && r->charge != NULL;
    pv_status rc;

    if (is_charged && schema_exec(a->db, "SAVEPOINT charge", err) != PV_OK)
        return PV_EIO;
    rc = insert_row(a, it, rowid, prev_hash, hash, &ev, err);
    if (is_charged) {
        if (rc == PV_OK)
            rc = schema_exec(a->db, "RELEASE charge", err);
        else if (is_refusal(rc))
            schema_exec(a->db, "ROLLBACK TO charge; RELEASE charge", NULL);
    }
    if (r->op != AUDIT_OP_NONE) {
        if (rc == PV_OK)
            rc = schema_exec(a->db, "RELEASE event", err);
        else if (rc == PV_EINVAL && ev.subject != NULL)
            schema_exec(a->db, "ROLLBACK TO event; RELEASE event", NULL);
        cJSON_Delete(ev.subject);
        free(ev.policies);
    }
    return rc;
}

/* insert_one without the event's savepoint bookkeeping: fills *ev for events. */
static pv_status insert_row(struct audit *a, struct item *it, int64_t rowid, const char *prev_hash,
                            char hash[CHAIN_HASH_HEX_LEN + 1], struct exc_event *ev,
                            struct pv_err *err)
{
    const struct audit_record *r = it->rec;
    const char *violations;
    char rowid_s[24], time_s[24], latency_s[24];
    struct chain_field f[CHAIN_NFIELDS];
    sqlite3_stmt *st = a->st_decision;
    int src;
    pv_status rc;

    memset(ev, 0, sizeof(*ev));
    if (r->op != AUDIT_OP_NONE) {
        rc = apply_op(a, it, ev, err);
        if (rc)
            return rc;
    }
    if (r->charge != NULL && strcmp(r->decision, "allow") == 0) {
        rc = apply_charge(a, it, err);
        if (rc)
            return rc;
    }
    violations = r->violations != NULL ? r->violations : "[]";

    snprintf(rowid_s, sizeof(rowid_s), "%" PRId64, rowid);
    snprintf(time_s, sizeof(time_s), "%" PRId64, r->time_ms);
    snprintf(latency_s, sizeof(latency_s), "%" PRId64, r->latency_us);
    f[CHAIN_ROWID] = text_field(rowid_s);
    f[CHAIN_ID] = text_field(r->id);
    f[CHAIN_TIME_MS] = text_field(time_s);
    f[CHAIN_SOURCE] = text_field(r->source);
    f[CHAIN_REQUEST_UID] = text_field(r->request_uid);
    f[CHAIN_KIND] = text_field(r->kind);
    f[CHAIN_OPERATION] = text_field(r->operation);
    f[CHAIN_TEAM] = text_field(r->team);
    f[CHAIN_SERVICE] = text_field(r->service);
    f[CHAIN_NAMESPACE] = text_field(r->namespace);
    f[CHAIN_RESOURCE_KIND] = text_field(r->resource_kind);
    f[CHAIN_RESOURCE_NAME] = text_field(r->resource_name);
    f[CHAIN_ACTOR] = text_field(r->actor);
    f[CHAIN_DECISION] = text_field(r->decision);
    f[CHAIN_PATH] = text_field(r->path);
    f[CHAIN_VIOLATIONS] = text_field(violations);
    f[CHAIN_BUNDLE_HASH] = text_field(r->bundle_hash);
    f[CHAIN_LATENCY_US] = text_field(latency_s);
    f[CHAIN_DRY_RUN] = text_field(r->is_dry_run ? "1" : "0");
    f[CHAIN_DETAILS] = text_field(r->details);
    rc = chain_hash(prev_hash, f, hash, err);
    if (rc)
        return rc;

    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, rowid);
    bind_text(st, 2, r->id);
    sqlite3_bind_int64(st, 3, r->time_ms);
    bind_text(st, 4, r->source);
    bind_text(st, 5, r->request_uid);
    bind_text(st, 6, r->kind);
    bind_text(st, 7, r->operation);
    bind_text(st, 8, r->team);
    bind_text(st, 9, r->service);
    bind_text(st, 10, r->namespace);
    bind_text(st, 11, r->resource_kind);
    bind_text(st, 12, r->resource_name);
    bind_text(st, 13, r->actor);
    bind_text(st, 14, r->decision);
    bind_text(st, 15, r->path);
    bind_text(st, 16, violations);
    bind_text(st, 17, r->bundle_hash);
    sqlite3_bind_int64(st, 18, r->latency_us);
    sqlite3_bind_int(st, 19, r->is_dry_run ? 1 : 0);
    bind_text(st, 20, r->details);
    bind_text(st, 21, prev_hash);
    bind_text(st, 22, hash);
    src = sqlite3_step(st);
    sqlite3_reset(st);
    if ((src & 0xff) == SQLITE_CONSTRAINT)
        return pv_err_set(err, PV_EINVAL, "decision %s not recorded: %s", r->id,
                          sqlite3_errmsg(a->db));
    if (src != SQLITE_DONE)
        return pv_err_set(err, PV_EIO, "insert %s: %s", r->id, sqlite3_errmsg(a->db));

    for (const char *p = it->policies; *p != '\0'; p += strlen(p) + 1) {
        st = a->st_policy;
        bind_text(st, 1, p);
        sqlite3_bind_int64(st, 2, rowid);
        src = sqlite3_step(st);
        sqlite3_reset(st);
        if (src != SQLITE_DONE)
            return pv_err_set(err, PV_EIO, "insert policies of %s: %s", r->id,
                              sqlite3_errmsg(a->db));
    }
    /* Services are first seen at deploy and provision decisions, not at mutations,
     * credentials or events (the adoption report counts those). */
    if (r->service != NULL &&
        (strcmp(r->kind, "deploy") == 0 || strcmp(r->kind, "provision") == 0)) {
        st = a->st_service;
        bind_text(st, 1, r->team);
        bind_text(st, 2, r->service);
        sqlite3_bind_int64(st, 3, r->time_ms);
        bind_text(st, 4, r->path);
        bind_text(st, 5, r->id);
        sqlite3_bind_int(st, 6, r->is_exception_available ? 1 : 0);
        src = sqlite3_step(st);
        sqlite3_reset(st);
        if (src != SQLITE_DONE)
            return pv_err_set(err, PV_EIO, "insert service of %s: %s", r->id,
                              sqlite3_errmsg(a->db));
    }
    if (strcmp(r->kind, "credential") == 0 && strcmp(r->decision, "allow") == 0) {
        rc = insert_credential(a, r, err);
        if (rc)
            return rc;
    }
    if (r->notify_routes == NULL)
        return PV_OK;
    if (r->op != AUDIT_OP_NONE)
        return outbox_put(a, r, it->policies, ev->name, ev->summary,
                          r->op == AUDIT_OP_BG_START || r->op == AUDIT_OP_BG_END ? "breakglass"
                                                                                 : "exception",
                          ev->subject, err);
    if (is_decision_kind(r->kind) && strcmp(r->path, "denied") == 0) {
        char summary[600];
        char pol[400];
        cJSON *d = denied_body(r, it->policies, pol, sizeof(pol));

        snprintf(summary, sizeof(summary), "denied %s %s/%s of %s/%s (%s): %s",
                 r->resource_kind != NULL ? r->resource_kind : "object",
                 r->namespace != NULL ? r->namespace : "-",
                 r->resource_name != NULL ? r->resource_name : "-", r->team,
                 r->service != NULL ? r->service : "-", r->source, pol);
        rc = outbox_put(a, r, it->policies, "decision.denied", summary, "decision", d, err);
        cJSON_Delete(d);
        return rc;
    }
    return PV_OK;
}

static pv_status step_simple(struct audit *a, sqlite3_stmt *st, const char *what,
                             struct pv_err *err)
{
    int src = sqlite3_step(st);

    sqlite3_reset(st);
    if (src != SQLITE_DONE)
        return pv_err_set(err, PV_EIO, "%s failed: %s", what, sqlite3_errmsg(a->db));
    return PV_OK;
}

/* Writes batch[0..n) in one transaction and fills rcs[i] for each record. The chain
 * head (last_hash, last_rowid) advances only when the commit succeeded. Returns PV_OK
 * when the transaction committed, PV_EIO (message in 'err') when it did not. */
static pv_status commit_batch(struct audit *a, size_t n, pv_status *rcs, struct pv_err *err)
{
    char prev[CHAIN_HASH_HEX_LEN + 1];
    char hash[CHAIN_HASH_HEX_LEN + 1];
    int64_t rowid = a->last_rowid;
    struct pv_err row_err;
    pv_status rc;

    memcpy(prev, a->last_hash, sizeof(prev));
    a->has_new_outbox = false;
    rc = step_simple(a, a->st_begin, "BEGIN", err);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        rcs[i] = insert_one(a, &a->batch[i], rowid + 1, prev, hash, &row_err);
        if (is_refusal(rcs[i])) {
            snprintf(a->msgs[i], sizeof(a->msgs[i]), "%s", row_err.msg);
            if (a->batch[i].rec->op == AUDIT_OP_NONE)
                log_msg(LOG_ERROR, "audit", "%s", row_err.msg);
            continue;
        }
        if (rcs[i]) {
            *err = row_err;
            rc = PV_EIO;
            goto fail;
        }
        rowid++;
        memcpy(prev, hash, sizeof(prev));
    }
    rc = step_simple(a, a->st_commit, "COMMIT", err);
    if (rc)
        goto fail;
    a->last_rowid = rowid;
    memcpy(a->last_hash, prev, sizeof(prev));
    if (a->has_new_outbox && a->on_outbox != NULL)
        a->on_outbox(a->on_outbox_arg);
    return PV_OK;
fail:
    /* A failed COMMIT or an I/O error may have ended the transaction already. */
    if (!sqlite3_get_autocommit(a->db))
        step_simple(a, a->st_rollback, "ROLLBACK", NULL);
    return rc;
}

static void count_latency(struct audit_stats *s, uint64_t us)
{
    static const uint64_t bounds[7] = {100, 250, 500, 1000, 2500, 5000, 10000};
    int b = 0;

    while (b < 7 && us > bounds[b])
        b++;
    s->commit_latency_us_buckets[b]++;
    s->commit_latency_us_sum += us;
}

/* A write that leaves nothing behind, to learn whether the store can commit again.
 * Writer thread. */
static pv_status probe_write(struct audit *a)
{
    struct pv_err err = {PV_OK, ""};
    pv_status rc = schema_exec(a->db,
                               "BEGIN IMMEDIATE; CREATE TABLE IF NOT EXISTS writable_probe(x);"
                               "INSERT INTO writable_probe VALUES(1); DELETE FROM writable_probe;"
                               "COMMIT;",
                               &err);

    if (rc)
        schema_exec(a->db, "ROLLBACK", NULL);
    return rc;
}

static void *writer_main(void *arg)
{
    struct audit *a = arg;
    pv_status *rcs = xcalloc(a->batch_max, sizeof(*rcs));
    struct waiter **callbacks = xcalloc(a->batch_max, sizeof(*callbacks));
    size_t n_callbacks = 0;

    pthread_mutex_lock(&a->mu);
    for (;;) {
        struct pv_err err = {PV_OK, ""};
        size_t n;
        uint64_t t0;
        uint64_t us;
        pv_status rc;

        while (a->count == 0 && !a->is_closing) {
            struct timespec ts;

            if (a->stats.is_writable) {
                pthread_cond_wait(&a->not_empty, &a->mu);
                continue;
            }
            /* After a failed commit nothing else would ever write (a pod that is not
             * ready gets no traffic), so try a small write once a second and report
             * the store writable again as soon as one commits. */
            ts = to_timespec(now_ns() + PROBE_EVERY_MS * 1000000ull);
            if (pthread_cond_timedwait(&a->not_empty, &a->mu, &ts) == 0 || a->count > 0)
                continue;
            pthread_mutex_unlock(&a->mu);
            rc = probe_write(a);
            pthread_mutex_lock(&a->mu);
            if (rc == PV_OK) {
                a->stats.is_writable = true;
                log_msg(LOG_INFO, "audit", "%s is writable again", a->path);
            }
        }
        if (a->count == 0)
            break; /* closing and drained */
        n = a->count < a->batch_max ? a->count : a->batch_max;
        for (size_t i = 0; i < n; i++) {
            a->batch[i] = a->ring[a->head];
            a->head = (a->head + 1) % a->cap;
        }
        a->count -= n;
        a->stats.queue_depth = a->count;
        pthread_cond_broadcast(&a->not_full);
        pthread_mutex_unlock(&a->mu);

        t0 = now_ns();
        rc = commit_batch(a, n, rcs, &err);
        us = (now_ns() - t0) / 1000u;
        if (rc)
            log_msg(LOG_ERROR, "audit",
                    "commit of %zu decisions (first %s) failed, not recorded: %s", n,
                    a->batch[0].rec->id, err.msg);

        pthread_mutex_lock(&a->mu);
        a->stats.is_writable = rc == PV_OK;
        if (rc) {
            a->stats.commit_failures++;
        } else {
            a->stats.commits++;
            count_latency(&a->stats, us);
        }
        for (size_t i = 0; i < n; i++) {
            struct item *it = &a->batch[i];
            pv_status irc = rc ? rc : rcs[i];

            if (irc == PV_OK)
                a->stats.committed++;
            if (irc == PV_OK && it->quota_msg != NULL)
                irc = PV_EFULL; /* committed, as a quota denial */
            if (it->w != NULL) {
                it->w->rc = irc;
                if (irc == PV_EFULL)
                    snprintf(it->w->msg, sizeof(it->w->msg), "%s", it->quota_msg);
                else if (rc)
                    snprintf(it->w->msg, sizeof(it->w->msg),
                             "audit: decision %s not recorded: %.180s", it->rec->id, err.msg);
                else if (irc && it->rec->op != AUDIT_OP_NONE)
                    snprintf(it->w->msg, sizeof(it->w->msg), "%s", a->msgs[i]);
                else if (irc)
                    snprintf(it->w->msg, sizeof(it->w->msg),
                             "audit: decision %s not recorded: duplicate id", it->rec->id);
                it->w->is_done = true;
                /* Callback waiters are answered after the lock is dropped. */
                if (it->w->done != NULL)
                    callbacks[n_callbacks++] = it->w;
            }
            audit_record_free(it->rec);
            free(it->policies);
            free(it->quota_msg);
            it->rec = NULL;
            it->policies = NULL;
            it->quota_msg = NULL;
        }
        pthread_cond_broadcast(&a->done);
        if (n_callbacks > 0) {
            pthread_mutex_unlock(&a->mu);
            for (size_t i = 0; i < n_callbacks; i++) {
                callbacks[i]->done(callbacks[i]->arg, callbacks[i]->rc, callbacks[i]->msg);
                free(callbacks[i]);
            }
            n_callbacks = 0;
            pthread_mutex_lock(&a->mu);
        }
    }
    pthread_mutex_unlock(&a->mu);
    free(rcs);
    free(callbacks);
    return NULL;
}

/* ---- Checkpoints (checkpointer thread) ---- */

/* About 64 MiB of 4 KiB pages. */
#define WAL_RESTART_FRAMES 16384

/* Copies WAL pages into the database from its own connection, so the fsync of the
 * database file never delays a commit. PASSIVE never blocks the writer. */
static void *checkpointer_main(void *arg)
{
    struct audit *a = arg;
    uint64_t seen = 0;

    pthread_mutex_lock(&a->mu);
    while (!a->is_closing) {
        struct timespec ts = to_timespec(now_ns() + CHECKPOINT_EVERY_MS * 1000000ull);
        uint64_t commits;

        pthread_cond_timedwait(&a->ckpt_wake, &a->mu, &ts);
        commits = a->stats.commits;
        if (a->is_closing || commits == seen)
            continue;
        seen = commits;
        pthread_mutex_unlock(&a->mu);
        {
            int n_log = 0;
            int n_done = 0;

            if (sqlite3_wal_checkpoint_v2(a->ckpt_db, NULL, SQLITE_CHECKPOINT_PASSIVE, &n_log,
                                          &n_done) != SQLITE_OK)
                log_msg(LOG_DEBUG, "audit", "checkpoint of %s: %s", a->path,
                        sqlite3_errmsg(a->ckpt_db));
            /* Under steady writes a passive checkpoint is never complete when the writer
             * starts its next transaction, so the WAL would never restart and would grow
             * without end. Past WAL_RESTART_FRAMES, TRUNCATE once: it waits for the
             * writer's current batch, copies the few frames left and empties the file. */
            if (n_log > WAL_RESTART_FRAMES &&
                sqlite3_wal_checkpoint_v2(a->ckpt_db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL,
                                          NULL) != SQLITE_OK)
                log_msg(LOG_WARN, "audit", "truncating checkpoint of %s: %s", a->path,
                        sqlite3_errmsg(a->ckpt_db));
        }
        pthread_mutex_lock(&a->mu);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* ---- Lifecycle ---- */

static pv_status prepare(struct audit *a, sqlite3_stmt **st, const char *sql, struct pv_err *err)
{
    if (sqlite3_prepare_v3(a->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK)
        return pv_err_set(err, PV_EIO, "audit: %s: prepare: %s", a->path, sqlite3_errmsg(a->db));
    return PV_OK;
}

/* Reads the chain head (last rowid and hash) from the database. */
static pv_status load_head(struct audit *a, struct pv_err *err)
{
    sqlite3_stmt *st = NULL;
    pv_status rc = PV_OK;
    int src;

    rc = prepare(a, &st, "SELECT rowid, hash FROM decisions ORDER BY rowid DESC LIMIT 1", err);
    if (rc)
        return rc;
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        const unsigned char *h = sqlite3_column_text(st, 1);

        if (h == NULL || strlen((const char *)h) != CHAIN_HASH_HEX_LEN) {
            rc = pv_err_set(err, PV_EIO, "audit: %s: the last row's hash is malformed", a->path);
            goto done;
        }
        a->last_rowid = sqlite3_column_int64(st, 0);
        memcpy(a->last_hash, h, CHAIN_HASH_HEX_LEN + 1);
    } else if (src == SQLITE_DONE) {
        a->last_rowid = 0;
        memcpy(a->last_hash, chain_zero_hash, CHAIN_HASH_HEX_LEN + 1);
    } else {
        rc = pv_err_set(err, PV_EIO, "audit: %s: %s", a->path, sqlite3_errmsg(a->db));
    }
done:
    sqlite3_finalize(st);
    return rc;
}

static void free_store(struct audit *a)
{
    sqlite3_finalize(a->st_begin);
    sqlite3_finalize(a->st_commit);
    sqlite3_finalize(a->st_rollback);
    sqlite3_finalize(a->st_decision);
    sqlite3_finalize(a->st_policy);
    sqlite3_finalize(a->st_service);
    sqlite3_finalize(a->st_outbox);
    sqlite3_finalize(a->st_team_usage);
    sqlite3_finalize(a->st_key_usage);
    sqlite3_finalize(a->st_ledger_put);
    sqlite3_finalize(a->st_ledger_del);
    sqlite3_finalize(a->st_cred);
    /* The last connection to close checkpoints the WAL and removes it. */
    sqlite3_close(a->ckpt_db);
    sqlite3_close(a->db);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->not_empty);
    pthread_cond_destroy(&a->not_full);
    pthread_cond_destroy(&a->done);
    pthread_cond_destroy(&a->ckpt_wake);
    free(a->ring);
    free(a->batch);
    free(a->msgs);
    free(a->path);
    free(a);
}

pv_status audit_open(struct audit **out, const struct audit_options *opt, struct pv_err *err)
{
    struct audit *a;
    pthread_condattr_t ca;
    pv_status rc;
    int e;

    if (opt->path == NULL || opt->path[0] == '\0')
        return pv_err_set(err, PV_EINVAL, "audit: no database path");
    if (opt->queue_max > QUEUE_CEILING || opt->batch_max > BATCH_CEILING)
        return pv_err_set(err, PV_EINVAL, "audit: queue_max (max %u) or batch_max (max %u) too big",
                          QUEUE_CEILING, BATCH_CEILING);
    a = xcalloc(1, sizeof(*a));
    a->path = xstrdup(opt->path);
    a->is_async = opt->is_async;
    a->cap = opt->queue_max != 0 ? opt->queue_max : QUEUE_DEFAULT;
    a->batch_max = opt->batch_max != 0 ? opt->batch_max : BATCH_DEFAULT;
    a->ring = xcalloc(a->cap, sizeof(*a->ring));
    a->batch = xcalloc(a->batch_max, sizeof(*a->batch));
    a->msgs = xcalloc(a->batch_max, sizeof(*a->msgs));
    a->on_outbox = opt->on_outbox;
    a->on_outbox_arg = opt->on_outbox_arg;
    a->quota_check = opt->quota_check;
    a->quota_arg = opt->quota_arg;
    pthread_mutex_init(&a->mu, NULL);
    /* Deadlines are CLOCK_MONOTONIC. */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->not_empty, &ca);
    pthread_cond_init(&a->not_full, &ca);
    pthread_cond_init(&a->done, &ca);
    pthread_cond_init(&a->ckpt_wake, &ca);
    pthread_condattr_destroy(&ca);

    rc = schema_open_rw(&a->db, a->path, true, err);
    if (rc == PV_OK)
        rc = schema_open_rw(&a->ckpt_db, a->path, false, err);
    if (rc == PV_OK)
        rc = prepare(a, &a->st_begin, "BEGIN IMMEDIATE", err);
    if (rc == PV_OK)
        rc = prepare(a, &a->st_commit, "COMMIT", err);
    if (rc == PV_OK)
        rc = prepare(a, &a->st_rollback, "ROLLBACK", err);
    if (rc == PV_OK)
        rc = prepare(a, &a->st_decision,
                     "INSERT INTO decisions (" SCHEMA_DECISION_COLUMNS
                     ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
                     "?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)",
                     err);
    if (rc == PV_OK)
        rc = prepare(a, &a->st_policy,
                     "INSERT OR IGNORE INTO decision_policies (policy, decision_rowid) "
                     "VALUES (?1, ?2)",
                     err);
    if (rc == PV_OK)
        rc = prepare(a, &a->st_service,
                     "INSERT INTO services (team, service, first_seen_ms, first_path, "
                     "first_decision_id, exception_available) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
                     "ON CONFLICT (team, service) DO UPDATE SET exception_available = "
                     "max(exception_available, excluded.exception_available)",
                     err);
    if (rc == PV_OK)
        rc = prepare(a, &a->st_outbox,
                     "INSERT INTO outbox (endpoint, event, body, created_ms, state, attempts, "
                     "next_ms) VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?4)",
                     err);
    if (rc == PV_OK)
        rc = prepare(a, &a->st_team_usage,
                     "SELECT coalesce(sum(cpu_millis), 0), coalesce(sum(memory_bytes), 0), "
                     "coalesce(sum(storage_bytes), 0), coalesce(sum(environments), 0), "
                     "coalesce(sum(monthly_cost), 0) FROM ledger WHERE team = ?1",
                     err);
    if (rc == PV_OK)
        rc = prepare(a, &a->st_key_usage,
                     "SELECT cpu_millis, memory_bytes, storage_bytes, environments, monthly_cost, "
                     "team FROM ledger WHERE key = ?1",
                     err);
    if (rc == PV_OK)
        rc = prepare(a, &a->st_ledger_put,
                     "INSERT INTO ledger (key, team, service, cost_center, cpu_millis, "
                     "memory_bytes, storage_bytes, environments, monthly_cost, updated_ms, "
                     "decision_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) "
                     "ON CONFLICT (key) DO UPDATE SET team = excluded.team, service = "
                     "excluded.service, cost_center = excluded.cost_center, cpu_millis = "
                     "excluded.cpu_millis, memory_bytes = excluded.memory_bytes, storage_bytes = "
                     "excluded.storage_bytes, environments = excluded.environments, "
                     "monthly_cost = excluded.monthly_cost, updated_ms = excluded.updated_ms, "
                     "decision_id = excluded.decision_id",
                     err);
    if (rc == PV_OK)
        rc = prepare(a, &a->st_ledger_del, "DELETE FROM ledger WHERE key = ?1", err);
    if (rc == PV_OK)
        rc = prepare(a, &a->st_cred,
                     "INSERT INTO credentials (jti, decision_id, time_ms, subject, team, service, "
                     "audience, scopes, expires_ms, via) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
                     "?9, ?10)",
                     err);
    if (rc == PV_OK)
        rc = load_head(a, err);
    if (rc)
        goto fail;
    a->stats.is_writable = true;

    e = pthread_create(&a->writer, NULL, writer_main, a);
    if (e != 0) {
        rc = pv_err_set(err, PV_EIO, "audit: cannot start the writer thread: %s", strerror(e));
        goto fail;
    }
    a->has_writer = true;
    e = pthread_create(&a->checkpointer, NULL, checkpointer_main, a);
    if (e != 0) {
        rc =
            pv_err_set(err, PV_EIO, "audit: cannot start the checkpointer thread: %s", strerror(e));
        goto fail;
    }
    a->has_checkpointer = true;
    log_msg(LOG_INFO, "audit", "opened %s: %" PRId64 " decisions, %s durability", a->path,
            a->last_rowid, a->is_async ? "async" : "sync");
    *out = a;
    return PV_OK;
fail:
    audit_close(a);
    return rc;
}

void audit_close(struct audit *a)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->mu);
    a->is_closing = true;
    pthread_cond_broadcast(&a->not_empty);
    pthread_cond_broadcast(&a->not_full);
    pthread_cond_broadcast(&a->ckpt_wake);
    pthread_mutex_unlock(&a->mu);
    if (a->has_writer)
        pthread_join(a->writer, NULL);
    if (a->has_checkpointer)
        pthread_join(a->checkpointer, NULL);
    free_store(a);
}
